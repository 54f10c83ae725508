"""The evaluation driver: one call from two shower files to ``metrics.json`` and ``index.html``.

:func:`evaluate` streams both files once to compute the high-level features (so files larger
than memory work), bins every feature on the reference, computes the separation powers, the
classifier tests, FPD and KPD, draws the figures and writes

* ``metrics.json``: every number, the protocol and the notes (what was subsampled and why);
* ``index.html``: a self-contained page (CSS inline, figures embedded as base64 PNG data URIs)
  that opens in a browser with no server: the verdict and the key physics plots first, the
  per-layer detail in collapsible sections (:mod:`caloforge.evaluate.page`);
* ``figures/*.png``: the figures as files.

:func:`compare` puts the headline numbers of several evaluated runs in one table.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rich.progress import Progress

from caloforge import __version__
from caloforge.errors import ConfigError, GeometryError
from caloforge.evaluate.classifier import (
    INPUT_MODES,
    classifier_inputs,
    classifier_test,
    get_protocol,
    official_classifier_test,
)
from caloforge.evaluate.distances import fpd, kpd
from caloforge.evaluate.features import FeatureExtractor, StreamedSample, stream_features
from caloforge.evaluate.histograms import (
    CALOCHALLENGE,
    Binning,
    VoxelHistogram,
    density,
    feature_binnings,
    feature_columns,
    histogram_pairs,
    official_voxel_edges,
    separation_power,
    separation_powers,
)
from caloforge.evaluate.page import GROUPS, MIN_REFERENCE_ENTRIES, render_html
from caloforge.evaluate.profiles import longitudinal_profile, radial_profile, response_table
from caloforge.evaluate.registry import compute_metrics
from caloforge.evaluate.resnet import image_shape
from caloforge.evaluate.verdict import Threshold, metric_value, parse_threshold, verdict
from caloforge.geometry import Geometry, match_geometry, resolve_geometry
from caloforge.io import Showers, inspect_file, iter_showers
from caloforge.ioutil import atomic_path
from caloforge.outputs import writes_dir

Source = str | os.PathLike | Showers
#: voxel inputs of the low-level classifiers are capped at this many bytes (both samples)
LOW_LEVEL_MEMORY_BYTES = 4 * 2**30


# --------------------------------------------------------------------------- inputs
def _describe(source: Source) -> str:
    return str(source) if isinstance(source, str | os.PathLike) else "in-memory showers"


def _source_info(source: Source) -> tuple[int, int, str | None]:
    """(n_showers, n_voxels, geometry attribute) of a file or a Showers block."""
    if isinstance(source, Showers):
        return len(source), source.n_voxels, source.attrs.get("geometry")
    info = inspect_file(source)
    return info.n_showers, info.n_voxels, info.attrs.get("geometry")


def resolve_geometries(
    generated: Source, reference: Source, geometry: str | Geometry | None = None
) -> Geometry:
    """The geometry both samples are binned in: ``geometry`` if given, else the files'
    ``geometry`` attribute, else the only built-in with their voxel count.

    Raises:
        GeometryError: the samples have different voxel counts or name different geometries,
            or the geometry cannot be told.
    """
    _, v_gen, name_gen = _source_info(generated)
    _, v_ref, name_ref = _source_info(reference)
    gen_label, ref_label = _describe(generated), _describe(reference)
    if v_gen != v_ref:
        raise GeometryError(
            f"{gen_label} has {v_gen} voxels per shower but the reference {ref_label} has "
            f"{v_ref}; both must be in the same geometry"
        )
    if geometry is not None:
        geo = resolve_geometry(geometry)
        geo.check_voxels(v_ref, ref_label)
        return geo
    if name_gen and name_ref and name_gen != name_ref:
        raise GeometryError(
            f"{gen_label} says its geometry is {name_gen!r} but the reference {ref_label} says "
            f"{name_ref!r}; pass --geometry if they are really the same"
        )
    name = name_ref or name_gen
    if name:
        geo = resolve_geometry(str(name))
        geo.check_voxels(v_ref, ref_label)
        return geo
    matches = match_geometry(v_ref)
    if len(matches) != 1:
        raise GeometryError(
            f"cannot tell the geometry of {ref_label} ({v_ref} voxels per shower, "
            f"{'matching ' + ', '.join(matches) if matches else 'no built-in matches'}); "
            "pass --geometry"
        )
    return resolve_geometry(matches[0])


def _load_rows(
    source: Source,
    rows: np.ndarray,
    geometry: Geometry,
    extractor: FeatureExtractor,
    thresholded: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Incident energies (k,) and showers (k, V) of the sorted ``rows``, thresholded (or only
    with negative voxels set to 0, as the official ``low-normed`` input) in their own dtype."""

    def prepare(x: np.ndarray) -> np.ndarray:
        if thresholded:
            return extractor.apply_threshold(x)[0]
        return np.where(x < 0, np.zeros_like(x), x)

    if isinstance(source, Showers):
        block = source[rows]
        return block.incident_energies, prepare(block.showers)
    e_parts, x_parts, start = [], [], 0
    for block in iter_showers(source, geometry=geometry):
        stop = start + len(block)
        lo, hi = np.searchsorted(rows, [start, stop])
        if hi > lo:
            local = rows[lo:hi] - start
            e_parts.append(block.incident_energies[local])
            x_parts.append(prepare(block.showers[local]))
        start = stop
    return np.concatenate(e_parts), np.concatenate(x_parts)


