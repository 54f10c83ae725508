"""Make the figures of docs/refsim.md: mean profiles, response and resolution of refsim.

    python scripts/plot_refsim.py [--n 300] [--out docs/figures/refsim]

Writes longitudinal.png, radial.png (ds2 electrons at 1, 10, 100, 1000 GeV; radial.png also
the MeV-weighted ring profile of 2000 log-uniform showers beside the real Geant4 ds2 one of
caloforge.refsim.external) and response.png (mean E_tot / E_inc and its relative spread vs
energy for ds2 electrons, ds1-photons photons and ds1-pions pions, with refsim's own
sqrt(c_S^2/E + c^2) and the CALICE Si-W measurement for comparison). The title of each figure
names the refsim version. Deterministic (fixed seeds); about 9 500 showers with the defaults.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from caloforge.refsim import REFSIM_VERSION, get_detector, simulate  # noqa: E402
from caloforge.refsim import external as ext  # noqa: E402

ENERGIES_GEV = (1, 10, 100, 1000)


def profiles(n: int, out: Path) -> None:
    det = get_detector("ds2")
    geo = det.geo
    depth = 0.5 * (det.edges_x0[1:] + det.edges_x0[:-1])
    r_edges = np.asarray(geo.layers[0].r_edges)
    r_mid = 0.5 * (r_edges[1:] + r_edges[:-1])
    ring_area = np.pi * np.diff(r_edges**2)
    fig_l, ax_l = plt.subplots(figsize=(6, 4))
    fig_r, (ax_r, ax_g) = plt.subplots(1, 2, figsize=(11, 4))
    for i, e_gev in enumerate(ENERGIES_GEV):
        s = simulate("ds2", "electron", np.full(n, e_gev * 1e3), seed=100 + i)
        x = s.showers.reshape(n, 45, 16, 9).astype(float) / (e_gev * 1e3)
        ax_l.plot(
            depth, x.sum(axis=(2, 3)).mean(axis=0), drawstyle="steps-mid", label=f"{e_gev} GeV"
        )
        radial = x.sum(axis=(1, 2)).mean(axis=0) / ring_area
        ax_r.plot(r_mid, radial, marker="o", label=f"{e_gev} GeV")
    mix = simulate("ds2", "electron", "loguniform:1e3:1e6", n=2000, seed=99)
    ring = ext.energy_weighted_ring_profile(ext.as_voxels(mix.showers))
    real = ext.DS2_REAL["ring_profile"]
    ax_g.plot(r_mid, real.value, "ko", label="Geant4 ds2 (2000 showers)")
    ax_g.plot(r_mid, ring, "C1s--", label=f"refsim {REFSIM_VERSION} (2000 showers)")
    ax_g.set(xlabel="r [mm]", ylabel="mean voxel energy / ring 0", yscale="log",
             title="1 GeV-1 TeV log-uniform, MeV-weighted")  # fmt: skip
    ax_g.legend(fontsize=8)
    ax_l.set(xlabel="depth [X0]", ylabel="mean fraction of E_inc per layer",
             title=f"refsim {REFSIM_VERSION} ds2 electrons: longitudinal profile")  # fmt: skip
    ax_r.set(xlabel="r [mm]", ylabel="mean fraction of E_inc per mm$^2$", yscale="log",
             title=f"refsim {REFSIM_VERSION} ds2 electrons: radial profile")  # fmt: skip
    for fig, ax, name in ((fig_l, ax_l, "longitudinal"), (fig_r, ax_r, "radial")):
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=120)
        plt.close(fig)


def response(n: int, out: Path) -> None:
    energies = np.geomspace(1e3, 1e6, 7)
    cases = (("ds2", "electron"), ("ds1-photons", "photon"), ("ds1-pions", "pion"))
    fig, (ax_m, ax_s) = plt.subplots(1, 2, figsize=(10, 4))
    for j, (detector, particle) in enumerate(cases):
        mean, spread = [], []
        for i, e in enumerate(energies):
            s = simulate(detector, particle, np.full(n, e), seed=200 + 10 * j + i)
            ratio = s.showers.sum(axis=1, dtype=float) / e
            mean.append(ratio.mean())
            spread.append(ratio.std() / ratio.mean())
        label = f"{particle} in {detector}"
        ax_m.plot(energies / 1e3, mean, marker="o", label=label)
        ax_s.plot(energies / 1e3, spread, marker="o", label=label)
    det = get_detector("ds2")
    c_s, const = det.em_stack.c_s, det.tune.constant_term
    e_gev = energies / 1e3
    ax_s.plot(e_gev, np.sqrt(c_s**2 / e_gev + const**2), "k--",
              label=f"refsim ds2: {c_s:.3f}/sqrt(E) (+) {const:.3f}")  # fmt: skip
    ax_s.plot(e_gev, ext.calice_resolution(e_gev), "k:",
              label="CALICE Si-W measured: 0.166/sqrt(E) (+) 0.011")  # fmt: skip
    ax_m.set(xscale="log", xlabel="E_inc [GeV]", ylabel="mean E_tot / E_inc",
             title=f"refsim {REFSIM_VERSION} response")  # fmt: skip
    ax_s.set(xscale="log", yscale="log", xlabel="E_inc [GeV]", ylabel="std / mean of E_tot",
             title=f"refsim {REFSIM_VERSION} resolution")  # fmt: skip
    for ax in (ax_m, ax_s):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "response.png", dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="showers per energy point")
    parser.add_argument("--out", type=Path, default=Path("docs/figures/refsim"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    profiles(args.n, args.out)
    response(args.n, args.out)
    print(f"wrote {args.out}/longitudinal.png, radial.png, response.png")


if __name__ == "__main__":
    main()
