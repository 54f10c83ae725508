"""Binning of every feature, unit-area histograms and the separation power.

Two binnings, recorded in ``metrics.json`` as ``binning_scheme``:

**official** (the default) reproduces the official CaloChallenge evaluation
(``evaluate_plotting_helper.py``), whose separation powers are these:

======================  ===========================================================================
feature                 bins (edges, all from the *reference* sample where data-dependent)
======================  ===========================================================================
``response``            E_tot / E_inc: ``linspace(0.5, 1.5, 101)``
``response_E<E>``       dataset 1, showers with E <= E_inc < 2E for E = 2^8 ... 2^22 MeV:
                        ``linspace(0.4, 1.4, 21)``; photons from 2^12 MeV on ``linspace(0.9, 1.1,
                        21)``
``E_layer_k``           ``logspace(log10(threshold), log10(reference max of layer k), 40)``
``EC_eta/phi_k``        ``linspace(-L, L, 101)``: L = 30 mm (ds2, ds3), 500 mm (ds1 layers 12, 13),
                        100 mm (other ds1 layers)
``width_eta/phi_k``     ``linspace(0, W, 101)``: W = 30 mm (ds2, ds3), 400 mm (ds1 layers 12, 13),
                        100 mm (other ds1 layers)
``voxel_energy``        ``logspace(log10(threshold), log10(reference max voxel), 50)``, filled
                        chunk by chunk (:class:`VoxelHistogram`)
======================  ===========================================================================

The official code defines, but does not call, binnings of sparsity (``linspace(0, 1, 21)``),
EC_r (``linspace(0, R, 101)``, R = 42 mm for ds2/ds3, 1500 mm for ds1 layers 12-14, else 500 mm)
and width_r (R = 20 mm for ds2/ds3, else as EC_r); caloforge reports these, and E_tot (40 log
bins as for a layer), as *extras* (``separation_power_extra`` in ``metrics.json``), apart from
the official numbers.

**caloforge** is caloforge's own data-driven binning (ranges from the reference's 99.9%
quantiles, 40 log bins for energies, voxel energies in unions of fine log bins); it is an
explicit option for geometries the challenge does not define, and is used for them
automatically (with a note).

Histograms are unit-area densities as ``numpy.histogram(..., density=True)`` makes them (entries
outside the edges are dropped; an empty histogram gives NaN, as in the official code); the
separation power of two of them is

    S = 1/2 * sum_i (h1_i - h2_i)^2 / (h1_i + h2_i + 1e-16)

on the bin-width-weighted densities h_i = density_i * width_i, so S = 0 for identical and 1 for
disjoint histograms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caloforge.errors import ConfigError
from caloforge.evaluate.features import ShowerFeatures
from caloforge.evaluate.spectra import VoxelHistogram, VoxelSpectrum  # noqa: F401 (re-export)
from caloforge.geometry import Geometry

_DS23 = ("ds2", "ds3")


@dataclass(frozen=True)
class Binning:
    """The bins of one feature.

    Attributes:
        edges: bin edges, shape (n_bins + 1,), in the feature's unit.
        log: whether the bins are logarithmic (plots use a log x axis).
        label: axis label with unit, e.g. ``"E_layer 12 [MeV]"``.
        group: the feature kind (``E_layer``, ``EC_eta`` ...) the report groups by.
        layer: the layer id, or ``None`` for per-shower features.
    """

    edges: np.ndarray
    log: bool
    label: str
    group: str
    layer: int | None = None
    official: bool = True

    @property
    def n_bins(self) -> int:
        return len(self.edges) - 1

    def to_dict(self) -> dict:
        return {
            "low": float(self.edges[0]),
            "high": float(self.edges[-1]),
            "n_bins": self.n_bins,
            "log": self.log,
            "official": self.official,
        }


def _log_edges(low: float, high: float, n_bins: int) -> np.ndarray:
    if not (np.isfinite(high) and high > 0):
        high = 1.0
    if not (np.isfinite(low) and 0 < low < high):
        low = high * 1e-6
    return np.logspace(np.log10(low), np.log10(high), n_bins + 1)


def _data_limit(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    q = float(np.quantile(finite, 0.999)) if finite.size else 0.0
    return 1.2 * q if q > 0 else 1.0


_LABELS = {
    "E_layer": ("E_layer {} [MeV]", True),
    "sparsity": ("fraction of voxels at 0, layer {}", False),
    "EC_eta": ("centre of energy in eta, layer {} [mm]", False),
    "EC_phi": ("centre of energy in phi, layer {} [mm]", False),
    "width_eta": ("width in eta, layer {} [mm]", False),
    "width_phi": ("width in phi, layer {} [mm]", False),
    "EC_r": ("centre of energy in r, layer {} [mm]", False),
    "width_r": ("width in r, layer {} [mm]", False),
}


def split_name(name: str) -> tuple[str, int | None]:
    """``"EC_eta_12"`` -> (``"EC_eta"``, 12); ``"E_tot"`` -> (``"E_tot"``, None)."""
    head, _, tail = name.rpartition("_")
    if head in _LABELS and tail.lstrip("-").isdigit():
        return head, int(tail)
    return name, None


#: the incident energies of dataset 1, MeV, and the bin edges the official code selects by
DS1_ENERGIES = 2.0 ** np.linspace(8, 23, 16)
CALOCHALLENGE = ("ds1-photons", "ds1-pions", "ds2", "ds3")


def feature_columns(features: ShowerFeatures, geometry: Geometry) -> dict[str, np.ndarray]:
    """Every histogrammed feature by name: :meth:`ShowerFeatures.columns`, and for dataset 1 the
    response of the showers of each incident energy (``response_E256`` ... ``response_E4194304``,
    showers with E <= E_inc < 2E, as the official code selects them)."""
    cols = features.columns()
    if geometry.name.startswith("ds1"):
        e_inc = features.e_inc
        for lo, hi in zip(DS1_ENERGIES[:-1], DS1_ENERGIES[1:], strict=True):
            mask = (e_inc >= lo) & (e_inc < hi)
            cols[f"response_E{int(lo)}"] = features.e_tot[mask] / e_inc[mask]
    return cols


def _official_lims(group: str, geometry: str, layer: int) -> tuple[float, float]:
    ds23 = geometry in _DS23
    if group in ("EC_eta", "EC_phi"):
        lim = 30.0 if ds23 else 500.0 if layer in (12, 13) else 100.0
        return -lim, lim
    if group in ("width_eta", "width_phi"):
        return 0.0, 30.0 if ds23 else 400.0 if layer in (12, 13) else 100.0
    if group == "EC_r":
        return 0.0, 42.0 if ds23 else 1500.0 if layer in (12, 13, 14) else 500.0
    if group == "width_r":
        return 0.0, 20.0 if ds23 else 1500.0 if layer in (12, 13, 14) else 500.0
    raise KeyError(group)


def _official_log_edges(threshold: float, ref_max, n_edges: int) -> np.ndarray:
    """``logspace(log10(threshold), log10(ref_max), n_edges)`` with numpy's warnings about a
    zero maximum silenced: the edges are then NaN and the separation power NaN, as officially.
    ``ref_max`` stays a numpy scalar of the data's dtype: the official code takes log10 of a
    float32 maximum in float32, and the last edge differs in the 8th digit otherwise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.logspace(np.log10(threshold), np.log10(ref_max), n_edges)


