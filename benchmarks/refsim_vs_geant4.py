"""Compare refsim with the summary statistics of the real Geant4 CaloChallenge files.

    python benchmarks/refsim_vs_geant4.py [--n 20000] [--seed 1] [--tag after] [--no-plots]

Simulates the samples the shared statistics were computed on (../shared/physics/geant4-stats,
README there): ds2 electrons log-uniform 1 GeV - 1 TeV, ds1-photons and ds1-pions with the ds1
energy list. Applies the README's transforms (response E_tot/E_inc; logit of u_i = E_{i-1} /
sum_{j >= i-1} E_j; per-voxel logit(v / E_layer + n), n ~ U[0, 5e-6]) to all energies together
and prints, quantity by quantity, real / refsim / difference. Writes
benchmarks/results/refsim_vs_geant4_<tag>.json and docs/figures/refsim_vs_geant4_<tag>_*.png.
Seeded: the same arguments give the same numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from caloforge.refsim import REFSIM_VERSION, simulate  # noqa: E402
from caloforge.refsim.validation import (  # noqa: E402
    SAMPLES,
    compare_sample,
    load_reference,
)

ROOT = Path(__file__).resolve().parents[1]


def _fmt(x: float) -> str:
    return f"{x:8.3f}"


def _print_table(title: str, rows: list[tuple[str, float, float]]) -> None:
    print(f"\n{title}")
    print(f"{'quantity':<28}{'real':>9}{'refsim':>9}{'diff':>9}")
    for name, real, sim in rows:
        print(f"{name:<28}{_fmt(real)} {_fmt(sim)} {_fmt(sim - real)}")


def _report(name: str, res: dict) -> None:
    real, sim = res["real"], res["refsim"]
    rows = [
        ("response mean", real["response_mean"], sim["response_mean"]),
        ("response std", real["response_std"], sim["response_std"]),
    ]
    for i, (rm, sm, rs, ss) in enumerate(
        zip(real["logit_u_mean"], sim["logit_u_mean"], real["logit_u_std"], sim["logit_u_std"],
            strict=True),
        start=1,
    ):  # fmt: skip
        rows.append((f"logit u_{i} mean", rm, sm))
        rows.append((f"logit u_{i} std", rs, ss))
    for k, (rsh, ssh) in enumerate(zip(real["typical_share"], sim["typical_share"], strict=True)):
        rows.append((f"typical share layer {k} %", 100 * rsh, 100 * ssh))
    _print_table(f"== {name} ({res['n']} showers, refsim {REFSIM_VERSION})", rows)
    q = sim["response_by_energy_quartile"]
    print(
        "refsim response per incident-energy quartile: median "
        + " ".join(f"{x:.3f}" for x in q["median"])
        + "; mean - median "
        + " ".join(f"{x:+.4f}" for x in q["mean_minus_median"])
    )
    if name == "ds2-electron":
        print("  (real Geant4 ds2, public evaluation log: median 0.78 in every quartile,")
        print("   right-skewed at low energy, i.e. mean above median)")
    if "voxel" in res:
        vox = res["voxel"]
        print(f"mean |per-voxel mean-logit difference| over {vox['n_voxels']} voxels: "
              f"{vox['mean_abs_diff']:.3f}")  # fmt: skip
        print("per-voxel mean logit, averaged over angle (real / refsim) by layer and ring:")
        real_lr, sim_lr = np.array(vox["real_layer_ring"]), np.array(vox["refsim_layer_ring"])
        print("layer " + "".join(f"{'r' + str(r):>13}" for r in range(real_lr.shape[1])))
        for layer in range(0, real_lr.shape[0], 4):
            cells = "".join(
                f"{real_lr[layer, r]:6.1f}/{sim_lr[layer, r]:<6.1f}"
                for r in range(real_lr.shape[1])
            )
            print(f"{layer:5d} {cells}")
        print("ring mean |diff|: " + " ".join(f"{x:.2f}" for x in vox["ring_mean_abs_diff"]))


def _plots(results: dict, tag: str, outdir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    ds2 = results["ds2-electron"]
    real, sim = ds2["real"], ds2["refsim"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    idx = np.arange(1, len(real["logit_u_mean"]) + 1)
    for ax, key, label in (
        (axes[0], "logit_u_mean", "mean of logit u_i"),
        (axes[1], "logit_u_std", "std of logit u_i"),
    ):
        ax.plot(idx - 1, real[key], "k-", label="Geant4 (dataset_2_1)")
        ax.plot(idx - 1, sim[key], "C1--", label=f"refsim {REFSIM_VERSION}")
        ax.set_xlabel("layer i-1 (u_i = its share of the energy still to deposit)")
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle(
        f"ds2 electrons, 1 GeV-1 TeV: response real {real['response_mean']:.3f}"
        f"±{real['response_std']:.3f}, refsim {sim['response_mean']:.3f}"
        f"±{sim['response_std']:.3f}"
    )
    fig.tight_layout()
    path = outdir / f"refsim_vs_geant4_{tag}_ds2_layers.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(str(path))

    vox = ds2["voxel"]
    real_lr, sim_lr = np.array(vox["real_layer_ring"]), np.array(vox["refsim_layer_ring"])
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for c, layer in enumerate((0, 5, 10, 15, 20, 30, 40)):
        ax.plot(real_lr[layer], "-", color=f"C{c}", label=f"layer {layer}")
        ax.plot(sim_lr[layer], "--", color=f"C{c}")
    ax.set_xlabel("radial bin (4.65 mm each)")
    ax.set_ylabel("per-voxel mean logit(v / E_layer), angle-averaged")
    ax.set_title(
        f"ds2: Geant4 solid, refsim {REFSIM_VERSION} dashed; mean |diff| {vox['mean_abs_diff']:.2f}"
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = outdir / f"refsim_vs_geant4_{tag}_ds2_radial.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(str(path))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key in zip(axes, ("ds1-photons-photon", "ds1-pions-pion"), strict=True):
        res = results[key]
        shares_r = 100 * np.array(res["real"]["typical_share"])
        shares_s = 100 * np.array(res["refsim"]["typical_share"])
        x = np.arange(len(shares_r))
        ax.bar(x - 0.2, shares_r, 0.4, color="k", label="Geant4")
        ax.bar(x + 0.2, shares_s, 0.4, color="C1", label=f"refsim {REFSIM_VERSION}")
        ax.set_xlabel("layer")
        ax.set_ylabel("typical share of E_tot, %")
        ax.set_title(
            f"{key}: response {res['real']['response_mean']:.3f}±"
            f"{res['real']['response_std']:.3f} vs {res['refsim']['response_mean']:.3f}±"
            f"{res['refsim']['response_std']:.3f}",
            fontsize=9,
        )
        ax.legend()
    fig.tight_layout()
    path = outdir / f"refsim_vs_geant4_{tag}_ds1_shares.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(str(path))
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20000, help="showers per sample")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tag", default="current", help="name for the JSON and figure files")
    ap.add_argument("--stats", type=Path, default=None, help="geant4-stats folder")
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args(argv)
    if args.n < 100:
        print("--n must be at least 100 showers", file=sys.stderr)
        return 2
    try:
        refs = {key: load_reference(key, args.stats) for key in SAMPLES}
    except FileNotFoundError as err:
        print(f"geant4 statistics not found: {err}", file=sys.stderr)
        return 2
    results = {}
    for key, (detector, particle, spec) in SAMPLES.items():
        showers = simulate(detector, particle, spec, n=args.n, seed=args.seed)
        res = compare_sample(showers, refs[key], seed=args.seed)
        res["n"] = args.n
        results[key] = res
        _report(key, res)
    summary = {
        "refsim_version": REFSIM_VERSION,
        "protocol": "README transforms of ../shared/physics/geant4-stats, all energies together",
        "n": args.n,
        "seed": args.seed,
        "results": results,
    }
    out = ROOT / "benchmarks" / "results" / f"refsim_vs_geant4_{args.tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1))
    print(f"\nwrote {out}")
    if not args.no_plots:
        for path in _plots(results, args.tag, ROOT / "docs" / "figures"):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
