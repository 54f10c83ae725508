"""The summary curves of the report's first screen, as plain numbers (no plotting here).

* :func:`response_table`: mean response E_tot/E_inc and resolution std/mean of E_tot per
  incident-energy bin;
* :func:`longitudinal_profile`: mean energy per layer (MeV);
* :func:`radial_profile`: mean energy per unit radius (MeV/mm) in radial bins summed over the
  layers.

They are stored in ``metrics.json`` so that the figures can be redrawn from it alone.
"""

from __future__ import annotations

import numpy as np

from caloforge.geometry import CylindricalLayer, Geometry


def response_table(
    e_inc_ref: np.ndarray,
    e_tot_ref: np.ndarray,
    e_inc_gen: np.ndarray,
    e_tot_gen: np.ndarray,
    *,
    max_discrete: int = 20,
    n_bins: int = 10,
) -> dict:
    """Mean response and resolution per incident-energy bin for both samples.

    Bins are the distinct reference energies when there are at most ``max_discrete`` of them
    (dataset 1), else ``n_bins`` log bins over the reference range.

    Returns:
        ``{"edges" or "energies": [...], "reference": {"e_inc", "response", "resolution", "n"},
        "generated": {...}}`` with lists per bin; resolution is std(E_tot) / mean(E_tot).
    """
    distinct = np.unique(e_inc_ref)
    if len(distinct) <= max_discrete:

        def assign(e):
            idx = np.searchsorted(distinct, e)
            idx = np.clip(idx, 0, len(distinct) - 1)
            return np.where(np.isclose(distinct[idx], e, rtol=1e-6), idx, -1)

        n, out = len(distinct), {"energies": distinct.tolist()}
    else:
        edges = np.logspace(np.log10(e_inc_ref.min()), np.log10(e_inc_ref.max()), n_bins + 1)

        def assign(e):
            idx = np.searchsorted(edges, e, side="right") - 1
            idx[e == edges[-1]] = n_bins - 1
            return np.where((idx >= 0) & (idx < n_bins), idx, -1)

        n, out = n_bins, {"edges": edges.tolist()}
    for key, e_inc, e_tot in (
        ("reference", e_inc_ref, e_tot_ref),
        ("generated", e_inc_gen, e_tot_gen),
    ):
        idx = assign(np.asarray(e_inc))
        rows: dict[str, list[float]] = {"e_inc": [], "response": [], "resolution": [], "n": []}
        for b in range(n):
            sel = idx == b
            count = int(sel.sum())
            mean_tot = float(e_tot[sel].mean()) if count else float("nan")
            rows["e_inc"].append(float(np.median(e_inc[sel])) if count else float("nan"))
            rows["response"].append(
                float((e_tot[sel] / e_inc[sel]).mean()) if count else float("nan")
            )
            rows["resolution"].append(
                float(e_tot[sel].std() / mean_tot) if count > 1 and mean_tot > 0 else float("nan")
            )
            rows["n"].append(count)
        out[key] = rows
    return out


def longitudinal_profile(
    e_layer_ref: np.ndarray, e_layer_gen: np.ndarray, geometry: Geometry
) -> dict:
    """Mean energy per layer (MeV) of both samples from their (N, L) layer energies.

    Returns:
        ``{"layers": [L ids], "reference": [L], "generated": [L]}``.
    """
    return {
        "layers": [int(lid) for lid in geometry.layer_ids],
        "reference": np.asarray(e_layer_ref, dtype=np.float64).mean(axis=0).tolist(),
        "generated": np.asarray(e_layer_gen, dtype=np.float64).mean(axis=0).tolist(),
    }


def radial_edges(geometry: Geometry, n_bins: int = 20) -> np.ndarray:
    """Radial bin edges (mm) of the profile: the union of the layers' radial edges when every
    layer is cylindrical, else ``n_bins`` equal bins up to the largest voxel-centre radius."""
    if geometry.kind == "cylindrical":
        layers = geometry.cylindrical_layers
        return np.unique(np.concatenate([np.asarray(la.r_edges, float) for la in layers]))
    r_max = float(geometry.voxel_polar[0].max())
    return np.linspace(0.0, r_max * (1 + 1e-9) if r_max > 0 else 1.0, n_bins + 1)


def radial_profile(mean_ref: np.ndarray, mean_gen: np.ndarray, geometry: Geometry) -> dict:
    """Mean energy per unit radius (MeV/mm) of both samples from their average showers (V,),
    summed over the layers.

    Cylindrical layers: each layer's energy per radial bin (summed over alpha) is spread evenly
    over that bin's radial extent, so layers with coarser bins add a flat density across the
    finer bins of :func:`radial_edges` (which refine every layer's edges). Cartesian layers:
    each cell counted in the bin of its centre radius.

    Returns:
        ``{"edges": [B + 1] mm, "reference": [B] MeV/mm, "generated": [B] MeV/mm}``.
    """
    edges = radial_edges(geometry)
    width = np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    out: dict = {"edges": edges.tolist()}
    cylindrical = all(isinstance(layer, CylindricalLayer) for layer in geometry.layers)
    for key, mean in (("reference", mean_ref), ("generated", mean_gen)):
        mean = np.asarray(mean, dtype=np.float64)
        if not cylindrical:
            sums, _ = np.histogram(geometry.voxel_polar[0], bins=edges, weights=mean)
            out[key] = (sums / width).tolist()
            continue
        total = np.zeros(len(mid))
        for layer, sl in zip(geometry.cylindrical_layers, geometry.layer_slices, strict=True):
            r_e = np.asarray(layer.r_edges, dtype=np.float64)
            per_bin = mean[sl].reshape(layer.shape).sum(axis=0)  # (n_radial,)
            dens = per_bin / np.diff(r_e)
            idx = np.searchsorted(r_e, mid, side="right") - 1
            inside = (idx >= 0) & (idx < len(dens))
            total[inside] += dens[idx[inside]]
        out[key] = total.tolist()
    return out