def official_binnings(
    reference: ShowerFeatures, geometry: Geometry, threshold: float
) -> dict[str, Binning]:
    """The official binning of every histogrammed feature (see the module docstring); the
    official features first, then the extras (``official=False``)."""
    if geometry.name not in CALOCHALLENGE:
        raise ConfigError(
            f"the official binning is defined for {', '.join(CALOCHALLENGE)} only, not "
            f"{geometry.name!r}; use binning='caloforge'"
        )
    cols = feature_columns(reference, geometry)
    out: dict[str, Binning] = {
        "response": Binning(np.linspace(0.5, 1.5, 101), False, "E_tot / E_inc", "response")
    }
    if geometry.name.startswith("ds1"):
        edges = np.linspace(0.4, 1.4, 21)
        for i, energy in enumerate(DS1_ENERGIES[:-1]):
            if i > 3 and geometry.name == "ds1-photons":
                edges = np.linspace(0.9, 1.1, 21)
            out[f"response_E{int(energy)}"] = Binning(
                edges, False, f"E_tot / E_inc at E_inc = {int(energy)} MeV", "response_E"
            )
    extras: dict[str, Binning] = {
        "E_tot": Binning(
            _official_log_edges(threshold, np.max(cols["E_tot"]), 40),
            True, "E_tot [MeV]", "E_tot", official=False,
        )
    }  # fmt: skip
    for name, values in cols.items():
        group, layer = split_name(name)
        if layer is None:
            continue
        fmt, log = _LABELS[group]
        label = fmt.format(layer)
        if group == "E_layer":
            edges = _official_log_edges(threshold, np.max(values), 40)
            out[name] = Binning(edges, log, label, group, layer)
        elif group == "sparsity":
            extras[name] = Binning(np.linspace(0.0, 1.0, 21), log, label, group, layer, False)
        elif group in ("EC_r", "width_r"):
            edges = np.linspace(*_official_lims(group, geometry.name, layer), 101)
            extras[name] = Binning(edges, log, label, group, layer, False)
        else:
            edges = np.linspace(*_official_lims(group, geometry.name, layer), 101)
            out[name] = Binning(edges, log, label, group, layer)
    return {**out, **extras}