def _fill_voxel_histogram(
    source: Source, geometry: Geometry, extractor: FeatureExtractor, hist: VoxelHistogram
) -> None:
    """One more pass over ``source``: every thresholded voxel into ``hist``."""
    blocks = [source] if isinstance(source, Showers) else iter_showers(source, geometry=geometry)
    for block in blocks:
        hist.update(extractor.apply_threshold(block.showers)[0])


# --------------------------------------------------------------------------- helpers
def _clean(value):
    """JSON-safe copy: numpy scalars to Python, NaN/Inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _summary_by_group(seps: dict[str, float], binnings: dict[str, Binning]) -> dict:
    out: dict[str, dict] = {}
    for group in GROUPS:
        vals = [
            v
            for k, v in seps.items()
            if (binnings[k].group if k in binnings else k) == group and math.isfinite(v)
        ]
        if vals:
            out[group] = {"mean": float(np.mean(vals)), "max": float(np.max(vals)), "n": len(vals)}
    return out


class _Progress:
    """A thin wrapper over rich.progress that does nothing when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            progress = Progress(
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), transient=False,
            )  # fmt: skip
            progress.__enter__()
            self._progress = progress
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def task(self, description: str, total: int) -> Callable[[int], None]:
        progress = self._progress
        if progress is None:
            return lambda n: None
        task_id = progress.add_task(description, total=total)
        return lambda n: progress.advance(task_id, n)


