"""Compare simulated showers with summary statistics of the real Geant4 CaloChallenge files.

The statistics (``geant4_stats/``, provenance in its README.md) are the mean and standard
deviation, over all showers of a real file, of:

* entry 0: the response E_tot / E_inc;
* entries 1 ... L-1: logit(u_i), u_i = E_{i-1} / (sum_{j >= i-1} E_j + 1e-10), the share of the
  energy still to deposit that layer i-1 takes (clamped to [1e-6, 1 - 1e-6]);
* ds2 only, 6480 voxel entries: logit(v / E_layer + n), n ~ U[0, 5e-6], same clamping.

:func:`transform_layers` and :func:`transform_voxels` apply these transforms; :func:`compare_sample`
returns real and simulated values side by side (plain lists, JSON-ready).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.special import expit

from caloforge.geometry import CylindricalLayer
from caloforge.io import Showers

#: the samples the statistics describe: key -> (detector preset, particle, energy spec)
SAMPLES = {
    "ds2-electron": ("ds2", "electron", "loguniform:1e3:1e6"),
    "ds1-photons-photon": ("ds1-photons", "photon", "ds1"),
    "ds1-pions-pion": ("ds1-pions", "pion", "ds1"),
}
_FILES = {
    "ds2-electron": "2_1",
    "ds1-photons-photon": "1_photons_1",
    "ds1-pions-pion": "1_pions_1",
}
STATS_DIR = Path(__file__).with_name("geant4_stats")
EPS = 1e-6


def _logit(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, EPS, 1.0 - EPS)
    return np.log(x / (1.0 - x))


def load_reference(key: str, folder: Path | None = None) -> dict[str, np.ndarray]:
    """Real-Geant4 means and stds of sample ``key`` (see :data:`SAMPLES`).

    Returns ``{"us_mean", "us_std"}`` (shape (L,)) and, for ds2, ``{"voxel_mean", "voxel_std"}``
    (shape (6480,)).
    """
    folder = STATS_DIR if folder is None else Path(folder)
    tag = _FILES[key]
    ref = {
        "us_mean": np.load(folder / f"means_{tag}_us.npy"),
        "us_std": np.load(folder / f"stds_{tag}_us.npy"),
    }
    if tag == "2_1":
        ref["voxel_mean"] = np.load(folder / "means_2_1.npy")[:6480]
        ref["voxel_std"] = np.load(folder / "stds_2_1.npy")[:6480]
    return ref


def transform_layers(layer_energies: np.ndarray, incident: np.ndarray) -> np.ndarray:
    """(response, logit u_1 ... logit u_{L-1}) of every shower, shape (N, L).

    Args:
        layer_energies: E_0 ... E_{L-1}, MeV, shape (N, L).
        incident: E_inc, MeV, shape (N,).
    """
    e = np.asarray(layer_energies, dtype=np.float64)
    remaining = np.cumsum(e[:, ::-1], axis=1)[:, ::-1]  # sum_{j >= k} E_j
    u = e[:, :-1] / (remaining[:, :-1] + 1e-10)
    out = np.empty_like(e)
    out[:, 0] = remaining[:, 0] / np.asarray(incident, dtype=np.float64)
    out[:, 1:] = _logit(u)
    return out


def transform_voxels(
    showers: np.ndarray, layer_slices: list[slice], rng: np.random.Generator
) -> np.ndarray:
    """logit(v / E_layer + n), n ~ U[0, 5e-6], shape (N, V); an empty layer gives v/E = 0."""
    v = np.asarray(showers, dtype=np.float64)
    out = np.empty_like(v)
    for sl in layer_slices:
        block = v[:, sl]
        e_layer = block.sum(axis=1, keepdims=True)
        frac = np.divide(block, e_layer, out=np.zeros_like(block), where=e_layer > 0)
        out[:, sl] = _logit(frac + rng.uniform(0.0, 5e-6, block.shape))
    return out


def typical_shares(mean_logits: np.ndarray) -> np.ndarray:
    """Layer shares of E_tot implied by the mean logits of u_1 ... u_{L-1}, shape (L,).

    share_k = expit(m_{k+1}) times what the earlier layers leave; the last layer takes the rest.
    """
    u = expit(np.asarray(mean_logits, dtype=float))
    left = np.concatenate([[1.0], np.cumprod(1.0 - u)])
    return np.concatenate([u, [1.0]]) * left


def _side(us_mean: np.ndarray, us_std: np.ndarray) -> dict:
    return {
        "response_mean": float(us_mean[0]),
        "response_std": float(us_std[0]),
        "logit_u_mean": us_mean[1:].tolist(),
        "logit_u_std": us_std[1:].tolist(),
        "typical_share": typical_shares(us_mean[1:]).tolist(),
    }


def compare_sample(showers: Showers, ref: dict[str, np.ndarray], *, seed: int = 0) -> dict:
    """Real vs simulated statistics of one sample; JSON-ready.

    Returns ``{"real": {...}, "refsim": {...}}`` with response mean/std, logit-u means/stds and
    typical layer shares, plus ``"voxel"`` (ds2: per-voxel mean logits by layer and ring and the
    mean absolute per-voxel difference) when the reference has voxel entries.
    """
    from caloforge.geometry import get_geometry

    geo = get_geometry(showers.attrs["geometry"])
    layers = np.stack([showers.showers[:, sl].sum(axis=1) for sl in geo.layer_slices], axis=1)
    t = transform_layers(layers, showers.incident_energies)
    res = {
        "real": _side(ref["us_mean"], ref["us_std"]),
        "refsim": _side(t.mean(axis=0), t.std(axis=0)),
    }
    resp, e_inc = t[:, 0], np.asarray(showers.incident_energies)
    edges = np.quantile(e_inc, [0.0, 0.25, 0.5, 0.75, 1.0])
    quart = np.clip(np.searchsorted(edges, e_inc, side="right") - 1, 0, 3)
    res["refsim"]["response_by_energy_quartile"] = {
        "energy_edges_mev": edges.tolist(),
        "median": [float(np.median(resp[quart == q])) for q in range(4)],
        "mean_minus_median": [
            float(resp[quart == q].mean() - np.median(resp[quart == q])) for q in range(4)
        ],
    }
    if "voxel_mean" in ref:
        rng = np.random.default_rng(seed)
        vm = transform_voxels(showers.showers, list(geo.layer_slices), rng).mean(axis=0)
        first = geo.layers[0]
        if not isinstance(first, CylindricalLayer):
            raise ValueError("the voxel-mean check needs a cylindrical geometry")
        shape = (geo.n_layers, first.n_alpha, first.n_radial)
        real_lr = ref["voxel_mean"].reshape(shape).mean(axis=1)
        sim_lr = vm.reshape(shape).mean(axis=1)
        diff = np.abs(vm - ref["voxel_mean"]).reshape(shape)
        res["voxel"] = {
            "n_voxels": int(vm.size),
            "mean_abs_diff": float(diff.mean()),
            "layer_mean_abs_diff": diff.mean(axis=(1, 2)).tolist(),
            "ring_mean_abs_diff": diff.mean(axis=(0, 1)).tolist(),
            "real_layer_ring": real_lr.tolist(),
            "refsim_layer_ring": sim_lr.tolist(),
        }
    return res
