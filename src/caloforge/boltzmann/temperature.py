"""Effective temperature of an annealer: find beta_eff so its samples match the machine.

An annealer programmed with H = E / beta samples (approximately) exp(-beta_true H) =
exp(-(beta_true / beta) E), at an effective inverse temperature beta_true of its own. Sampling the
machine at beta = 1 therefore needs beta = beta_true. :func:`calibrate_beta` finds it by matching
mean energies: Gibbs samples of the machine give the target <E>_1; annealer samples at the current
beta give <E>_beta. Since d<E>/d log(beta) = tau Var(E) with tau = beta_true / beta (about 1 near
the answer), the first step on log(beta) is Newton's

    log beta  <-  log beta + (<E>_1 - <E>_beta) / Var_beta(E);

later steps use the secant slope through the last two points instead (it includes the unknown
factor tau) whenever their mean energies differ by more than three standard errors. Steps are
clipped to a factor of 4. The loop stops as soon as |<E>_beta - <E>_1| is within
``n_sigma`` of its statistical error sqrt(se_gibbs^2 + se_annealer^2) (samples from independent
chains / reads), or after ``max_iter`` iterations. With a clamp (the conditioned prior) both
sides sample the same conditionals row by row and the variances are within-row variances.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from caloforge.boltzmann.errors import BoltzmannError
from caloforge.boltzmann.gibbs import BlockGibbsSampler
from caloforge.boltzmann.machine import BoltzmannMachine, check_clamp
from caloforge.boltzmann.samplers import AnnealingSampler
from caloforge.ioutil import atomic_path


@dataclass
class CalibrationHistory:
    """What :func:`calibrate_beta` saw at every iteration.

    Attributes:
        betas: beta_eff tried at each iteration.
        annealer_means, annealer_stderrs: mean energy (machine units) of the annealer samples at
            each beta and its standard error.
        gibbs_mean, gibbs_stderr: the target mean energy from Gibbs samples and its error.
        gibbs_energies: (N,) energies of the Gibbs samples.
        first_energies, final_energies: energies of the annealer samples at the first and at the
            returned beta.
        converged: whether the final difference is within ``n_sigma`` errors.
    """

    betas: list[float] = field(default_factory=list)
    annealer_means: list[float] = field(default_factory=list)
    annealer_stderrs: list[float] = field(default_factory=list)
    gibbs_mean: float = math.nan
    gibbs_stderr: float = math.nan
    gibbs_energies: np.ndarray = field(default_factory=lambda: np.zeros(0))
    first_energies: np.ndarray = field(default_factory=lambda: np.zeros(0))
    final_energies: np.ndarray = field(default_factory=lambda: np.zeros(0))
    converged: bool = False

    def to_dict(self) -> dict:
        """Plain-JSON summary (without the energy arrays)."""
        return {
            "betas": self.betas,
            "annealer_means": self.annealer_means,
            "annealer_stderrs": self.annealer_stderrs,
            "gibbs_mean": self.gibbs_mean,
            "gibbs_stderr": self.gibbs_stderr,
            "converged": self.converged,
        }


def _energies(bm: BoltzmannMachine, z: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return bm.energy(z.to(bm.bias.device)).double().cpu().numpy()


def _clamp_groups(clamp: Mapping[int, torch.Tensor] | None, n_samples: int) -> np.ndarray:
    """(n_samples,) index of each sample's distinct clamp row (all 0 without a clamp)."""
    if not clamp:
        return np.zeros(n_samples, dtype=np.int64)
    rows = torch.cat([torch.as_tensor(clamp[p]).float().cpu() for p in sorted(clamp)], dim=1)
    return torch.unique(rows, dim=0, return_inverse=True)[1].numpy().ravel()