# --------------------------------------------------------------------------- evaluate
@writes_dir("out_dir", marker="metrics.json", inputs=("generated", "reference"), what="report")
def evaluate(
    generated: Source,
    reference: Source,
    *,
    out_dir: str | os.PathLike,
    geometry: str | Geometry | None = None,
    protocol: str = "calochallenge",
    seed: int = 0,
    threshold: float | None = None,
    binning: str = "official",
    classifiers: Sequence[str] = ("high", "low"),
    distances: bool = True,
    prdc_k: int | None = None,
    plots: bool = True,
    chunk_size: int | None = None,
    on_size_mismatch: str = "subsample",
    labels: tuple[str, str] = ("reference", "generated"),
    progress: bool = False,
    summary: bool = False,
    thresholds: Sequence[Threshold | str] = (),
    seconds_per_shower: float | None = None,
) -> dict:
    """Compare a generated shower sample with a reference one and write the report.

    Args:
        generated, reference: shower files (CaloChallenge layout) or :class:`Showers` blocks.
        out_dir: directory for ``metrics.json``, ``index.html`` and ``figures/``.
        geometry: built-in name, binning XML or :class:`Geometry`; by default the files'
            ``geometry`` attribute or the only built-in with their voxel count.
        protocol: ``calochallenge`` (default: the official 2022 procedure, a GPU-sized job)
            or ``fast`` (caloforge's cheaper CPU classifier and distance batches).
        seed: seeds subsampling, the classifier and the FPD/KPD batches.
        threshold: voxel threshold in MeV; default 1 MeV (dataset 1), 0.5e-3 / 0.033 MeV
            (datasets 2, 3) and 0 for other geometries, as the official code.
        binning: ``official`` (the official code's histograms, separation powers and their
            extras) or ``caloforge`` (caloforge's data-driven ranges); geometries outside the
            challenge always get ``caloforge`` (with a note).
        classifiers: input modes to run, from ``low``, ``low-normed``, ``high``, ``resnet``
            (the official 3D ResNet on the ``low`` input; ds2/ds3, calochallenge protocol);
            empty: none.
        distances: compute FPD and KPD.
        prdc_k: compute precision, recall, density and coverage with this many nearest
            neighbours (the official ``prdc`` mode uses 5); ``None``: skip (it needs every
            voxel of both samples in memory and N^2 distances).
        plots: draw the figures (``index.html`` then holds only tables).
        chunk_size: showers per streamed chunk (default: about 128 MB).
        on_size_mismatch: ``subsample`` (the classifier uses a random subset of the larger
            sample, and a note says so) or ``raise`` (a :class:`ConfigError`).
        labels: legend names of the reference and generated samples.
        progress: show rich progress bars.
        summary: draw only the first screen's figures (response, profiles, voxel spectrum,
            classifier score histograms when a classifier ran), not the per-layer ones; every
            metric is still computed.
        thresholds: pass/fail limits, :class:`Threshold` or strings such as
            ``"cls-high.auc<0.6"`` (:mod:`caloforge.evaluate.verdict`); the result is
            ``metrics["verdict"]``.
        seconds_per_shower: generation time per shower of the generated sample, recorded as
            ``timing`` for ``caloforge compare``'s Pareto view (not measured here).

    Returns:
        the metrics dictionary also written to ``metrics.json``.
    """
    proto = get_protocol(protocol)
    limits = [t if isinstance(t, Threshold) else parse_threshold(t) for t in thresholds]
    for t in limits:
        metric_value({}, t.metric)  # an unknown metric name fails before any work
    if seconds_per_shower is not None and not (
        isinstance(seconds_per_shower, int | float) and 0 < seconds_per_shower < math.inf
    ):
        raise ConfigError(
            f"seconds_per_shower must be a positive number, got {seconds_per_shower!r}"
        )
    for mode in classifiers:
        if mode not in INPUT_MODES:
            raise ConfigError(
                f"unknown classifier input {mode!r}; choose from {', '.join(INPUT_MODES)}"
            )
    if on_size_mismatch not in ("subsample", "raise"):
        raise ConfigError(
            f"on_size_mismatch must be 'subsample' or 'raise', got {on_size_mismatch!r}"
        )
    out = Path(out_dir)
    geo = resolve_geometries(generated, reference, geometry)
    extractor = FeatureExtractor(geo, threshold)
    if "resnet" in classifiers:
        if proto.name != "calochallenge":
            raise ConfigError(
                f"the resnet classifier runs the official procedure only (protocol "
                f"'calochallenge'), not {proto.name!r}"
            )
        image_shape(geo)  # a geometry whose layers differ fails here, before any work
    n_gen_total, _, _ = _source_info(generated)
    n_ref_total, _, _ = _source_info(reference)
    notes: list[str] = []
    if threshold is None and geo.name not in ("ds1-photons", "ds1-pions", "ds2", "ds3"):
        notes.append(
            f"Geometry {geo.name!r} has no CaloChallenge voxel threshold, so none (0 MeV) was "
            "applied; pass threshold= to set one."
        )
    scheme = binning
    if scheme not in ("official", "caloforge"):
        raise ConfigError(f"unknown binning {binning!r}; choose official or caloforge")
    if scheme == "official" and geo.name in CALOCHALLENGE and extractor.threshold <= 0:
        raise ConfigError(
            f"the official binning starts its log bins at the voxel threshold, so it needs a "
            f"threshold above 0 MeV (got {extractor.threshold:g}); use the caloforge binning "
            "(--binning caloforge)"
        )
    if scheme == "official" and geo.name not in CALOCHALLENGE:
        scheme = "caloforge"
        notes.append(
            f"Geometry {geo.name!r} is not a CaloChallenge dataset, so the histograms use "
            "caloforge's own binning (the official one is defined for datasets 1-3 only)."
        )
    metrics: dict = {
        "caloforge_version": __version__,
        "generated": _describe(generated),
        "reference": _describe(reference),
        "geometry": geo.name,
        "threshold_mev": extractor.threshold,
        "binning_scheme": scheme,
        "protocol": proto.to_dict(),
        "seed": seed,
        "labels": list(labels),
    }
    rng = np.random.default_rng(seed)

    with _Progress(progress) as bars:
        ref = stream_features(
            reference, geo, threshold=extractor.threshold, chunk_size=chunk_size,
            on_chunk=bars.task(f"features of {labels[0]}", n_ref_total),
        )  # fmt: skip
        voxel_hists: list[VoxelHistogram] = []
        if scheme == "official":  # edges from the reference maximum, filled while streaming
            voxel_hists = [
                VoxelHistogram(official_voxel_edges(extractor.threshold, ref.voxel_max))
                for _ in range(2)
            ]
        gen = stream_features(
            generated, geo, threshold=extractor.threshold, chunk_size=chunk_size,
            on_chunk=bars.task(f"features of {labels[1]}", n_gen_total),
            voxel_histograms=voxel_hists[1:],
        )  # fmt: skip
        metrics["n_reference"], metrics["n_generated"] = len(ref), len(gen)

        # ---- histograms and separation powers
        binnings = feature_binnings(ref.features, geo, extractor.threshold, scheme)
        ref_cols = feature_columns(ref.features, geo)
        gen_cols = feature_columns(gen.features, geo)
        pairs = histogram_pairs(ref_cols, gen_cols, binnings)
        seps = separation_powers(ref_cols, gen_cols, binnings, pairs)
        if scheme == "official":
            _fill_voxel_histogram(reference, geo, extractor, voxel_hists[0])
            voxel_binning = Binning(
                voxel_hists[0].edges, True, "voxel energy [MeV]", "voxel_energy"
            )
            pairs["voxel_energy"] = (voxel_hists[0].counts, voxel_hists[1].counts)
        else:
            voxel_binning = Binning(
                ref.voxel_spectrum.edges_for(50), True, "voxel energy [MeV]", "voxel_energy",
                official=False,
            )  # fmt: skip
            pairs["voxel_energy"] = (
                ref.voxel_spectrum.rebinned(voxel_binning.edges),
                gen.voxel_spectrum.rebinned(voxel_binning.edges),
            )
        seps["voxel_energy"] = separation_power(
            density(pairs["voxel_energy"][0], voxel_binning.edges),
            density(pairs["voxel_energy"][1], voxel_binning.edges),
            voxel_binning.edges,
        )
        all_binnings = {**binnings, "voxel_energy": voxel_binning}
        sparse = [k for k, (c_ref, _) in pairs.items() if c_ref.sum() < MIN_REFERENCE_ENTRIES]
        if sparse:
            notes.append(
                f"{len(sparse)} feature(s) have fewer than {MIN_REFERENCE_ENTRIES} reference "
                f"entries in their bins ({', '.join(sparse[:8])}{' ...' if len(sparse) > 8 else ''}),"
                " so their separation powers are listed but left out of the summary."
            )
        nan = [k for k, v in seps.items() if not math.isfinite(v)]
        if nan:
            notes.append(
                f"{len(nan)} separation power(s) are undefined (NaN, null in metrics.json) because "
                f"a histogram has no entries in its bins ({', '.join(nan[:8])}"
                f"{' ...' if len(nan) > 8 else ''}); the official code gives NaN there too."
            )
        main = {k for k, b in all_binnings.items() if b.official or scheme != "official"}
        kept = {k: v for k, v in seps.items() if k in main and k not in sparse and k not in nan}
        metrics["separation_power"] = {k: v for k, v in seps.items() if k in main}
        metrics["separation_power_extra"] = {k: v for k, v in seps.items() if k not in main}
        metrics["separation_power_entries"] = {
            k: [int(c_ref.sum()), int(c_gen.sum())] for k, (c_ref, c_gen) in pairs.items()
        }
        metrics["separation_power_summary"] = _summary_by_group(kept, all_binnings)
        metrics["separation_power_summary"]["all"] = {
            "mean": float(np.mean(list(kept.values()))) if kept else None,
            "max": float(np.max(list(kept.values()))) if kept else None,
            "n": len(kept),
        }
        metrics["binning"] = {k: b.to_dict() for k, b in all_binnings.items()}
        metrics["response"] = {
            key: {
                "mean": float(s.features.response.mean()),
                "std": float(s.features.response.std()),
            }
            for key, s in (("reference", ref), ("generated", gen))
        }
        metrics["response_per_energy"] = response_table(
            ref.features.e_inc, ref.features.e_tot, gen.features.e_inc, gen.features.e_tot
        )
        metrics["profiles"] = {
            "longitudinal": longitudinal_profile(ref.features.e_layer, gen.features.e_layer, geo),
            "radial": radial_profile(ref.mean_shower, gen.mean_shower, geo),
        }

        # ---- classifier tests
        metrics["classifier"] = {}
        if classifiers:
            n_each = min(len(ref), len(gen))
            if len(ref) != len(gen):
                if on_size_mismatch == "raise":
                    raise ConfigError(
                        f"the classifier test needs equally many showers, but "
                        f"{metrics['generated']} holds {len(gen)} and {metrics['reference']} "
                        f"holds {len(ref)}"
                    )
                larger = labels[0] if len(ref) > len(gen) else labels[1]
                notes.append(
                    f"The samples differ in size ({len(ref)} {labels[0]}, {len(gen)} "
                    f"{labels[1]} showers), so the classifier used a random {n_each} of the "
                    f"{larger} sample."
                )
            rows_ref = np.sort(rng.choice(len(ref), n_each, replace=False))
            rows_gen = np.sort(rng.choice(len(gen), n_each, replace=False))
            for mode in classifiers:
                tick = bars.task(f"classifier ({mode})", proto.max_epochs)
                if mode == "high":
                    x_ref = classifier_inputs("high", features=ref.features[rows_ref])
                    x_gen = classifier_inputs("high", features=gen.features[rows_gen])
                else:
                    cap = int(LOW_LEVEL_MEMORY_BYTES // (2 * 4 * (geo.n_voxels + geo.n_layers + 1)))
                    if proto.max_classifier_showers is not None:
                        cap = min(cap, proto.max_classifier_showers)
                    sub_ref, sub_gen = rows_ref, rows_gen
                    if cap < n_each:
                        notes.append(
                            f"The {mode} classifier used a random {cap} of the {n_each} showers "
                            f"per sample (protocol {proto.name!r} and memory cap)."
                        )
                        sub_ref = np.sort(rng.choice(rows_ref, cap, replace=False))
                        sub_gen = np.sort(rng.choice(rows_gen, cap, replace=False))
                    thr = mode in ("low", "resnet")
                    e_r, v_r = _load_rows(reference, sub_ref, geo, extractor, thr)
                    e_g, v_g = _load_rows(generated, sub_gen, geo, extractor, thr)
                    x_ref = classifier_inputs(
                        mode, incident_energies=e_r, showers=v_r, geometry=geo,
                        layer_energies=ref.features.e_layer[sub_ref],
                    )  # fmt: skip
                    del v_r
                    x_gen = classifier_inputs(
                        mode, incident_energies=e_g, showers=v_g, geometry=geo,
                        layer_energies=gen.features.e_layer[sub_gen],
                    )  # fmt: skip
                    del v_g

                def on_epoch(epoch: int, acc: float, tick: Callable[[int], None] = tick) -> None:
                    tick(1)

                if proto.name == "calochallenge":
                    result = official_classifier_test(
                        x_ref, x_gen, dataset=geo.name, seed=seed, mode=mode,
                        n_layer=proto.hidden_layers - 1, n_hidden=proto.hidden_units,
                        batch_size=proto.batch_size, n_epochs=proto.max_epochs,
                        learning_rate=proto.learning_rate,
                        on_epoch=on_epoch,
                        network="resnet" if mode == "resnet" else "dnn",
                        image_shape=image_shape(geo) if mode == "resnet" else None,
                    )  # fmt: skip
                else:
                    result = classifier_test(
                        x_ref, x_gen, protocol=proto, seed=seed, mode=mode,
                        on_epoch=on_epoch,
                    )  # fmt: skip
                tick(proto.max_epochs - result.epochs_run)  # early stopping: fill the bar
                metrics["classifier"][mode] = result.to_dict()

        # ---- FPD and KPD
        if distances:
            hl_ref, hl_gen = ref.features.high_level_vector(), gen.features.high_level_vector()
            d_seed = seed if proto.distance_seed is None else proto.distance_seed
            min_b, max_b, kpd_b = proto.fpd_min_batch, proto.fpd_max_batch, proto.kpd_batch
            n_avail = min(len(hl_ref), len(hl_gen))
            if proto.name != "calochallenge" and n_avail < max_b:
                # caloforge's cheaper protocols scale the batches down to the samples (the
                # official code draws its fixed batch sizes with replacement)
                min_b = max(2, int(min_b * n_avail / max_b))
                max_b, kpd_b = n_avail, min(kpd_b, max(2, n_avail // 2))
                notes.append(
                    f"Protocol {proto.name!r}: FPD batches scaled down to {min_b}-{max_b} and KPD "
                    f"batches to {kpd_b} showers for samples of {n_avail} (not the official "
                    "procedure)."
                )
            f = fpd(
                hl_ref, hl_gen, min_batch=min_b, max_batch=max_b,
                n_sizes=proto.fpd_n_sizes, n_batches=proto.fpd_n_batches, seed=d_seed,
            )  # fmt: skip
            k = kpd(hl_ref, hl_gen, batch=kpd_b, n_batches=proto.kpd_n_batches, seed=d_seed)
            metrics["fpd"], metrics["kpd"] = f.to_dict(), k.to_dict()
            notes += [r.note[0].upper() + r.note[1:] + "." for r in (f, k) if r.note]

        # ---- PRDC
        if prdc_k is not None:
            from caloforge.evaluate.prdc import prdc, prdc_features

            cap = int(LOW_LEVEL_MEMORY_BYTES // (2 * 4 * geo.n_voxels))
            rows = []
            for n_rows, label in ((len(ref), labels[0]), (len(gen), labels[1])):
                if n_rows > cap:
                    notes.append(
                        f"PRDC used a random {cap} of the {n_rows} {label} showers (memory cap)."
                    )
                    rows.append(np.sort(rng.choice(n_rows, cap, replace=False)))
                else:
                    rows.append(np.arange(n_rows))
            _, v_ref = _load_rows(reference, rows[0], geo, extractor)
            _, v_gen = _load_rows(generated, rows[1], geo, extractor)
            metrics["prdc"] = {
                **prdc(prdc_features(v_ref), prdc_features(v_gen), nearest_k=prdc_k),
                "nearest_k": prdc_k, "n_reference": len(v_ref), "n_generated": len(v_gen),
            }  # fmt: skip
            del v_ref, v_gen

        # ---- every registered metric (caloforge.evaluate.registry: one file each)
        metrics["metrics"], metric_notes = compute_metrics(ref.features, gen.features, seed=seed)
        notes += metric_notes

        # ---- figures
        figures: list[dict] = []
        if plots:
            figures = _draw_figures(
                out / "figures", ref, gen, geo, all_binnings, seps, pairs, metrics, labels,
                bars, summary,
            )  # fmt: skip
        metrics["figures"] = figures
        metrics["summary_only"] = bool(summary and plots)
        if seconds_per_shower is not None:
            metrics["timing"] = {
                "seconds_per_shower": float(seconds_per_shower), "source": "evaluate argument"
            }  # fmt: skip
        metrics["notes"] = notes

    metrics["verdict"] = verdict(_clean(metrics), limits)
    metrics = _clean(metrics)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(render_html(metrics, out), encoding="utf-8")
    return metrics


def _draw_figures(
    fig_dir: Path,
    ref: StreamedSample,
    gen: StreamedSample,
    geo: Geometry,
    binnings: dict[str, Binning],
    seps: dict[str, float],
    pairs: dict[str, tuple[np.ndarray, np.ndarray]],
    metrics: dict,
    labels: tuple[str, str],
    bars: _Progress,
    summary: bool,
) -> list[dict]:
    """Draw the figures; ``summary``: only the first screen's (group ``key``)."""
    from caloforge.evaluate.plots import (
        plot_classifier_scores,
        plot_feature,
        plot_layer_images,
        plot_longitudinal,
        plot_radial,
        plot_response,
    )

    def entry(path: Path, group: str, layer, title: str) -> dict:
        return {"path": f"figures/{path.name}", "group": group, "layer": layer, "title": title}

    detail = [] if summary else [n for n in binnings if n != "voxel_energy"]
    has_scores = any(c.get("score_histogram") for c in metrics.get("classifier", {}).values())
    n_key = 4 + int(has_scores)
    tick = bars.task("figures", n_key + len(detail) + (0 if summary else geo.n_layers))
    profiles = metrics["profiles"]
    figures = [
        entry(
            plot_response(fig_dir / "response_vs_e_inc.png", metrics["response_per_energy"],
                          labels=labels),
            "key", None, "response and resolution against E_inc",
        ),
        entry(
            plot_longitudinal(fig_dir / "profile_longitudinal.png", profiles["longitudinal"],
                              labels=labels),
            "key", None, "mean longitudinal profile",
        ),
        entry(
            plot_radial(fig_dir / "profile_radial.png", profiles["radial"], labels=labels),
            "key", None, "mean radial profile",
        ),
    ]  # fmt: skip
    tick(3)
    voxel = binnings["voxel_energy"]
    if np.all(np.isfinite(voxel.edges)):
        path = plot_feature(
            fig_dir / "voxel_energy.png", *pairs["voxel_energy"], voxel,
            separation=seps["voxel_energy"], labels=labels,
        )  # fmt: skip
        figures.append(entry(path, "key", None, "voxel energy spectrum"))
    tick(1)
    if has_scores:
        path = plot_classifier_scores(
            fig_dir / "classifier_scores.png", metrics["classifier"], labels=labels
        )
        figures.append(entry(path, "key", None, "classifier score histograms (held-out part)"))
        tick(1)
    for name in detail:
        binning = binnings[name]
        if np.all(np.isfinite(binning.edges)):  # an empty reference layer: nothing to draw
            path = plot_feature(
                fig_dir / f"{name}.png", *pairs[name], binning, separation=seps[name],
                labels=labels,
            )  # fmt: skip
            figures.append(entry(path, binning.group, binning.layer, binning.label))
        tick(1)
    if not summary:
        for pos, lid in enumerate(geo.layer_ids):
            path = plot_layer_images(
                fig_dir / f"image_layer_{lid}.png", ref.mean_shower, gen.mean_shower, geo, pos,
                labels=labels,
            )  # fmt: skip
            figures.append(entry(path, "image", int(lid), f"average shower, layer {lid}"))
            tick(1)
    return figures


# --------------------------------------------------------------------------- compare
@dataclass
class ComparisonTable:
    """Headline metrics of several runs: ``columns`` names, one row per run, and the points of
    the fidelity-against-time plane (:mod:`caloforge.evaluate.pareto`)."""

    columns: list[str]
    rows: list[list]
    notes: list[str]
    metric: str = "cls-high.auc"
    pareto: list[dict] = field(default_factory=list)

    def to_markdown(self) -> str:
        def cell(v):
            return "–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in self.rows]
        return "\n".join(lines + [f"\n{n}" for n in self.notes])

    def to_dict(self) -> dict:
        return {
            "columns": self.columns, "rows": self.rows, "notes": self.notes,
            "metric": self.metric, "pareto": self.pareto,
        }  # fmt: skip


def load_metrics(run: str | os.PathLike) -> dict:
    """The metrics of an evaluated run: a directory holding ``metrics.json``, or the file."""
    path = Path(run)
    if path.is_dir():
        path = path / "metrics.json"
    if not path.is_file():
        raise ConfigError(f"{run} has no metrics.json; run `caloforge evaluate` on it first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None


def run_name(run: str | os.PathLike) -> str:
    """The name a run is shown and matched (timing files) under: its directory's name."""
    path = Path(run)
    if path.name == "metrics.json":
        path = path.parent
    return path.resolve().name if path.name in ("", ".", "..") else path.name


def compare(
    runs: Sequence[str | os.PathLike],
    *,
    metric: str = "cls-high.auc",
    timings: dict[str, float] | None = None,
    pareto_png: str | os.PathLike | None = None,
) -> ComparisonTable:
    """One row of headline metrics per evaluated run (directories written by :func:`evaluate`)
    and the fidelity (``metric``) against time-per-shower points; ``pareto_png``: also draw
    that plane there (needs at least one run with timing)."""
    from caloforge.evaluate.pareto import pareto_points

    if not runs:
        raise ConfigError("give at least one evaluated run directory to compare")
    columns = [
        "run", "geometry", "protocol", "N gen", "AUC high", "JSD high", "AUC low", "JSD low",
        "FPD", "KPD", "S mean", "S response", "s / shower",
    ]  # fmt: skip
    rows, protocols, geometries, loaded = [], set(), set(), []
    for run in runs:
        m = load_metrics(run)
        loaded.append((run_name(run), m))
        cls = m.get("classifier", {})
        seps = m.get("separation_power", {})
        protocols.add(m["protocol"]["name"])
        geometries.add(m["geometry"])
        rows.append([
            run_name(run), m["geometry"], m["protocol"]["name"], m["n_generated"],
            cls.get("high", {}).get("auc"), cls.get("high", {}).get("jsd"),
            cls.get("low", {}).get("auc"), cls.get("low", {}).get("jsd"),
            m.get("fpd", {}).get("value"), m.get("kpd", {}).get("value"),
            m.get("separation_power_summary", {}).get("all", {}).get("mean"), seps.get("response"),
            (m.get("timing") or {}).get("seconds_per_shower"),
        ])  # fmt: skip
    points, notes = pareto_points(loaded, metric, timings)
    by_name = {p["run"]: p["seconds_per_shower"] for p in points}
    for row in rows:
        row[-1] = by_name.get(row[0], row[-1])
    if len(protocols) > 1:
        notes.append(
            f"The runs used different protocols ({', '.join(sorted(protocols))}); their "
            "classifier and distance numbers are not comparable."
        )
    if len(geometries) > 1:
        notes.append(f"The runs are in different geometries ({', '.join(sorted(geometries))}).")
    if pareto_png is not None:
        if not points:
            raise ConfigError(
                "no run has timing, so there is no Pareto plane to draw; record it with "
                "`caloforge evaluate --seconds-per-shower` or pass --timing"
            )
        from caloforge.evaluate.plots import plot_pareto

        plot_pareto(Path(pareto_png), points, metric=metric)
    return ComparisonTable(columns, rows, notes, metric, points)
