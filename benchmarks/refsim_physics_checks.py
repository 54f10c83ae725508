"""Check refsim against Geant4 and published numbers that the shared statistics do not hold.

    python benchmarks/refsim_physics_checks.py [--n 10000] [--n-fixed 1500] [--n-ds3 1500]
                                               [--seed 1] [--tag current]

Simulates (all seeded, one process): ds2 electrons log-uniform 1 GeV - 1 TeV (``--n``), ds2
electrons at 1, 10, 100, 1000 GeV (``--n-fixed`` each) and ds3 electrons log-uniform
(``--n-ds3``). Computes lit-voxel counts, empty layers, response, radial and longitudinal
profiles, per energy bin, and prints them beside the external numbers of
:mod:`caloforge.refsim.external` (real ds2 measurements, PDG, Grindhammer-Peters, CALICE) with
the difference. Writes benchmarks/results/refsim_physics_checks_<tag>.json. Same arguments,
same numbers. Default total: 17 500 showers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from caloforge.refsim import REFSIM_VERSION, get_detector, simulate  # noqa: E402
from caloforge.refsim import external as ext  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXED_GEV = (1, 10, 100, 1000)
BIN_EDGES_GEV = np.geomspace(1, 1000, 7)  # six bins of half a decade


def _row(name: str, real: float, sim: float, note: str = "") -> dict:
    print(f"{name:<46}{real:>10.4g}{sim:>10.4g}{sim - real:>+10.3g}  {note}")
    return {"quantity": name, "external": real, "refsim": sim, "diff": sim - real, "note": note}


def _header(title: str) -> None:
    print(f"\n== {title}")
    print(f"{'quantity':<46}{'external':>10}{'refsim':>10}{'diff':>10}")


def loguniform_checks(x: np.ndarray, e_inc: np.ndarray) -> dict:
    """The real-ds2 numbers of external.DS2_REAL against a log-uniform ds2 sample."""
    real = ext.DS2_REAL
    n = len(x)
    lit = ext.lit_voxels(x)
    sparsity = 1.0 - lit / 6480.0
    resp = x.sum(axis=(1, 2, 3)) / e_inc
    q1, q3 = np.quantile(e_inc, [0.25, 0.75])
    low, high = e_inc <= q1, e_inc >= q3
    rows = []
    _header(f"ds2 electrons log-uniform 1 GeV-1 TeV, {n} showers: real dataset_2_1 numbers")
    rows.append(_row("zero-voxel fraction", real["zero_voxel_fraction"].value, sparsity.mean()))
    for key, mask, label in (("lit_low_quartile", low, "low"), ("lit_high_quartile", high, "high")):
        ref = real[key].value
        sim = (lit[mask].min(), np.median(lit[mask]), lit[mask].max())
        for stat, r, s in zip(("min", "median", "max"), ref, sim, strict=True):
            rows.append(_row(f"lit voxels, {label} E quartile, {stat}", r, float(s)))
    log_e = np.log(e_inc)
    rows.append(
        _row(
            "corr(ln E, zero-voxel fraction)",
            real["corr_logE_sparsity"].value,
            np.corrcoef(log_e, sparsity)[0, 1],
        )
    )
    rows.append(
        _row(
            "corr(ln E, mean layer)",
            real["corr_logE_zmean"].value,
            np.corrcoef(log_e, ext.mean_layer(x))[0, 1],
        )
    )
    e_tot = x.sum(axis=(1, 2, 3))
    rows.append(
        _row(
            "corr(E_tot, zero-voxel fraction), low quartile",
            real["corr_etot_sparsity_low"].value,
            np.corrcoef(e_tot[low], sparsity[low])[0, 1],
        )
    )
    empty = ext.empty_layer_fractions(x)
    rows.append(
        _row("empty (shower, layer) pairs", real["empty_layer_fraction"].value, empty.mean())
    )
    rows.append(
        _row("showers with layer 44 empty", real["empty_last_layer_fraction"].value, empty[-1])
    )
    rows.append(
        _row("showers with E_tot > E_inc", real["response_above_one"].value, (resp > 1).mean())
    )
    quart = np.quantile(e_inc, [0, 0.25, 0.5, 0.75, 1])
    for k in range(4):
        m = (e_inc >= quart[k]) & (e_inc <= quart[k + 1])
        rows.append(
            _row(
                f"median response, E quartile {k + 1}",
                real["median_response"].value,
                float(np.median(resp[m])),
            )  # fmt: skip
        )
    prof = ext.energy_weighted_ring_profile(x)
    for r, (ref, sim) in enumerate(zip(real["ring_profile"].value, prof, strict=True)):
        rows.append(
            _row(f"MeV-weighted ring profile, ring {r} / ring 0", ref, sim, "+-0.005 rounding")
        )
    real_sh = ext.shares_from_ring_profile(real["ring_profile"].value)
    sim_sh = ext.shares_from_ring_profile(prof)
    rm = get_detector("ds2").em_stack.moliere_radius_mm
    for label, radius in (("1 R_M", rm), ("1.7 R_M (18.6 mm)", 18.6), ("3.5 R_M", 3.5 * rm)):
        rows.append(
            _row(
                f"MeV-weighted share within {label}",
                ext.containment(real_sh, radius, ext.DS2_R_EDGES_MM),
                ext.containment(sim_sh, radius, ext.DS2_R_EDGES_MM),
                "from ring profile",
            )  # fmt: skip
        )
    layers = ext.layer_energies(x)
    mean_prof = layers.mean(axis=0)
    norm_prof = (layers / np.maximum(layers.sum(axis=1, keepdims=True), 1e-12)).mean(axis=0)
    blocks = [int(np.argmax(ext.layer_energies(x[i : i + 2000]).mean(axis=0)))
              for i in range(0, n - 1999, 2000)]  # fmt: skip
    rows.append(
        _row(
            "peak layer of the mean profile (MeV)",
            real["peak_layer"].value,
            float(np.argmax(mean_prof)),
            f"blocks of 2000: {blocks}",
        )  # fmt: skip
    )
    rows.append(
        _row(
            "peak layer, per-shower normalised profile",
            real["peak_layer"].value,
            float(np.argmax(norm_prof)),
            "if the real number was normalised",
        )  # fmt: skip
    )
    repeated = ext.repeated_voxel_energy_fraction(x)
    print(
        f"lit voxels whose energy repeats another lit voxel's in the same shower: {repeated:.4f}"
        " (a comb of equal spot energies; Geant4's deposits are continuous, so ~0)"
    )
    return {
        "n": n,
        "rows": rows,
        "repeated_voxel_energy_fraction": repeated,
        "peak_layer_blocks_of_2000": blocks,
        "mean_layer_profile_mev": mean_prof.tolist(),
        "mean_layer_profile_normalised": norm_prof.tolist(),
        "empty_layer_fraction_per_layer": empty.tolist(),
    }


def per_energy_bin(x: np.ndarray, e_inc: np.ndarray) -> list[dict]:
    """refsim per half-decade of E_inc: response, lit voxels, empty layers, mean layer."""
    print(f"\n== ds2 per energy bin (refsim {REFSIM_VERSION}; no real numbers per bin found)")
    print(f"{'E bin [GeV]':<14}{'n':>6}{'resp mean':>10}{'median':>8}{'rms/mean':>9}"
          f"{'lit':>7}{'empty%':>8}{'<layer>':>8}")  # fmt: skip
    out = []
    lit = ext.lit_voxels(x)
    lit_layer = ext.lit_voxels_per_layer(x)
    resp = x.sum(axis=(1, 2, 3)) / e_inc
    zmean = ext.mean_layer(x)
    e_gev = e_inc / 1e3
    for lo, hi in zip(BIN_EDGES_GEV[:-1], BIN_EDGES_GEV[1:], strict=True):
        m = (e_gev >= lo) & (e_gev < hi)
        if not m.any():
            continue
        empty = (ext.layer_energies(x[m]) == 0).mean()
        rec = {
            "e_lo_gev": lo,
            "e_hi_gev": hi,
            "n": int(m.sum()),
            "response_mean": float(resp[m].mean()),
            "response_median": float(np.median(resp[m])),
            "response_rms_over_mean": float(resp[m].std() / resp[m].mean()),
            "lit_voxels_mean": float(lit[m].mean()),
            "lit_voxels_per_layer_mean": lit_layer[m].mean(axis=0).tolist(),
            "empty_layer_fraction": float(empty),
            "mean_layer": float(zmean[m].mean()),
            "ring_fractions": ext.ring_fractions(x[m]).tolist(),
        }
        out.append(rec)
        print(f"{lo:5.1f}-{hi:<7.1f}{rec['n']:>6}{rec['response_mean']:>10.3f}"
              f"{rec['response_median']:>8.3f}{rec['response_rms_over_mean']:>9.3f}"
              f"{rec['lit_voxels_mean']:>7.0f}{100 * empty:>8.1f}{rec['mean_layer']:>8.2f}")  # fmt: skip
    print("lit voxels per layer (mean), layers 0 5 10 15 20 30 40:")
    for rec in out:
        sel = [rec["lit_voxels_per_layer_mean"][i] for i in (0, 5, 10, 15, 20, 30, 40)]
        print(
            f"  {rec['e_lo_gev']:5.1f}-{rec['e_hi_gev']:<7.1f}" + "".join(f"{v:7.1f}" for v in sel)
        )
    return out


def fixed_energy_checks(n: int, seed: int) -> dict:
    """ds2 at fixed energies: resolution, PDG containment, depth of maximum vs PDG and GP."""
    det = get_detector("ds2")
    stack = det.em_stack
    centres = 0.5 * (det.edges_x0[1:] + det.edges_x0[:-1])
    rm = stack.moliere_radius_mm
    ec = stack.critical_energy_mev
    c_s, const = stack.c_s, det.tune.constant_term
    rows, recs = [], []
    _header(
        f"ds2 electrons at fixed energies, {n} showers each (R_M {rm:.2f} mm, E_c {ec:.2f} MeV)"
    )
    for i, e_gev in enumerate(FIXED_GEV):
        s = simulate("ds2", "electron", np.full(n, e_gev * 1e3), seed=seed + 1000 + i)
        x = ext.as_voxels(s.showers)
        resp = x.sum(axis=(1, 2, 3)) / (e_gev * 1e3)
        res = resp.std() / resp.mean()
        frac = ext.ring_fractions(x)
        in1 = ext.containment(frac, rm, ext.DS2_R_EDGES_MM)
        in35 = ext.containment(frac, 3.5 * rm, ext.DS2_R_EDGES_MM)
        tmax = ext.peak_depth_x0(ext.layer_energies(x).mean(axis=0), centres)
        pdg = ext.pdg_tmax(e_gev * 1e3, ec)
        gp = ext.gp_tmax_sampling(e_gev * 1e3, ec, stack.sampling_frequency, stack.e_hat)
        param = float(np.sqrt(c_s**2 / e_gev + const**2))
        rows += [
            _row(
                f"{e_gev:>4} GeV sigma/E (CALICE 16.6%/sqrtE+1.1%)",
                float(ext.calice_resolution(e_gev)),
                res,
                "other stack",
            ),  # fmt: skip
            _row(f"{e_gev:>4} GeV sigma/E vs refsim's own c_S, c", param, res, "consistency"),
            _row(f"{e_gev:>4} GeV share within 1 R_M (PDG ~0.90)", ext.PDG_CONTAINMENT[1.0], in1),
            _row(
                f"{e_gev:>4} GeV share within 3.5 R_M (PDG ~0.99)", ext.PDG_CONTAINMENT[3.5], in35
            ),
            _row(f"{e_gev:>4} GeV t_max [X0] vs PDG ln(E/E_c)-0.5", pdg, tmax),
            _row(f"{e_gev:>4} GeV t_max [X0] vs GP sampling average T", gp, tmax),
        ]
        recs.append(
            {
                "e_gev": e_gev,
                "response_mean": float(resp.mean()),
                "response_median": float(np.median(resp)),
                "sigma_over_e": float(res),
                "ring_fractions": frac.tolist(),
                "within_1_rm": in1,
                "within_3p5_rm": in35,
                "t_max_x0": tmax,
                "t_max_pdg_x0": pdg,
                "t_max_gp_x0": gp,
                "lit_voxels_mean": float(ext.lit_voxels(x).mean()),
                "empty_layer_fraction": float((ext.layer_energies(x) == 0).mean()),
            }
        )
    return {"n_each": n, "moliere_mm": rm, "critical_energy_mev": ec, "rows": rows, "points": recs}


def ds3_checks(n: int, seed: int, ds2_x: np.ndarray, ds2_e: np.ndarray) -> dict:
    """ds3: no real numbers found; check it against ds2 (same Geant4 detector, finer readout)."""
    s = simulate("ds3", "electron", "loguniform:1e3:1e6", n=n, seed=seed + 3000)
    x3 = np.asarray(s.showers, dtype=np.float64).reshape(-1, 45, 50, 18)
    e3 = np.asarray(s.incident_energies, dtype=np.float64).ravel()
    rings3 = x3.sum(axis=(1, 2))
    frac3 = (rings3 / rings3.sum(axis=1, keepdims=True)).mean(axis=0)
    merged = frac3.reshape(9, 2).sum(axis=1)
    frac2 = ext.ring_fractions(ds2_x)
    resp3 = x3.sum(axis=(1, 2, 3)) / e3
    resp2 = ds2_x.sum(axis=(1, 2, 3)) / ds2_e
    _header(f"ds3 electrons log-uniform, {n} showers, against refsim ds2 (no real ds3 numbers)")
    rows = [
        _row(
            "response mean (ds2 / ds3)",
            resp2.mean(),
            resp3.mean(),
            "ds3 threshold per smaller voxel",
        )
    ]
    rows += [
        _row(f"ring {r} share (ds2 / ds3 rings {2 * r},{2 * r + 1})", a, b)
        for r, (a, b) in enumerate(zip(frac2, merged, strict=True))
    ]
    zero3 = 1.0 - ext.lit_voxels(x3) / x3[0].size
    print(f"ds3 zero-voxel fraction {zero3.mean():.4f} (no real number found)")
    return {"n": n, "rows": rows, "zero_voxel_fraction": float(zero3.mean())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10000, help="log-uniform ds2 showers")
    ap.add_argument("--n-fixed", type=int, default=1500, help="ds2 showers per fixed energy")
    ap.add_argument("--n-ds3", type=int, default=1500, help="log-uniform ds3 showers")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tag", default="current", help="name for the JSON file")
    ap.add_argument(
        "--equal-spots",
        action="store_true",
        help="the log-uniform ds2 sample with equal spot shares (refsim 1-3's deposition)",
    )
    args = ap.parse_args(argv)
    if args.n < 2000 or args.n_fixed < 100 or args.n_ds3 < 100:
        print("--n must be at least 2000, --n-fixed and --n-ds3 at least 100", file=sys.stderr)
        return 2
    det = get_detector("ds2")
    if args.equal_spots:
        det = replace(det, tune=replace(det.tune, spot_shape=None))
    s = simulate(det, "electron", "loguniform:1e3:1e6", n=args.n, seed=args.seed)
    x = ext.as_voxels(s.showers)
    e_inc = np.asarray(s.incident_energies, dtype=np.float64).ravel()
    summary = {
        "refsim_version": REFSIM_VERSION,
        "protocol": "external numbers of caloforge.refsim.external vs refsim samples (seeded)",
        "seed": args.seed,
        "equal_spots": args.equal_spots,
        "references": {
            k: {"value": r.value, "what": r.what, "source": r.source, "sample": r.sample}
            for k, r in ext.DS2_REAL.items()
        },  # fmt: skip
        "ds2_loguniform": loguniform_checks(x, e_inc),
        "ds2_per_energy_bin": per_energy_bin(x, e_inc),
        "ds2_fixed_energies": fixed_energy_checks(args.n_fixed, args.seed),
        "ds3_vs_ds2": ds3_checks(args.n_ds3, args.seed, x, e_inc),
    }
    out = ROOT / "benchmarks" / "results" / f"refsim_physics_checks_{args.tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(out)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