def _mean_and_within_var(e: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """Mean energy and the pooled within-clamp-row variance sum (e - row mean)^2 / (N - G)."""
    n_groups = int(groups.max()) + 1
    counts = np.bincount(groups, minlength=n_groups)
    row_mean = np.bincount(groups, weights=e, minlength=n_groups) / np.maximum(counts, 1)
    dof = max(len(e) - int(np.count_nonzero(counts)), 1)
    return float(e.mean()), float(np.sum((e - row_mean[groups]) ** 2) / dof)


def calibrate_beta(
    bm: BoltzmannMachine,
    annealer_sampler: AnnealingSampler,
    *,
    n_samples: int,
    beta0: float = 1.0,
    max_iter: int = 20,
    seed: int,
    gibbs_sampler: BlockGibbsSampler | None = None,
    n_sigma: float = 2.0,
    clamp: Mapping[int, torch.Tensor] | None = None,
) -> tuple[float, CalibrationHistory]:
    """Find the ``beta_eff`` at which ``annealer_sampler`` reproduces the machine's mean energy.

    Args:
        bm: the (trained) machine; the target is its distribution at beta = 1.
        annealer_sampler: an :class:`AnnealingSampler` (sa, sqa, qpu); its ``beta_eff`` is
            replaced by the values tried (the sampler itself is not modified).
        n_samples: samples per estimate (Gibbs target and every annealer call).
        beta0: first beta_eff to try.
        max_iter: most annealer calls.
        seed: seeds the Gibbs target and every annealer call.
        gibbs_sampler: sampler of the target; default 200 sweeps of fresh block Gibbs chains.
        n_sigma: stop when the mean energies agree within this many standard errors.
        clamp: partition -> (n_samples, partition size) 0/1 conditioning values (the
            conditioned prior's clamped partition, e.g. energy codes). Target and annealer then
            sample the same conditionals, row for row; the energy variance used for the
            standard errors and the Newton step is the pooled WITHIN-row variance (the rows are
            fixed, identical on both sides, so their spread cancels in the difference, and
            d<E | c>/d log beta = Var(E | c) row by row).

    Returns:
        ``(beta_eff, history)``: the last beta tried (the converged one if ``history.converged``).
    """
    if not isinstance(annealer_sampler, AnnealingSampler):
        raise BoltzmannError(
            "calibrate_beta needs an annealing sampler (sa, sqa or qpu), got "
            f"{type(annealer_sampler).__name__}"
        )
    if n_samples < 2 or max_iter < 1 or not beta0 > 0:
        raise BoltzmannError(
            f"calibrate_beta needs n_samples >= 2, max_iter >= 1 and beta0 > 0, got "
            f"{n_samples}, {max_iter}, {beta0}"
        )
    clamp = check_clamp(bm, n_samples, clamp)
    groups = _clamp_groups(clamp, n_samples)
    seeds = np.random.SeedSequence(int(seed)).generate_state(max_iter + 1)
    gibbs = gibbs_sampler or BlockGibbsSampler(n_sweeps=200)
    e_gibbs = _energies(bm, gibbs.sample(bm, n_samples, seed=int(seeds[0]), clamp=clamp or None))
    g_mean, g_var = _mean_and_within_var(e_gibbs, groups)
    history = CalibrationHistory(
        gibbs_mean=g_mean,
        gibbs_stderr=math.sqrt(g_var / n_samples),
        gibbs_energies=e_gibbs,
    )
    log_beta = math.log(beta0)
    for it in range(max_iter):
        beta = math.exp(log_beta)
        z = annealer_sampler.with_beta_eff(beta).sample(
            bm, n_samples, seed=int(seeds[it + 1]), clamp=clamp or None
        )
        e = _energies(bm, z)
        mean, var = _mean_and_within_var(e, groups)
        stderr = math.sqrt(var / n_samples)
        history.betas.append(beta)
        history.annealer_means.append(mean)
        history.annealer_stderrs.append(stderr)
        if it == 0:
            history.first_energies = e
        history.final_energies = e
        diff = history.gibbs_mean - mean
        if abs(diff) <= n_sigma * math.hypot(stderr, history.gibbs_stderr):
            history.converged = True
            break
        slope = var
        if it > 0:
            d_mean = mean - history.annealer_means[-2]
            d_log_beta = log_beta - math.log(history.betas[-2])
            noise = math.hypot(stderr, history.annealer_stderrs[-2])
            if abs(d_mean) > 3 * noise and d_mean / d_log_beta > 0:
                slope = d_mean / d_log_beta
        step = diff / slope if slope > 0 else math.copysign(math.log(4.0), diff)
        log_beta += float(np.clip(step, -math.log(4.0), math.log(4.0)))
    return history.betas[-1], history


def plot_beta_calibration(history: CalibrationHistory, path: str | os.PathLike) -> None:
    """Energy histograms of the Gibbs target and the annealer before (first beta) and after
    (final beta) calibration, and beta per iteration; written atomically to ``path``."""
    from caloforge._optional import require

    matplotlib = require("matplotlib", extra="plots", purpose="the calibration plot")
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if len(history.betas) == 0:
        raise BoltzmannError("the calibration history is empty; run calibrate_beta first")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    all_e = np.concatenate([history.gibbs_energies, history.first_energies, history.final_energies])
    bins = np.linspace(all_e.min(), all_e.max(), 50)
    for ax, energies, title in (
        (axes[0], history.first_energies, f"before: beta_eff = {history.betas[0]:.3g}"),
        (axes[1], history.final_energies, f"after: beta_eff = {history.betas[-1]:.3g}"),
    ):
        ax.hist(
            history.gibbs_energies,
            bins=bins,
            density=True,
            histtype="step",
            lw=1.5,
            label="Gibbs (target)",
        )
        ax.hist(
            energies, bins=bins, density=True, histtype="stepfilled", alpha=0.4, label="annealer"
        )
        ax.set_xlabel("energy E(z)")
        ax.set_title(title)
        ax.legend()
    axes[0].set_ylabel("density")
    axes[2].errorbar(
        range(len(history.betas)),
        history.annealer_means,
        yerr=history.annealer_stderrs,
        marker="o",
        label="annealer <E>",
    )
    axes[2].axhline(history.gibbs_mean, color="k", ls="--", label="Gibbs <E>")
    axes[2].set_xlabel("iteration")
    axes[2].set_ylabel("mean energy")
    twin = axes[2].twinx()
    twin.plot(range(len(history.betas)), history.betas, "s:", color="C3")
    twin.set_ylabel("beta_eff", color="C3")
    axes[2].legend(loc="best")
    fig.tight_layout()
    suffix = os.path.splitext(os.fspath(path))[1].lstrip(".") or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=suffix, dpi=110)
    plt.close(fig)
