"""Figures of the evaluation report (matplotlib, PNG), drawn on local Agg canvases.

Each figure is a :class:`matplotlib.figure.Figure` printed through its own
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`: this module neither imports
``matplotlib.pyplot`` nor sets the global backend, and it is imported only when figures are
drawn.

* :func:`plot_feature`: one feature in one layer -- the reference as a filled histogram, the
  generated sample as a line, both unit area, with a ratio panel (generated / reference, error
  bars from the generated counts) and the separation power in the legend;
* :func:`plot_layer_images`: the average shower of one layer, reference | generated | ratio,
  drawn in (alpha, r) for cylindrical layers and in (x, y) for Cartesian ones;
* :func:`plot_response`: mean response E_tot/E_inc and resolution std/mean of E_tot per
  incident-energy bin;
* :func:`plot_longitudinal`, :func:`plot_radial`: mean energy per layer and per unit radius;
* :func:`plot_classifier_scores`: the held-out classifier scores of the reference and the
  generated showers, one panel per classifier input;
* :func:`plot_pareto`: a fidelity metric against time per shower for several runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from caloforge.evaluate.histograms import Binning, density
from caloforge.evaluate.profiles import response_table  # noqa: F401  (kept importable here)
from caloforge.geometry import CylindricalLayer, Geometry
from caloforge.ioutil import atomic_path

#: a plain ROOT-like look (ticks inside on all sides), applied per figure
STYLE: dict[Any, Any] = {  # matplotlib types rc keys as a Literal union
    "font.size": 12, "axes.labelsize": 12, "xtick.direction": "in", "ytick.direction": "in",
    "xtick.top": True, "ytick.right": True, "xtick.minor.visible": True,
    "ytick.minor.visible": True, "legend.frameon": False, "axes.grid": False,
}  # fmt: skip
DPI = 72
REF_COLOUR, GEN_COLOUR = "#9fb8d6", "#c0392b"


def _figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png", bbox_inches="tight", pad_inches=0.08)
    return path


def _hist(ax, values, edges, *, fill: bool, **kwargs) -> None:
    ax.stairs(values, edges, fill=fill, **kwargs)


def plot_feature(
    path: str | Path,
    ref_counts: np.ndarray,
    gen_counts: np.ndarray,
    binning: Binning,
    *,
    separation: float | None = None,
    labels: tuple[str, str] = ("reference", "generated"),
) -> Path:
    """Unit-area histograms of one feature with a generated/reference ratio panel."""
    edges = binning.edges
    h_ref, h_gen = density(ref_counts, edges), density(gen_counts, edges)
    with rc_context(STYLE):
        fig = _figure((6, 5.2))
        top, bottom = fig.subplots(
            2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05}
        )
        _hist(top, h_ref, edges, fill=True, color=REF_COLOUR, label=labels[0])
        gen_label = labels[1] if separation is None else f"{labels[1]} (S = {separation:.4f})"
        _hist(top, h_gen, edges, fill=False, color=GEN_COLOUR, lw=1.8, label=gen_label)
        top.set_ylabel("a.u.")
        top.legend(fontsize=11, loc="best")
        if binning.log:
            top.set_xscale("log")
            bottom.xaxis.set_minor_formatter(NullFormatter())
        if np.any(h_ref > 0) or np.any(h_gen > 0):
            top.set_ylim(0, 1.25 * max(h_ref.max(), h_gen.max()))
        centres = np.sqrt(edges[1:] * edges[:-1]) if binning.log else 0.5 * (edges[1:] + edges[:-1])
        ok = h_ref > 0
        ratio = np.divide(h_gen, h_ref, out=np.full_like(h_gen, np.nan), where=ok)
        err = ratio / np.sqrt(np.maximum(np.asarray(gen_counts, dtype=float), 1.0))
        bottom.axhline(1.0, color="grey", lw=1)
        bottom.errorbar(centres[ok], ratio[ok], yerr=err[ok], fmt="o", ms=2.5, color=GEN_COLOUR)
        bottom.set_ylim(0.5, 1.5)
        bottom.set_ylabel("gen / ref", fontsize=11)
        bottom.set_xlabel(binning.label, fontsize=12)
        return _save(fig, Path(path))


def _layer_panels(geometry: Geometry, pos: int, n: int):
    layer = geometry.layers[pos]
    if isinstance(layer, CylindricalLayer):
        fig = _figure((12, 4.2))
        axes = [fig.add_subplot(1, n, i + 1, projection="polar") for i in range(n)]
    else:
        fig = _figure((12, 4.2))
        axes = fig.subplots(1, n)
    return fig, list(axes)


def _draw_layer(
    ax, geometry: Geometry, pos: int, values: np.ndarray, norm
) -> Any:  # a QuadMesh; matplotlib only imported when drawing
    layer = geometry.layers[pos]
    if isinstance(layer, CylindricalLayer):
        grid = values.reshape(layer.shape)  # (n_alpha, n_radial)
        theta, radius = np.meshgrid(layer.alpha_edges, np.asarray(layer.r_edges), indexing="ij")
        mesh = ax.pcolormesh(theta, radius, grid, norm=norm, cmap="viridis", shading="flat")
        ax.set_yticklabels([])
        ax.grid(False)
        return mesh
    grid = values.reshape(layer.shape)  # (nx, ny)
    xe, ye = layer.x_edges, layer.y_edges
    mesh = ax.pcolormesh(xe, ye, grid.T, norm=norm, cmap="viridis", shading="flat")
    ax.set_xlabel("x [mm]", fontsize=11)
    ax.set_ylabel("y [mm]", fontsize=11)
    return mesh


def plot_layer_images(
    path: str | Path,
    ref_mean: np.ndarray,
    gen_mean: np.ndarray,
    geometry: Geometry,
    pos: int,
    *,
    labels: tuple[str, str] = ("reference", "generated"),
) -> Path:
    """Average energy per voxel (MeV) of layer position ``pos``: reference, generated, ratio."""
    sl = geometry.layer_slices[pos]
    ref, gen = np.asarray(ref_mean)[sl], np.asarray(gen_mean)[sl]
    positive = np.concatenate([ref[ref > 0], gen[gen > 0]])
    with rc_context(STYLE):
        fig, axes = _layer_panels(geometry, pos, 3)
        if positive.size:
            norm = LogNorm(vmin=max(positive.min(), positive.max() * 1e-6), vmax=positive.max())
            for ax, values, title in zip(axes[:2], (ref, gen), labels, strict=True):
                mesh = _draw_layer(ax, geometry, pos, np.where(values > 0, values, np.nan), norm)
                ax.set_title(f"{title}", fontsize=12)
            fig.colorbar(mesh, ax=axes[:2], shrink=0.8, label="mean energy [MeV]")
            ratio = np.divide(gen, ref, out=np.full_like(gen, np.nan), where=ref > 0)
            rmesh = _draw_layer(axes[2], geometry, pos, ratio, Normalize(vmin=0.5, vmax=1.5))
            rmesh.set_cmap("coolwarm")
            axes[2].set_title("generated / reference", fontsize=12)
            fig.colorbar(rmesh, ax=axes[2], shrink=0.8)
        else:
            for ax in axes:
                ax.set_axis_off()
            fig.text(0.5, 0.5, "no energy in this layer", ha="center")
        fig.suptitle(f"average shower, layer {geometry.layer_ids[pos]}", fontsize=13)
        return _save(fig, Path(path))


def plot_response(path: str | Path, table: dict, *, labels=("reference", "generated")) -> Path:
    """Mean response and resolution against incident energy from :func:`response_table`."""
    with rc_context(STYLE):
        fig = _figure((6, 6))
        top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"hspace": 0.08})
        for key, label, style in (
            ("reference", labels[0], {"color": "#1f4e79", "marker": "s", "ls": "-"}),
            (
                "generated",
                labels[1],
                {"color": GEN_COLOUR, "marker": "o", "ls": "--", "mfc": "none"},
            ),
        ):
            rows = table[key]
            top.plot(rows["e_inc"], rows["response"], label=label, **style)
            bottom.plot(rows["e_inc"], rows["resolution"], label=label, **style)
        top.set_xscale("log")
        bottom.xaxis.set_minor_formatter(NullFormatter())
        top.set_ylabel("mean E_tot / E_inc", fontsize=12)
        bottom.set_ylabel("std / mean of E_tot", fontsize=12)
        bottom.set_xlabel("E_inc [MeV]", fontsize=12)
        top.legend(fontsize=11)
        return _save(fig, Path(path))


def plot_longitudinal(
    path: str | Path, profile: dict, *, labels=("reference", "generated")
) -> Path:
    """Mean energy per layer (MeV) from :func:`~caloforge.evaluate.profiles.longitudinal_profile`."""
    pos = np.arange(len(profile["layers"]))
    with rc_context(STYLE):
        fig = _figure((6, 4.4))
        ax = fig.subplots()
        edges = np.arange(len(pos) + 1) - 0.5
        _hist(ax, profile["reference"], edges, fill=True, color=REF_COLOUR, label=labels[0])
        _hist(
            ax, profile["generated"], edges, fill=False, color=GEN_COLOUR, lw=1.8, label=labels[1]
        )
        ax.set_xticks(pos, [str(lid) for lid in profile["layers"]])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="x", which="minor", bottom=False, top=False)
        if max(profile["reference"] + profile["generated"], default=0) > 0:
            ax.set_yscale("log")
        ax.set_xlabel("layer")
        ax.set_ylabel("mean energy per shower [MeV]")
        ax.legend(fontsize=11)
        return _save(fig, Path(path))


def plot_radial(path: str | Path, profile: dict, *, labels=("reference", "generated")) -> Path:
    """Mean energy per unit radius (MeV/mm) from :func:`~caloforge.evaluate.profiles.radial_profile`."""
    edges = np.asarray(profile["edges"], dtype=float)
    with rc_context(STYLE):
        fig = _figure((6, 4.4))
        ax = fig.subplots()
        _hist(ax, profile["reference"], edges, fill=True, color=REF_COLOUR, label=labels[0])
        _hist(
            ax, profile["generated"], edges, fill=False, color=GEN_COLOUR, lw=1.8, label=labels[1]
        )
        if max(profile["reference"] + profile["generated"], default=0) > 0:
            ax.set_yscale("log")
        if edges[0] >= 0 and edges[1] > 0 and edges[-1] / edges[1] > 50:
            ax.set_xscale("symlog", linthresh=edges[1], linscale=0.5)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel("r [mm] (all layers)")
        ax.set_ylabel("mean energy per shower [MeV / mm]")
        ax.legend(fontsize=11)
        return _save(fig, Path(path))


def plot_classifier_scores(
    path: str | Path, results: dict[str, dict], *, labels=("reference", "generated")
) -> Path:
    """Histograms (unit area) of the classifier's held-out scores, reference filled and
    generated as a line, one panel per input mode.

    Args:
        results: mode -> a classifier entry of metrics.json (``score_histogram`` with
            ``edges``, ``reference``, ``generated`` counts and ``label``; ``auc``, ``jsd``).
    """
    modes = [k for k, v in results.items() if v.get("score_histogram")]
    if not modes:
        raise ValueError("no classifier result holds a score histogram")
    with rc_context(STYLE):
        fig = _figure((5.2 * len(modes), 4.4))
        axes = np.atleast_1d(fig.subplots(1, len(modes), squeeze=False)[0])
        for ax, mode in zip(axes, modes, strict=True):
            hist = results[mode]["score_histogram"]
            edges = np.asarray(hist["edges"], dtype=float)
            width = np.diff(edges)
            for key, label, fill, style in (
                ("reference", labels[0], True, {"color": REF_COLOUR}),
                ("generated", labels[1], False, {"color": GEN_COLOUR, "lw": 1.8}),
            ):
                counts = np.asarray(hist[key], dtype=float)
                dens = counts / max(counts.sum(), 1.0) / width
                _hist(ax, dens, edges, fill=fill, label=f"{label} ({int(counts.sum())})", **style)
            ax.set_xlim(edges[0], edges[-1])
            ax.set_xlabel(hist.get("label") or "classifier score", fontsize=10)
            ax.set_ylabel("density")
            ax.set_title(
                f"cls-{mode}: AUC {results[mode]['auc']:.3f}, JSD {results[mode]['jsd']:.3f}",
                fontsize=12,
            )
            ax.legend(fontsize=10)
        return _save(fig, Path(path))


def plot_pareto(path: str | Path, points: list[dict], *, metric: str) -> Path:
    """``metric`` of each run against its time per shower (log x), one labelled marker per
    point (dicts with ``run``, ``seconds_per_shower``, ``value``); the lower-left front (lower
    is better for both axes) joined by a line."""
    with rc_context(STYLE):
        fig = _figure((6.5, 4.8))
        ax = fig.subplots()
        xs = np.array([p["seconds_per_shower"] for p in points], dtype=float)
        ys = np.array([p["value"] for p in points], dtype=float)
        ax.scatter(xs, ys, color=GEN_COLOUR, zorder=3)
        for p, x, y in zip(points, xs, ys, strict=True):
            ax.annotate(p["run"], (x, y), textcoords="offset points", xytext=(5, 5), fontsize=10)
        front = [p for p in points if p.get("pareto")]
        if len(front) > 1:
            order = np.argsort([p["seconds_per_shower"] for p in front])
            ax.plot(
                [front[i]["seconds_per_shower"] for i in order],
                [front[i]["value"] for i in order],
                color="grey", ls="--", lw=1, zorder=2, label="Pareto front",
            )  # fmt: skip
            ax.legend(fontsize=10)
        ax.set_xscale("log")
        ax.margins(x=0.2, y=0.12)  # room for the labels
        ax.set_xlabel("time per shower [s]")
        ax.set_ylabel(metric)
        return _save(fig, Path(path))
