"""How the quality of the 1D hybrid quantum GANs degrades with hardware noise, over several seeds.

Two questions, both for ``qgan-dist`` 1D and ``qgan`` 1D (3 qubits, ds2 refsim electrons):

1. *Noise at execution time*: train noiselessly (seeds 0, 1, 2), then run the same weights on a
   noisy simulated device (``model.with_hardware``, mixed-state simulator) with depolarising
   rates, amplitude-damping rates, and both channels at once, each in
   [0, 0.005, 0.01, 0.02, 0.05, 0.1] per qubit per layer.
2. *Noise-aware training*: train with both channels on at rate r (``qgan-dist``: r = 0.01, 0.05;
   ``qgan``: r = 0.01), evaluate on that device and compare with the noiseless-trained models run
   at the same r (paired by seed: same initial weights and batch order).

Metric: ``model.shape_mse`` on all validation showers (MSE between mean generated and mean real
pixel-fraction shape). Reference levels: the untrained circuit (same seeds), the uniform shape
(fully depolarised limit) and all energy in pixel 0 (|000>, fully damped limit).
Spreads are sample standard deviations over seeds (ddof=1).

    python benchmarks/qgan_noise_scan.py              # full run, about 20-30 min on one thread
    python benchmarks/qgan_noise_scan.py --quick      # smoke run (~1 min), outputs to a temp dir
    python benchmarks/qgan_noise_scan.py --skip-qgan-noise-training   # drop the slowest part

Writes benchmarks/results/qgan_noise.json and docs/figures/qgan/noise_scan.png.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pennylane as qml
import torch

from caloforge.geometry import get_geometry
from caloforge.io import Showers
from caloforge.ioutil import atomic_path
from caloforge.models.qgan import QGAN, DistributionQGAN, demo_config

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "qgan_noise.json"
FIGURE = ROOT / "docs" / "figures" / "qgan" / "noise_scan.png"
RATES = [0.0, 0.005, 0.01, 0.02, 0.05, 0.1]
CHANNELS = ("depolarizing", "amplitude_damping", "both")
SEEDS = [0, 1, 2]
DATA_SPEC = "loguniform:1e3:1e6"


@dataclass
class ModelSetup:
    """One model kind: class, training budget and the rates for noise-aware training."""

    name: str
    cls: type
    epochs: int
    steps_per_epoch: int
    train_noise_rates: list[float] = field(default_factory=list)

    def config(self, rate: float = 0.0) -> dict[str, Any]:
        return demo_config(
            "1d",
            epochs=self.epochs,
            steps_per_epoch=self.steps_per_epoch,
            depolarizing=rate,
            amplitude_damping=rate,
        )


def setups(quick: bool, qgan_noise_training: bool) -> list[ModelSetup]:
    """qgan-dist 1D at its eval_qgan.py budget (20 x 10), qgan 1D at 20 x 40."""
    if quick:
        return [
            ModelSetup("qgan-dist-1d", DistributionQGAN, 2, 5, [0.05]),
            ModelSetup("qgan-1d", QGAN, 1, 5, [0.05] if qgan_noise_training else []),
        ]
    return [
        ModelSetup("qgan-dist-1d", DistributionQGAN, 20, 10, [0.01, 0.05]),
        ModelSetup("qgan-1d", QGAN, 20, 40, [0.01] if qgan_noise_training else []),
    ]


# --------------------------------------------------------------------------- measurements
def load_data(n_train: int, n_val: int) -> tuple[Showers, Showers]:
    from caloforge.refsim import simulate

    train = simulate("ds2", "electron", DATA_SPEC, n=n_train, seed=1)
    val = simulate("ds2", "electron", DATA_SPEC, n=n_val, seed=2)
    return train, val


def mse(model, val: Showers) -> float:
    """Shape MSE on every validation shower (the default caps at 512)."""
    return model.shape_mse(val, max_showers=len(val))


def hardware(rate: float, channel: str) -> dict[str, float]:
    """with_hardware arguments for one channel (or both) at ``rate``."""
    dep = rate if channel in ("depolarizing", "both") else 0.0
    amp = rate if channel in ("amplitude_damping", "both") else 0.0
    return {"depolarizing": dep, "amplitude_damping": amp}


def untrained_mse(setup: ModelSetup, seed: int, train: Showers, val: Showers) -> float:
    """The circuit as fit() initialises it for ``seed``, before any update."""
    model = setup.cls(get_geometry("ds2"), setup.config())
    model.generator.reset_parameters(seed)
    model._prepare(train)  # fitted downsampling / response, as fit() does first
    return mse(model, val)


def train_model(
    setup: ModelSetup, seed: int, rate: float, train: Showers, val: Showers
) -> tuple[Any, float, list[float]]:
    """Train with both noise channels at ``rate``; returns (model, seconds, per-epoch
    validation shape MSE of fit's history, on its default 512 showers)."""
    model = setup.cls(get_geometry("ds2"), setup.config(rate))
    t0 = time.perf_counter()
    history = model.fit(train, val, seed=seed, progress=False)
    return model, time.perf_counter() - t0, list(history.get("val_shape_mse", []))


def execution_scan(model, val: Showers) -> dict[str, list[float]]:
    """Shape MSE of one trained model run at every rate of every channel."""
    return {
        ch: [mse(model.with_hardware(**hardware(r, ch)), val) for r in RATES] for ch in CHANNELS
    }


def stats(values: list[float]) -> dict[str, Any]:
    a = np.asarray(values, dtype=np.float64)
    std = float(a.std(ddof=1)) if len(a) > 1 else 0.0
    return {"values": a.tolist(), "mean": float(a.mean()), "std": std, "n": len(a)}


def reference_levels(setup: ModelSetup, train: Showers, val: Showers) -> dict[str, Any]:
    """MSE of the uniform shape and of all energy in pixel 0 against the real mean shape."""
    model = setup.cls(get_geometry("ds2"), setup.config())
    model._prepare(train)
    shapes, _, _ = model._real_shapes(val)
    real = shapes.double().mean(0).numpy()
    uniform = np.full_like(real, 1.0 / len(real))
    first = np.zeros_like(real)
    first[0] = 1.0
    return {
        "uniform_shape": float(((uniform - real) ** 2).mean()),
        "all_in_pixel0": float(((first - real) ** 2).mean()),
        "real_mean_shape": real.tolist(),
    }


# --------------------------------------------------------------------------- the two parts
def part_execution(setup: ModelSetup, train: Showers, val: Showers) -> dict[str, Any]:
    """Noiseless training per seed, then the execution-noise scan of each trained model."""
    per_seed, seconds, untrained, histories = [], [], [], []
    for seed in SEEDS:
        untrained.append(untrained_mse(setup, seed, train, val))
        model, sec, hist = train_model(setup, seed, 0.0, train, val)
        histories.append(hist)
        t0 = time.perf_counter()
        per_seed.append(execution_scan(model, val))
        seconds.append(sec)
        print(
            f"  {setup.name} seed {seed}: train {sec:6.1f} s, scan {time.perf_counter() - t0:5.1f}"
            f" s, MSE noiseless {per_seed[-1]['depolarizing'][0]:.2e}"
            f" (untrained {untrained[-1]:.2e})",
            flush=True,
        )
    scan = {ch: [stats([s[ch][i] for s in per_seed]) for i in range(len(RATES))] for ch in CHANNELS}
    return {
        "config": dict(model.config),  # resolved, with the model's defaults
        "train_seconds": seconds,
        "val_history": histories,
        "untrained": stats(untrained),
        "scan": scan,
    }


def part_training(
    setup: ModelSetup, execution: dict[str, Any], train: Showers, val: Showers
) -> dict[str, Any]:
    """Noise-aware training at each rate, compared with noiseless training run at that rate."""
    out: dict[str, Any] = {}
    for rate in setup.train_noise_rates:
        own, noiseless_run, seconds, histories = [], [], [], []
        for seed in SEEDS:
            model, sec, hist = train_model(setup, seed, rate, train, val)
            histories.append(hist)
            own.append(mse(model, val))
            noiseless_run.append(mse(model.with_hardware(**hardware(0.0, "both")), val))
            seconds.append(sec)
            print(
                f"  {setup.name} trained at {rate:g}+{rate:g}, seed {seed}: train {sec:6.1f} s, "
                f"MSE on its device {own[-1]:.2e}",
                flush=True,
            )
        ref = execution["scan"]["both"][RATES.index(rate)]["values"]
        out[f"{rate:g}"] = {
            "rate": rate,
            "config": dict(model.config),
            "train_seconds": seconds,
            "val_history": histories,
            "noise_trained": stats(own),
            "noise_trained_run_noiseless": stats(noiseless_run),
            "noiseless_trained": stats(ref),
            "difference": stats([a - b for a, b in zip(own, ref, strict=True)]),
        }
    return out


# --------------------------------------------------------------------------- output
def fmt(s: dict[str, Any]) -> str:
    return f"{s['mean']:.2e} ± {s['std']:.1e}"


def print_tables(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    for name, res in report["models"].items():
        t = Table(
            title=f"{name}: shape MSE, trained noiselessly, run at rate r "
            f"(mean ± std over {len(SEEDS)} seeds; untrained {fmt(res['untrained'])})"
        )
        t.add_column("r", justify="right")
        for ch in CHANNELS:
            t.add_column(ch if ch != "both" else "dep + amp", justify="right")
        for i, r in enumerate(RATES):
            t.add_row(f"{r:g}", *(fmt(res["scan"][ch][i]) for ch in CHANNELS))
        console.print(t)
        if res["noise_training"]:
            t = Table(title=f"{name}: noise-aware training, both channels at r (paired by seed)")
            for col in ("r", "trained noisy", "trained noiseless", "noisy - noiseless", "noisy→0"):
                t.add_column(col, justify="right")
            for key, d in res["noise_training"].items():
                t.add_row(
                    key,
                    fmt(d["noise_trained"]),
                    fmt(d["noiseless_trained"]),
                    f"{d['difference']['mean']:+.2e} ± {d['difference']['std']:.1e}",
                    fmt(d["noise_trained_run_noiseless"]),
                )
            console.print(t)
    refs = report["reference"]
    console.print(
        f"reference: uniform shape {refs['uniform_shape']:.2e}, "
        f"all in pixel 0 {refs['all_in_pixel0']:.2e}; seconds: {report['seconds']}"
    )


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {
        "depolarizing": "depolarising only",
        "amplitude_damping": "amplitude damping only",
        "both": "both channels at r",
    }
    fig, axs = plt.subplots(1, 3, figsize=(14, 4.2), sharey=True)
    x = np.asarray(RATES)
    for ax, ch in zip(axs, CHANNELS, strict=True):
        for k, (name, res) in enumerate(report["models"].items()):
            color = f"C{k}"
            m = np.array([s["mean"] for s in res["scan"][ch]])
            s = np.array([s["std"] for s in res["scan"][ch]])
            xk = x * (1 + 0.05 * k) + 0.0002 * k  # small offset so the error bars do not overlap
            ax.errorbar(xk, m, s, fmt="o-", color=color, capsize=3, label=f"{name}, trained r=0")
            ax.axhline(res["untrained"]["mean"], color=color, ls="--", lw=1)
            if ch == "both" and res["noise_training"]:
                d = list(res["noise_training"].values())
                ax.errorbar(
                    [e["rate"] * (1.15 + 0.05 * k) for e in d],
                    [e["noise_trained"]["mean"] for e in d],
                    [e["noise_trained"]["std"] for e in d],
                    fmt="s",
                    mfc="none",
                    color=color,
                    capsize=3,
                    label=f"{name}, trained at r",
                )
        ax.axhline(report["reference"]["uniform_shape"], color="grey", ls=":", lw=1)
        ax.set_xscale("symlog", linthresh=0.005, linscale=0.5)
        ax.set(yscale="log", xlim=(-0.001, 0.13), xlabel="noise rate r per qubit per layer")
        ax.set_xticks(RATES, [f"{r:g}" for r in RATES], fontsize=8)
        ax.set_title(titles[ch], fontsize=10)
    axs[0].set_ylabel("shape MSE (mean ± std over seeds)")
    axs[0].plot([], [], "k--", lw=1, label="untrained circuit")
    axs[0].plot([], [], ":", color="grey", lw=1, label="uniform shape")
    axs[0].legend(fontsize=7)
    axs[2].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def machine() -> dict[str, Any]:
    return {
        "processor": platform.processor(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pennylane": qml.__version__,
    }


def code_fingerprint() -> dict[str, Any]:
    """sha256 and modification time of the QGAN sources, read when the run starts (the
    modules are imported then, so later edits do not affect the run)."""
    src = ROOT / "src" / "caloforge"
    files = [src / "models" / "qgan.py", *sorted((src / "quantum").glob("*.py"))]
    out = {}
    for f in files:
        mtime = datetime.datetime.fromtimestamp(f.stat().st_mtime, datetime.timezone.utc)
        out[str(f.relative_to(ROOT))] = {
            "sha256": hashlib.sha256(f.read_bytes()).hexdigest(),
            "mtime": mtime.isoformat(timespec="seconds"),
        }
    return out


def write_json(report: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(report, indent=1))


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets, temp-dir outputs")
    parser.add_argument("--skip-qgan-noise-training", action="store_true")
    parser.add_argument("--out-dir", type=Path, help="write JSON and PNG here instead")
    args = parser.parse_args()
    code = code_fingerprint()  # the sources as imported by this run
    torch.set_num_threads(1)
    out_dir = args.out_dir
    if args.quick and out_dir is None:
        out_dir = Path(tempfile.gettempdir()) / "caloforge_qgan_noise_quick"
    json_path = OUT if out_dir is None else out_dir / OUT.name
    fig_path = FIGURE if out_dir is None else out_dir / FIGURE.name

    t_start = time.perf_counter()
    n_train, n_val = (400, 300) if args.quick else (4000, 2000)
    train, val = load_data(n_train, n_val)
    report: dict[str, Any] = {
        "data": f"refsim ds2 electrons, {DATA_SPEC} MeV; train n={n_train} seed 1, "
        f"validation n={n_val} seed 2",
        "metric": "shape_mse on all validation showers (mean pixel-fraction shape MSE)",
        "std": "sample standard deviation over seeds (ddof=1)",
        "rates": RATES,
        "seeds": SEEDS,
        "quick": args.quick,
        "machine": machine(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "code": code,
        "models": {},
        "seconds": {},
    }
    for setup in setups(args.quick, not args.skip_qgan_noise_training):
        if "reference" not in report:
            report["reference"] = reference_levels(setup, train, val)
        t0 = time.perf_counter()
        print(f"{setup.name}: noiseless training, execution-noise scan", flush=True)
        res = part_execution(setup, train, val)
        report["seconds"][f"{setup.name}/execution"] = round(time.perf_counter() - t0, 1)
        report["models"][setup.name] = {**res, "noise_training": {}}
        write_json(report, json_path)  # partial results survive an interrupt
        if setup.train_noise_rates:
            t0 = time.perf_counter()
            print(f"{setup.name}: noise-aware training", flush=True)
            report["models"][setup.name]["noise_training"] = part_training(setup, res, train, val)
            report["seconds"][f"{setup.name}/noise_training"] = round(time.perf_counter() - t0, 1)
            write_json(report, json_path)
    report["seconds"]["total"] = round(time.perf_counter() - t_start, 1)
    report["machine"]["loadavg_end"] = list(os.getloadavg())
    write_json(report, json_path)
    plot(report, fig_path)
    print_tables(report)
    print(f"wrote {json_path} and {fig_path}")


if __name__ == "__main__":
    main()
