"""Pairwise correlations of a trained QVAE's aggregate posterior and of its prior, within bins of
incident energy: can a pairwise Boltzmann machine learn what the encoder put into the latents?

For held-out refsim showers it draws hard posterior samples (the ``qvae_prior_scan.py``
procedure) and prior samples (block Gibbs, 50 sweeps) for the same incident energies, computes
the correlation matrix of the free units within each of ``--bins`` quantile bins of log E,
averages over bins, and reports mean |corr| over coupled pairs (a coupler of the prior's
topology), uncoupled pairs and pairs inside one partition (which no coupler joins), with the
sampling-noise level of a mean |corr| for independent units: sqrt(2 / pi) / sqrt(n_bin) /
sqrt(bins) (bins averaged before the absolute value).

    python benchmarks/qvae_posterior_correlations.py RUN --detector ds1-photons --particle photon
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--detector", default="ds2")
    p.add_argument("--particle", default="electron")
    p.add_argument("--energies", default="loguniform:1e3:1e6")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--bins", type=int, default=10)
    p.add_argument("--seed", type=int, default=3001)
    args = p.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).parent))
    from caloforge.models.base import load_generator
    from caloforge.refsim import simulate

    model = load_generator(args.run)
    for mod in model.modules().values():
        mod.eval()
    held = simulate(args.detector, args.particle, args.energies, n=args.n, seed=args.seed)
    e = np.asarray(held.incident_energies, dtype=np.float64)
    zq = model.posterior_latents(held, seed=args.seed + 1).numpy()
    # at least the sweep count training measured for this prior (a slowly mixing prior sampled
    # with fewer sweeps would show weaker correlations than it has)
    sweeps = max(50, model.generation_sweeps)
    model.set_sampler("gibbs", n_sweeps=sweeps)
    zp = model.latent_inputs(e, seed=args.seed + 2)[0].numpy()
    bm = model.prior
    free = model.latents.free_units
    mask = bm.coupling_mask.detach().numpy() > 0
    coupled_all = mask | mask.T
    edges = np.quantile(np.log(e), np.linspace(0, 1, args.bins + 1)[1:-1])
    bins = np.searchsorted(edges, np.log(e))

    def corr(z: np.ndarray) -> np.ndarray:
        cs = []
        for b in range(args.bins):
            zz = z[bins == b][:, free].astype(np.float64)
            sd = zz.std(0)
            c = np.cov(zz.T) / np.outer(np.where(sd > 0, sd, np.inf), np.where(sd > 0, sd, 1))
            cs.append(c)
        return np.mean(cs, 0)

    cq, cp = corr(zq), corr(zp)
    upper = np.triu(np.ones((len(free), len(free)), bool), 1)
    coupled = coupled_all[np.ix_(free, free)] & upper
    same = np.zeros_like(upper)
    off = 0
    for i in model.latents.level_partitions:
        k = len(bm.partitions[i])
        same[off : off + k, off : off + k] = True
        off += k
    same &= upper
    noise = math.sqrt(2 / math.pi) / math.sqrt(args.n / args.bins) / math.sqrt(args.bins)
    print(
        f"{args.run}: {len(free)} free units, {args.n} showers, {args.bins} energy bins, "
        f"{sweeps} Gibbs sweeps for the prior"
    )
    print(f"sampling-noise mean |corr| of independent units: {noise:.3f}")
    for name, mask in (
        ("coupled", coupled),
        ("uncoupled", upper & ~coupled & ~same),
        ("same partition", same),
    ):
        if not mask.any():  # e.g. no uncoupled pair across partitions in a dense graph
            print(f"{name:15s}      0 pairs")
            continue
        print(
            f"{name:15s} {int(mask.sum()):6d} pairs: mean |corr| posterior "
            f"{np.abs(cq[mask]).mean():.3f}, prior {np.abs(cp[mask]).mean():.3f}; "
            f"posterior |corr| > 0.3: {np.mean(np.abs(cq[mask]) > 0.3):.3f}"
        )


if __name__ == "__main__":
    main()
