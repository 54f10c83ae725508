"""Which QVAE configuration makes its Boltzmann prior matter? A controlled scan.

For each named configuration one QVAE is trained (same data, seed and wall-time budget) and
four kinds of latent draws for the SAME held-out incident energies are decoded with IDENTICAL
decoder noise:

* ``posterior``: hard samples of the encoder's q(z | x) for held-out showers (the aggregate
  posterior, the "ideal prior");
* ``posterior product``: the same samples with every free unit permuted independently across
  showers within bins of incident energy -- the product of the aggregate posterior's
  (energy-binned) marginals. ``posterior`` beating it is the cheap indicator that the decoder
  uses correlated latent structure at all; without it no prior can beat its own product;
* ``prior``: the trained prior by block Gibbs (the sweep count training measured);
* ``marginals``: the product of the prior's own energy-conditional marginals.

Each is compared with held-out reference showers by the low-level classifier (protocol
``fast``) under several classifier seeds; the null is the same classifier between the reference
and a second independent refsim sample; sigma is the larger of the analytic null AUC sigma and
the null's spread over classifier seeds (as in ``qvae_prior_ablation.py``). KL(prior || product)
is the one training measured at its end (``state.prior_diagnostics``).

    python benchmarks/qvae_prior_scan.py --minutes 4 --out runs/prior-scan \\
        --configs '{"base": {}, "u16": {"units_per_partition": 16}}'

Appends one entry per configuration to benchmarks/results/qvae_prior_scan<tag>.json (an entry
of the same name is replaced) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch

from qvae_prior_common import (
    classifier_aucs,
    decode,
    decoder_noise,
    null_sigma,
    train_or_load,
    write_json,
)


def shuffle_within_energy_bins(
    z: torch.Tensor, e: np.ndarray, free: np.ndarray, n_bins: int, seed: int
) -> torch.Tensor:
    """Permute each ``free`` unit column of z (N, n) independently across the rows that share a
    quantile bin of log E (N,): the product of the binned marginals, the clamped units kept."""
    rng = np.random.default_rng(seed)
    edges = np.quantile(np.log(e), np.linspace(0, 1, n_bins + 1)[1:-1])
    bins = np.searchsorted(edges, np.log(e))
    out = z.clone()
    for b in np.unique(bins):
        rows = np.flatnonzero(bins == b)
        for j in free:
            out[rows, j] = z[rng.permutation(rows), j]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--detector", default="ds2")
    p.add_argument("--particle", default="electron")
    p.add_argument("--energies", default="loguniform:1e3:1e6")
    p.add_argument("--n-train", type=int, default=3000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--minutes", type=float, default=4.0, help="training wall time per model")
    p.add_argument("--configs", required=True, help="JSON {name: QVAE options}")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--classifier-seeds", type=int, default=3)
    p.add_argument("--energy-bins", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="runs/prior-scan", help="run directory (models reused)")
    p.add_argument("--tag", default="")
    p.add_argument(
        "--refit-prior",
        type=int,
        default=0,
        help="after training, fit the prior STEPS more PCD steps to the aggregate posterior "
        "of the training showers with encoder and decoder frozen (entry NAME+refitSTEPS)",
    )
    p.add_argument("--refit-sweeps", type=int, default=20)
    p.add_argument("--refit-lr", type=float, default=3e-3)
    p.add_argument(
        "--skip",
        default="",
        help="comma-separated latent draws not to evaluate (e.g. 'posterior product': each "
        "row costs one classifier per seed, minutes on ds2)",
    )
    args = p.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    torch.set_num_threads(args.threads)

    from caloforge.evaluate.classifier import classifier_inputs
    from caloforge.models.qvae_prior_refit import RefitSettings, refit_prior
    from caloforge.refsim import simulate
    from caloforge.refsim.version import REFSIM_VERSION

    configs = json.loads(args.configs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec, n = args.energies, args.n_test
    train = simulate(args.detector, args.particle, spec, n=args.n_train, seed=args.seed)
    test = simulate(args.detector, args.particle, spec, n=n, seed=args.seed + 1000)
    null = simulate(args.detector, args.particle, spec, n=n, seed=args.seed + 2000)
    held = simulate(args.detector, args.particle, spec, n=n, seed=args.seed + 3000)
    e_test = np.asarray(test.incident_energies, dtype=np.float64)
    e = np.asarray(held.incident_energies, dtype=np.float64)
    ref_in = classifier_inputs("low", incident_energies=e_test, showers=np.asarray(test.showers))
    cseeds = [args.seed * 100 + s for s in range(args.classifier_seeds)]

    path = Path("benchmarks/results") / f"qvae_prior_scan{args.tag}.json"
    result = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    key = f"null:{args.n_test}:{args.seed}:{args.classifier_seeds}"
    if result.get("null_key") != key:
        null_row = classifier_aucs(
            ref_in, np.asarray(null.showers), np.asarray(null.incident_energies), cseeds
        )
        result.update(null_key=key, null=null_row)
    null_row = result["null"]
    sigma = null_sigma(null_row)
    result.update(
        benchmark="qvae_prior_scan",
        refsim_version=REFSIM_VERSION,
        null_sigma=sigma,
        machine={"platform": platform.platform(), "torch_threads": args.threads},
    )

    for name, config in configs.items():
        model, t_train = train_or_load(
            "qvae", config, train, args.detector, out / name, args.seed, args.minutes
        )
        for mod in model.modules().values():
            mod.eval()
        noise = decoder_noise(n, model.geometry.n_voxels, args.seed + 17, model.geometry.n_layers)

        if model.prior is None:  # the Gaussian-prior VAE (option "prior": "gaussian")
            z = model.latent_inputs(e, seed=args.seed + 1)[0]
            row = classifier_aucs(ref_in, decode(model, z, noise, e), e, cseeds)
            result["runs"][name] = {
                "config": {
                    k: v
                    for k, v in model.config.items()
                    if type(model).config_class().__dict__.get(k) != v
                },
                "minutes": args.minutes,
                "n_train": args.n_train,
                "n_test": n,
                "train_seconds": t_train,
                "epochs": model.state.get("epoch"),
                "rows": {"prior": row},
            }
            write_json(path, result)
            print(
                f"{name}: epochs {model.state.get('epoch')} | Gaussian prior {row['auc_mean']:.4f}"
            )
            continue
        refit = None
        if args.refit_prior > 0:
            settings = RefitSettings(
                steps=args.refit_prior, sweeps=args.refit_sweeps, lr=args.refit_lr, draws=4,
                batch=1024,
            )  # fmt: skip
            refit = refit_prior(model, train, settings, seed=args.seed + 5)
            q = np.quantile(np.asarray(train.incident_energies), [0.125, 0.375, 0.625, 0.875])
            model.record_prior_diagnostics(seed=args.seed, energies=q)
            name = f"{name}+refit{args.refit_prior}"
            print(f"{name}: {refit}", flush=True)
        zs: dict[str, torch.Tensor] = {}
        zs["posterior"] = model.posterior_latents(held, seed=args.seed + 2)
        free = model.latents.free_units.astype(int)
        zs["posterior product"] = shuffle_within_energy_bins(
            zs["posterior"], e, free, args.energy_bins, args.seed + 3
        )
        sweeps = model.generation_sweeps
        model.set_sampler("gibbs", n_sweeps=sweeps)
        zs["prior"] = model.latent_inputs(e, seed=args.seed + 1)[0]
        model.set_sampler("marginals", n_sweeps=max(sweeps, 50))
        zs["marginals"] = model.latent_inputs(e, seed=args.seed + 1)[0]
        rows = {
            k: classifier_aucs(ref_in, decode(model, z, noise, e), e, cseeds)
            for k, z in zs.items()
            if k not in skip
        }
        a = {k: r["auc_mean"] for k, r in rows.items()}
        nan = float("nan")
        hist = model.state.get("history", {})
        diag = model.state.get("prior_diagnostics", {})
        gap = a["marginals"] - a["posterior"]
        defaults = type(model).config_class().__dict__
        entry = {
            # the trained model's options that differ from the defaults (a reused model's own)
            "config": {k: v for k, v in model.config.items() if defaults.get(k) != v},
            "minutes": args.minutes,
            "n_train": args.n_train,
            "n_test": n,
            "train_seconds": t_train,
            "epochs": model.state.get("epoch"),
            "rows": rows,
            "posterior_product_minus_posterior_sigma": (
                a.get("posterior product", nan) - a["posterior"]
            )
            / sigma,
            "marginals_minus_prior_sigma": (a["marginals"] - a["prior"]) / sigma,
            "fraction_of_gap_closed": (a["marginals"] - a["prior"]) / gap if gap > 0 else None,
            "gibbs_sweeps": sweeps,
            "prior_diagnostics": diag,
            "refit": refit,
            "last_losses": {k: v[-1] for k, v in hist.items() if isinstance(v, list) and v},
        }
        result["runs"][name] = entry
        write_json(path, result)
        kl = diag.get("kl_product_nats", float("nan"))
        print(
            f"{name}: epochs {entry['epochs']} | post {a['posterior']:.4f} | post-product "
            f"{a.get('posterior product', nan):.4f} | prior {a['prior']:.4f} | marginals "
            f"{a['marginals']:.4f} | sigma {sigma:.4f} | KL {kl:.3f} | mean|W| "
            f"{diag.get('mean_abs_coupling', float('nan')):.3f} | sweeps {sweeps}",
            flush=True,
        )
    print(f"null AUC {np.mean(null_row['auc']):.4f}; wrote {path}")


if __name__ == "__main__":
    main()
