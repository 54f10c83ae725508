"""Does the QVAE's Boltzmann prior carry anything? The prior ablation on refsim showers.

One trained QVAE decodes four kinds of latent draws with IDENTICAL decoder noise (the same
uniforms for the hit draws and normals for the energies):

* ``prior``: the trained prior by block Gibbs from fresh chains, with the sweep count training
  measured (``generation_sweeps``);
* ``marginals``: independent units with the prior's own (energy-conditional) marginals, the
  ``marginals`` sampler -- the prior without its correlations;
* ``posterior``: the encoder's aggregate posterior, hard samples of q(z | x) on training showers
  (the "ideal prior"; its showers carry the training showers' incident energies, drawn from the
  same spectrum as the test showers');

and the Gaussian-prior VAE (model ``vae``, same encoder/decoder, data, seed and training budget)
with the same noise. Each sample is compared with held-out reference showers by the low-level
classifier (``caloforge.evaluate.classifier``, protocol ``fast``) under several classifier seeds;
the null is the same classifier between the reference and a second, independent refsim sample.

    python benchmarks/qvae_prior_ablation.py --detector ds2 --particle electron \\
        --n-train 4000 --n-test 2000 --minutes 3 --out runs/ablation

Prints a table and writes JSON to benchmarks/results/qvae_prior_ablation<tag>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from qvae_prior_common import (
    classifier_aucs,
    decode,
    decoder_noise,
    null_sigma,
    train_or_load,
    write_json,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--detector", default="ds2")
    p.add_argument("--particle", default="electron")
    p.add_argument("--energies", default="loguniform:1e3:1e6")
    p.add_argument("--n-train", type=int, default=4000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--minutes", type=float, default=3.0, help="training wall time per model")
    p.add_argument("--config", default="{}", help="JSON options of the QVAE (and the VAE)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--classifier-seeds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (loaded CPUs: 1)")
    p.add_argument("--out", default="runs/qvae-ablation", help="run directory (models reused)")
    p.add_argument("--tag", default="")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from caloforge.evaluate.classifier import classifier_inputs
    from caloforge.refsim import simulate
    from caloforge.refsim.version import REFSIM_VERSION

    config = json.loads(args.config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec, n_test = args.energies, args.n_test
    train = simulate(args.detector, args.particle, spec, n=args.n_train, seed=args.seed)
    test = simulate(args.detector, args.particle, spec, n=n_test, seed=args.seed + 1000)
    null = simulate(args.detector, args.particle, spec, n=n_test, seed=args.seed + 2000)

    qvae, t_qvae = train_or_load(
        "qvae", config, train, args.detector, out / "qvae", args.seed, args.minutes
    )
    vae, t_vae = train_or_load(
        "vae", config, train, args.detector, out / "vae", args.seed, args.minutes
    )
    for m in (qvae, vae):
        for mod in m.modules().values():
            mod.eval()

    e = np.asarray(test.incident_energies, dtype=np.float64)
    noise = decoder_noise(n_test, qvae.geometry.n_voxels, args.seed + 17, qvae.geometry.n_layers)

    t0 = time.perf_counter()
    diag = qvae.prior_diagnostics(seed=args.seed)
    t_diag = time.perf_counter() - t0
    sweeps = qvae.generation_sweeps
    samples: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    qvae.set_sampler("gibbs", n_sweeps=sweeps)
    z = qvae.latent_inputs(e, seed=args.seed + 1)[0]
    samples["prior (Gibbs)"] = (decode(qvae, z, noise, e), e)
    qvae.set_sampler("marginals", n_sweeps=max(sweeps, 50))
    z = qvae.latent_inputs(e, seed=args.seed + 1)[0]
    samples["product of marginals"] = (decode(qvae, z, noise, e), e)
    post = train[:n_test]
    e_post = np.asarray(post.incident_energies, dtype=np.float64)
    z = qvae.posterior_latents(post, seed=args.seed + 2)
    samples["aggregate posterior"] = (decode(qvae, z, noise, e_post), e_post)
    z = vae.latent_inputs(e, seed=args.seed + 1)[0]
    samples["Gaussian VAE"] = (decode(vae, z, noise, e), e)
    samples["null (2nd refsim sample)"] = (
        np.asarray(null.showers, dtype=np.float64),
        np.asarray(null.incident_energies, dtype=np.float64),
    )

    ref_in = classifier_inputs("low", incident_energies=e, showers=np.asarray(test.showers))
    cseeds = [args.seed * 100 + s for s in range(args.classifier_seeds)]
    rows = {name: classifier_aucs(ref_in, x, e_x, cseeds) for name, (x, e_x) in samples.items()}
    null_auc = np.array(rows["null (2nd refsim sample)"]["auc"])
    sigma = null_sigma(rows["null (2nd refsim sample)"])
    a_prior = rows["prior (Gibbs)"]["auc_mean"]
    a_prod = rows["product of marginals"]["auc_mean"]
    a_post = rows["aggregate posterior"]["auc_mean"]
    gap = a_prod - a_post
    summary = {
        "prior_minus_product_in_null_sigma": (a_prod - a_prior) / sigma,
        # only meaningful when the aggregate posterior beats the product (gap > 0)
        "fraction_of_gap_to_posterior_closed": (a_prod - a_prior) / gap if gap > 0 else None,
        "null_sigma": sigma,
    }

    table = Table(
        title=f"QVAE prior ablation, {args.detector} {args.particle}, refsim {REFSIM_VERSION}, "
        f"{n_test} test showers, low-level classifier (fast) x {args.classifier_seeds} seeds"
    )
    for col in ("latent draws", "AUC mean", "AUC per classifier seed", "(A - null) / sigma"):
        table.add_column(col)
    a_null = float(null_auc.mean())
    for name, r in rows.items():
        table.add_row(
            name,
            f"{r['auc_mean']:.4f}",
            " ".join(f"{a:.4f}" for a in r["auc"]),
            f"{(r['auc_mean'] - a_null) / sigma:.1f}",
        )
    console = Console(width=140)
    console.print(table)
    closed = summary["fraction_of_gap_to_posterior_closed"]
    console.print(
        f"prior beats product by {summary['prior_minus_product_in_null_sigma']:.2f} null sigma "
        f"(sigma {sigma:.4f}); "
        + (
            f"closes {closed:.2f} of the gap to the aggregate posterior"
            if closed is not None
            else "the aggregate posterior does not beat the product: no gap to close"
        )
        + f"; Gibbs sweeps {sweeps}"
    )
    for line in diag.summary_lines():
        console.print(line, markup=False, highlight=False)

    result = {
        "benchmark": "qvae_prior_ablation",
        "refsim_version": REFSIM_VERSION,
        "args": vars(args),
        "qvae_config": qvae.config,
        "train_seconds": {"qvae": t_qvae, "vae": t_vae},
        "qvae_epochs": qvae.state.get("epoch"),
        "vae_epochs": vae.state.get("epoch"),
        "gibbs_sweeps": sweeps,
        "rows": rows,
        "summary": summary,
        "prior_diagnostics": diag.to_dict(),
        "prior_diagnostics_seconds": t_diag,
        "machine": {"platform": platform.platform(), "torch_threads": args.threads},
    }
    path = Path("benchmarks/results") / f"qvae_prior_ablation{args.tag}.json"
    write_json(path, result)
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
