"""Evaluate the hybrid quantum GANs on reference-simulator showers in the ds2 geometry.

For each model: mean shower shape along each image axis (pixel fractions) and its MSE against a
validation sample (also for the untrained circuit), the shower-to-shower spread of the shapes,
per-pixel energy distributions, and the total-energy response E_dep / E_inc per incident-energy
bin. Plots go to docs/figures/qgan/, numbers to benchmarks/results/qgan_eval.json.

    python benchmarks/eval_qgan.py            # refsim ds2 electrons, a few minutes per model
    python benchmarks/eval_qgan.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from caloforge.geometry import get_geometry
from caloforge.io import Showers
from caloforge.ioutil import atomic_path
from caloforge.models.qgan import QGAN, DistributionQGAN, demo_config
from caloforge.refsim import simulate

ROOT = Path(__file__).resolve().parents[1]
FIG_DIR = ROOT / "docs" / "figures" / "qgan"
OUT = ROOT / "benchmarks" / "results" / "qgan_eval.json"
E_BINS = np.geomspace(1e3, 1e6, 7)


def load_data(n_train: int, n_val: int) -> tuple[Showers, Showers, str]:
    spec = "loguniform:1e3:1e6"
    train = simulate("ds2", "electron", spec, n=n_train, seed=1)
    val = simulate("ds2", "electron", spec, n=n_val, seed=2)
    return train, val, "refsim ds2 electrons, log-uniform 1 GeV - 1 TeV"


def evaluate(model, val: Showers, seed: int = 3) -> dict:
    ds = model.downsampler
    real_px = ds.forward(val.showers.astype(np.float64))
    gen_showers = model.sample(val.incident_energies, seed=seed)
    gen_px = ds.forward(gen_showers.astype(np.float64))
    out: dict = {"axes": {}}
    for axis in ds.axis_names:
        r = ds.profiles(real_px)[axis]
        g = ds.profiles(gen_px)[axis]
        r_shape = (r / r.sum(1, keepdims=True)).mean(0)
        g_shape = (g / g.sum(1, keepdims=True).clip(1e-12)).mean(0)
        out["axes"][axis] = {
            "real": r_shape.tolist(),
            "generated": g_shape.tolist(),
            "mse": float(((g_shape - r_shape) ** 2).mean()),
        }
    e = val.incident_energies
    resp = []
    for lo, hi in zip(E_BINS[:-1], E_BINS[1:], strict=True):
        m = (e >= lo) & (e < hi)
        rr, gr = real_px[m].sum(1) / e[m], gen_px[m].sum(1) / e[m]
        resp.append(
            {
                "e_lo": lo,
                "e_hi": hi,
                "n": int(m.sum()),
                "real_mean": float(rr.mean()),
                "real_std": float(rr.std()),
                "gen_mean": float(gr.mean()),
                "gen_std": float(gr.std()),
            }
        )
    out["response"] = resp
    # per-pixel energy distributions: mean |difference| of log10 quantiles (10, 50, 90 %)
    q = [10, 50, 90]
    lr = np.log10(np.percentile(real_px, q, axis=0) + 1e-3)
    lg = np.log10(np.percentile(gen_px, q, axis=0) + 1e-3)
    out["pixel_log10_quantile_diff"] = float(np.abs(lr - lg).mean())
    # shower-to-shower spread of the shapes: per-pixel std of the generated over the real
    # fractions, averaged with the real mean fractions as weights (1 = right spread, 0 = none)
    fr = real_px / real_px.sum(1, keepdims=True).clip(1e-12)
    fg = gen_px / gen_px.sum(1, keepdims=True).clip(1e-12)
    ratio = fg.std(0) / fr.std(0).clip(1e-12)
    out["shape_std_ratio"] = float((ratio * fr.mean(0)).sum() / fr.mean(0).sum())
    out["_pixels"] = (real_px, gen_px)
    return out


def plot(name: str, model, result: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIG_DIR.mkdir(parents=True, exist_ok=True)
    files = []
    axes = result["axes"]
    fig, axs = plt.subplots(1, len(axes) + 1, figsize=(4.2 * (len(axes) + 1), 3.4))
    for ax, (axis, d) in zip(axs, axes.items(), strict=False):
        ax.step(range(8), d["real"], where="mid", label="validation", color="k")
        ax.step(range(8), d["generated"], where="mid", label=name, color="C1")
        ax.set(xlabel=f"{axis} pixel", ylabel="mean energy fraction", yscale="log")
        ax.set_title(f"MSE {d['mse']:.2e}", fontsize=9)
        ax.legend(fontsize=8)
    ax = axs[-1]
    centres = np.sqrt(E_BINS[:-1] * E_BINS[1:])
    r = result["response"]
    ax.errorbar(
        centres,
        [x["real_mean"] for x in r],
        [x["real_std"] for x in r],
        fmt="ko",
        label="validation",
    )
    ax.errorbar(
        centres * 1.08,
        [x["gen_mean"] for x in r],
        [x["gen_std"] for x in r],
        fmt="s",
        color="C1",
        label=name,
    )
    ax.set(xscale="log", xlabel="E_inc [MeV]", ylabel="E_dep / E_inc")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = FIG_DIR / f"{name}_shapes.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    files.append(str(path.relative_to(ROOT)))
    real_px, gen_px = result["_pixels"]
    n_pix = real_px.shape[1]
    show = range(8) if n_pix == 8 else [0, 9, 18, 27, 36, 45, 54, 63]
    fig, axs = plt.subplots(2, 4, figsize=(13, 5.5))
    for ax, p in zip(axs.ravel(), show, strict=True):
        bins = np.linspace(-1, 6, 50)
        ax.hist(
            np.log10(real_px[:, p] + 1e-1), bins, histtype="step", color="k", label="validation"
        )
        ax.hist(np.log10(gen_px[:, p] + 1e-1), bins, histtype="step", color="C1", label=name)
        ax.set_title(f"pixel {p}", fontsize=9)
        ax.set_xlabel("log10(E / MeV + 0.1)")
    axs[0, 0].legend(fontsize=7)
    fig.tight_layout()
    path = FIG_DIR / f"{name}_pixels.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    files.append(str(path.relative_to(ROOT)))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", help="names of the runs to do")
    args = parser.parse_args()
    n_train, n_val = (400, 300) if args.quick else (4000, 2000)
    scale = 0.1 if args.quick else 1.0
    train, val, source = load_data(n_train, n_val)
    geo = get_geometry("ds2")
    epochs = max(1, int(10 * scale))
    runs = {
        "qgan-1d": (QGAN, demo_config("1d", epochs=epochs, steps_per_epoch=40)),
        "qgan-1d-energy": (
            QGAN,
            demo_config("1d", pixels="energy", epochs=epochs, steps_per_epoch=40),
        ),
        "qgan-2d": (QGAN, demo_config("2d", epochs=epochs)),
        # ablation: the same without the feature-matching term, i.e. adversarial loss only
        "qgan-2d-no-moment": (QGAN, demo_config("2d", epochs=epochs, moment_weight=0.0)),
        # the first version: no warm start, no feature matching, the large fast discriminator
        "qgan-2d-first-version": (
            QGAN,
            demo_config(
                "2d",
                epochs=epochs,
                pretrain_steps=0,
                moment_weight=0.0,
                lr_d=0.002,
                disc_hidden=[64, 32],
                disc_log_floor=1e-6,
            ),
        ),
        "qgan-dist-1d": (
            DistributionQGAN,
            demo_config("1d", epochs=max(1, int(20 * scale)), steps_per_epoch=10),
        ),
        "qgan-dist-2d": (
            DistributionQGAN,
            demo_config("2d", n_layers=6, epochs=max(1, int(20 * scale)), steps_per_epoch=10),
        ),
        "qgan-dist-1d-shots100": (
            DistributionQGAN,
            demo_config(
                "1d",
                epochs=max(1, int(10 * scale)),
                steps_per_epoch=10,
                shots=100,
                diff_method="parameter-shift",
            ),
        ),
    }
    report = {"data": source, "n_train": n_train, "n_val": n_val, "runs": {}}
    if OUT.exists() and args.only:
        report["runs"] = json.loads(OUT.read_text()).get("runs", {})
    for name, (cls, cfg) in runs.items():
        if args.only and name not in args.only:
            continue
        model = cls(geo, cfg)
        model.generator.reset_parameters(0)
        model._prepare(train)
        untrained = evaluate(model, val)
        t0 = time.perf_counter()
        history = model.fit(train, val, seed=0, progress=False)
        seconds = time.perf_counter() - t0
        result = evaluate(model, val)
        files = plot(name, model, result)
        result.pop("_pixels")
        result["untrained_mse"] = {k: v["mse"] for k, v in untrained["axes"].items()}
        result["train_seconds"] = seconds
        result["config"] = cfg
        result["history"] = history
        result["figures"] = files
        report["runs"][name] = result
        mses = ", ".join(
            f"{k} {v['mse']:.2e} (untrained {result['untrained_mse'][k]:.2e})"
            for k, v in result["axes"].items()
        )
        print(
            f"{name:24s} {seconds:6.0f} s  shape MSE: {mses}; pixel q-diff "
            f"{result['pixel_log10_quantile_diff']:.3f}; shape std ratio "
            f"{result['shape_std_ratio']:.2f}",
            flush=True,
        )
    with atomic_path(OUT) as tmp:
        tmp.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