def feature_binnings(
    reference: ShowerFeatures, geometry: Geometry, threshold: float, scheme: str = "official"
) -> dict[str, Binning]:
    """The bins of every histogrammed feature: the ``official`` scheme
    (:func:`official_binnings`) or ``caloforge``'s own (see the module docstring)."""
    if scheme == "official":
        return official_binnings(reference, geometry, threshold)
    if scheme != "caloforge":
        raise ConfigError(f"unknown binning {scheme!r}; choose official or caloforge")
    cols = reference.columns()
    out: dict[str, Binning] = {}
    resp = cols["response"]
    inside = np.mean((resp >= 0.5) & (resp <= 1.5)) if len(resp) else 1.0
    hi = 1.5 if inside >= 0.9 else max(1.5, float(np.max(resp)))
    lo = 0.5 if inside >= 0.9 else 0.0
    out["response"] = Binning(
        np.linspace(lo, hi, 101), False, "E_tot / E_inc", "response", official=False
    )
    e_tot = cols["E_tot"]
    positive = e_tot[e_tot > 0]
    out["E_tot"] = Binning(
        _log_edges(float(positive.min()) if positive.size else 0.0, float(e_tot.max()), 40),
        True,
        "E_tot [MeV]",
        "E_tot",
        official=False,
    )
    for name, values in cols.items():
        group, layer = split_name(name)
        if layer is None:
            continue
        fmt, log = _LABELS[group]
        if group == "E_layer":
            pos = values[values > 0]
            low = threshold if threshold > 0 else (float(pos.min()) if pos.size else 0.0)
            edges = _log_edges(low, float(values.max()), 40)
        elif group == "sparsity":
            edges = np.linspace(0.0, 1.0, 21)
        elif group in ("EC_eta", "EC_phi"):
            lim = 30.0 if geometry.name in _DS23 else _data_limit(values)
            edges = np.linspace(-lim, lim, 101)
        elif group == "EC_r":
            edges = np.linspace(0.0, _data_limit(values), 101)
        else:  # widths
            lim = 30.0 if geometry.name in _DS23 else _data_limit(values)
            edges = np.linspace(0.0, lim, 101)
        out[name] = Binning(edges, log, fmt.format(layer), group, layer, official=False)
    return out


def histogram_counts(values: np.ndarray, binning: Binning) -> np.ndarray:
    """Counts of ``values`` in the bins as ``numpy.histogram`` gives them (entries outside are
    dropped, the last bin includes its right edge), shape (n_bins,)."""
    counts, _ = np.histogram(np.asarray(values), binning.edges)
    return counts


def density(counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts -> a unit-area density over the bins, computed as ``numpy.histogram(...,
    density=True)`` does (NaN when there are no counts, as in the official code)."""
    n = np.asarray(counts)
    with np.errstate(divide="ignore", invalid="ignore"):
        return n / np.array(np.diff(edges), float) / n.sum()


def separation_power(density_1: np.ndarray, density_2: np.ndarray, edges: np.ndarray) -> float:
    """S = 1/2 sum (h1 - h2)^2 / (h1 + h2 + 1e-16) on bin-width-weighted unit-area densities,
    in [0, 1] (NaN if a histogram is empty), with the official code's order of operations."""
    with np.errstate(invalid="ignore"):
        h1, h2 = np.asarray(density_1) * np.diff(edges), np.asarray(density_2) * np.diff(edges)
        ret = (h1 - h2) ** 2
        ret /= h1 + h2 + 1e-16
        return float(0.5 * ret.sum())


def _as_columns(
    sample: dict[str, np.ndarray] | ShowerFeatures, binnings: dict[str, Binning]
) -> dict[str, np.ndarray]:
    """Column dictionary of a sample given as one or as :class:`ShowerFeatures` (then the
    per-energy responses ``response_E<E>`` are cut from it: E <= E_inc < 2E)."""
    if isinstance(sample, dict):
        return sample
    cols = sample.columns()
    for name in binnings:
        if name.startswith("response_E"):
            energy = float(name[len("response_E") :])
            mask = (sample.e_inc >= energy) & (sample.e_inc < 2 * energy)
            cols[name] = sample.e_tot[mask] / sample.e_inc[mask]
    return cols


def histogram_pairs(
    reference: dict[str, np.ndarray] | ShowerFeatures,
    generated: dict[str, np.ndarray] | ShowerFeatures,
    binnings: dict[str, Binning],
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(reference counts, generated counts) of every binned feature, keyed by name; the
    samples are column dictionaries from :func:`feature_columns` or :class:`ShowerFeatures`."""
    reference, generated = _as_columns(reference, binnings), _as_columns(generated, binnings)
    return {
        name: (histogram_counts(reference[name], b), histogram_counts(generated[name], b))
        for name, b in binnings.items()
    }


def separation_powers(
    reference: dict[str, np.ndarray] | ShowerFeatures,
    generated: dict[str, np.ndarray] | ShowerFeatures,
    binnings: dict[str, Binning],
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, float]:
    """Separation power of every binned feature, keyed by name (``pairs``: counts from
    :func:`histogram_pairs`, computed here when not given)."""
    pairs = histogram_pairs(reference, generated, binnings) if pairs is None else pairs
    out = {}
    for name, binning in binnings.items():
        ref_counts, gen_counts = pairs[name]
        out[name] = separation_power(
            density(ref_counts, binning.edges), density(gen_counts, binning.edges), binning.edges
        )
    return out


def official_voxel_edges(threshold: float, reference_max) -> np.ndarray:
    """``logspace(log10(threshold), log10(reference max voxel), 50)``: the official 49 bins."""
    return _official_log_edges(threshold, reference_max, 50)
