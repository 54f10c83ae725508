"""Figures of the evaluation report (matplotlib, mplhep ROOT style, PNG).

* :func:`plot_feature`: one feature in one layer -- the reference as a filled histogram, the
  generated sample as a line, both unit area, with a ratio panel (generated / reference, error
  bars from the generated counts) and the separation power in the legend;
* :func:`plot_layer_images`: the average shower of one layer, reference | generated | ratio,
  drawn in (alpha, r) for cylindrical layers and in (x, y) for Cartesian ones;
* :func:`plot_response`: mean response E_tot/E_inc and resolution std/mean of E_tot per
  incident-energy bin.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep as hep  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from caloforge.evaluate.histograms import Binning, density  # noqa: E402
from caloforge.geometry import CylindricalLayer, Geometry  # noqa: E402
from caloforge.ioutil import atomic_path  # noqa: E402

STYLE = hep.style.ROOT
DPI = 72
REF_COLOUR, GEN_COLOUR = "#9fb8d6", "#c0392b"


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png", bbox_inches="tight", pad_inches=0.08)
    plt.close(fig)
    return path


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
    with plt.style.context(STYLE):
        fig, (top, bottom) = plt.subplots(
            2,
            1,
            figsize=(6, 5.2),
            sharex=True,
            gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05},
        )
        hep.histplot(h_ref, edges, ax=top, histtype="fill", color=REF_COLOUR, label=labels[0])
        gen_label = labels[1] if separation is None else f"{labels[1]} (S = {separation:.4f})"
        hep.histplot(
            h_gen, edges, ax=top, histtype="step", color=GEN_COLOUR, lw=1.8, label=gen_label
        )
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
        fig = plt.figure(figsize=(12, 4.2))
        axes = [fig.add_subplot(1, n, i + 1, projection="polar") for i in range(n)]
    else:
        fig, axes = plt.subplots(1, n, figsize=(12, 4.2))
    return fig, list(axes)


def _draw_layer(ax, geometry: Geometry, pos: int, values: np.ndarray, norm) -> object:
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
    with plt.style.context(STYLE):
        fig, axes = _layer_panels(geometry, pos, 3)
        if positive.size:
            norm = LogNorm(vmin=max(positive.min(), positive.max() * 1e-6), vmax=positive.max())
            for ax, values, title in zip(axes[:2], (ref, gen), labels, strict=True):
                mesh = _draw_layer(ax, geometry, pos, np.where(values > 0, values, np.nan), norm)
                ax.set_title(f"{title}", fontsize=12)
            fig.colorbar(mesh, ax=axes[:2], shrink=0.8, label="mean energy [MeV]")
            ratio = np.divide(gen, ref, out=np.full_like(gen, np.nan), where=ref > 0)
            rmesh = _draw_layer(
                axes[2], geometry, pos, ratio, matplotlib.colors.Normalize(vmin=0.5, vmax=1.5)
            )
            rmesh.set_cmap("coolwarm")
            axes[2].set_title("generated / reference", fontsize=12)
            fig.colorbar(rmesh, ax=axes[2], shrink=0.8)
        else:
            for ax in axes:
                ax.set_axis_off()
            fig.text(0.5, 0.5, "no energy in this layer", ha="center")
        fig.suptitle(f"average shower, layer {geometry.layer_ids[pos]}", fontsize=13)
        return _save(fig, Path(path))


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
        rows = {"e_inc": [], "response": [], "resolution": [], "n": []}
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


def plot_response(path: str | Path, table: dict, *, labels=("reference", "generated")) -> Path:
    """Mean response and resolution against incident energy from :func:`response_table`."""
    with plt.style.context(STYLE):
        fig, (top, bottom) = plt.subplots(
            2, 1, figsize=(6, 6), sharex=True, gridspec_kw={"hspace": 0.08}
        )
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
