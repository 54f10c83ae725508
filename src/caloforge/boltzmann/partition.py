"""The partition function log Z: exact enumeration for small machines, AIS for any size.

Annealed importance sampling (Neal 2001) interpolates between a tractable base machine and the
target by scaling the couplings: E_t(z) = -b.z - t * sum_{i<j} W_ij z_i z_j for t from 0 to 1.
At t = 0 the units are independent, log Z_0 = sum_i log(1 + exp(beta b_i)), and exact samples are
drawn directly. Every chain then moves t up a linear ladder of ``n_betas`` steps: its log weight
gains (t_k - t_{k-1}) * beta * sum W z z at the current state, and one block Gibbs sweep at t_k
(a transition that leaves p_{t_k} invariant) moves it. Z / Z_0 is the mean of the weights; the
reported standard error is the delta-method error of the log of that mean.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from caloforge.boltzmann.errors import BoltzmannError
from caloforge.boltzmann.machine import BoltzmannMachine

#: Largest machine :func:`exact_log_partition` enumerates (2^24 states).
MAX_EXACT_UNITS = 24


def all_states(n_units: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """(stop - start, n) float64 0/1 states with index k = sum_i z_i 2^i, for k in [start, stop)."""
    stop = 2**n_units if stop is None else stop
    k = torch.arange(start, stop, dtype=torch.int64)[:, None]
    return ((k >> torch.arange(n_units)) & 1).double()


def state_index(z: torch.Tensor) -> torch.Tensor:
    """(B,) index sum_i z_i 2^i of (B, n) 0/1 states (the order of :func:`all_states`)."""
    n = z.shape[1]
    if n > 62:
        raise BoltzmannError(f"cannot index states of {n} units (at most 62)")
    return (z.detach().cpu().round().long() << torch.arange(n)).sum(1)


def _check_enumerable(bm: BoltzmannMachine, limit: int) -> None:
    if bm.n_units > limit:
        raise BoltzmannError(
            f"exact enumeration is limited to {limit} units; this machine has {bm.n_units} "
            "(use ais_log_partition)"
        )


def exact_energies(bm: BoltzmannMachine) -> torch.Tensor:
    """(2^n,) float64 energies of every state, in :func:`all_states` order (n <= 20)."""
    _check_enumerable(bm, 20)
    return _energies_f64(bm, all_states(bm.n_units))


def _energies_f64(bm: BoltzmannMachine, z: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        b = bm.bias.detach().double().cpu()
        w = bm.couplings().detach().double().cpu()
    return -(z @ b) - ((z @ w) * z).sum(1)


def exact_probabilities(bm: BoltzmannMachine, beta: float = 1.0) -> torch.Tensor:
    """(2^n,) float64 Boltzmann probabilities exp(-beta E) / Z of every state (n <= 20)."""
    logits = -beta * exact_energies(bm)
    return torch.softmax(logits, 0)


def exact_log_partition(bm: BoltzmannMachine, beta: float = 1.0) -> float:
    """log Z(beta) = log sum_z exp(-beta E(z)) by brute-force enumeration (n <= 24)."""
    _check_enumerable(bm, MAX_EXACT_UNITS)
    n = bm.n_units
    chunk = 1 << 16
    parts = [
        torch.logsumexp(-beta * _energies_f64(bm, all_states(n, s, min(s + chunk, 2**n))), 0)
        for s in range(0, 2**n, chunk)
    ]
    return float(torch.logsumexp(torch.stack(parts), 0))


def ais_log_partition(
    bm: BoltzmannMachine,
    n_chains: int = 1000,
    n_betas: int = 1000,
    *,
    seed: int,
    beta: float = 1.0,
) -> tuple[float, float]:
    """Estimate log Z(beta) by annealed importance sampling over the coupling strength.

    Args:
        bm: the machine.
        n_chains: independent AIS runs.
        n_betas: steps of the linear ladder t = 1/n_betas, ..., 1 (one Gibbs sweep each).
        seed: seeds the runs.
        beta: inverse temperature of the target.

    Returns:
        ``(log_z, stderr)``: the estimate and its delta-method standard error. AIS is unbiased
        for Z, so log Z is slightly underestimated when the weights vary a lot; more steps shrink
        both the bias and the error.
    """
    if n_chains < 2 or n_betas < 1:
        raise BoltzmannError(
            f"AIS needs n_chains >= 2 and n_betas >= 1, got {n_chains} and {n_betas}"
        )
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        b = bm.bias.detach().double().cpu() * beta
        wsym = bm.symmetric_couplings().detach().double().cpu() * beta
    slices = bm.partition_slices
    rows = [wsym[sl] for sl in slices]
    log_z0 = float(torch.nn.functional.softplus(b).sum())

    z = torch.rand(n_chains, bm.n_units, generator=gen, dtype=torch.float64) < torch.sigmoid(b)
    z = z.double()
    log_w = torch.zeros(n_chains, dtype=torch.float64)
    ts = torch.linspace(0.0, 1.0, n_betas + 1, dtype=torch.float64)
    for k in range(1, n_betas + 1):
        coupling = 0.5 * ((z @ wsym) * z).sum(1)  # beta * sum_{i<j} W_ij z_i z_j
        log_w += (ts[k] - ts[k - 1]) * coupling
        t = float(ts[k])
        for sl, r in zip(slices, rows, strict=True):
            logits = b[sl] + t * (z @ r.T)
            u = torch.rand(n_chains, sl.stop - sl.start, generator=gen, dtype=torch.float64)
            z[:, sl] = (u < torch.sigmoid(logits)).double()
    log_mean = float(torch.logsumexp(log_w, 0)) - math.log(n_chains)
    w = torch.exp(log_w - log_w.max())
    rel_sd = float(w.std() / w.mean())
    return log_z0 + log_mean, rel_sd / math.sqrt(n_chains)


def total_variation(samples: torch.Tensor, probabilities: torch.Tensor) -> float:
    """TV distance 1/2 sum |p_hat - p| between the empirical law of (N, n) 0/1 ``samples`` and
    exact ``probabilities`` (2^n,) in :func:`all_states` order."""
    counts = torch.bincount(state_index(samples), minlength=probabilities.numel()).double()
    return 0.5 * float((counts / counts.sum() - probabilities).abs().sum())


def expected_total_variation(
    probabilities: torch.Tensor, n_samples: int, *, n_draws: int = 32, seed: int = 0
) -> float:
    """Mean TV distance of ``n_samples`` EXACT i.i.d. draws from ``probabilities`` (Monte Carlo
    over ``n_draws`` multinomial draws): the TV a perfect sampler shows at this sample size."""
    rng = np.random.default_rng(seed)
    p = probabilities.double().numpy()
    p = p / p.sum()
    draws = rng.multinomial(n_samples, p, size=n_draws) / n_samples
    return float(0.5 * np.abs(draws - p).sum(1).mean())


def tv_bound(probabilities: torch.Tensor, n_samples: int, *, delta: float = 1e-6) -> float:
    """A TV threshold a correct sampler exceeds with probability below about ``delta``.

    TV of an empirical law changes by at most 1/N when one of N i.i.d. samples changes, so by
    McDiarmid's inequality P(TV > E[TV] + t) <= exp(-2 N t^2); with t = sqrt(log(1/delta) / 2N)
    the bound is E[TV] + t, E[TV] estimated by :func:`expected_total_variation`. (The Monte
    Carlo estimate of E[TV] has a relative error of a few per cent, far below t.)
    """
    t = math.sqrt(math.log(1.0 / delta) / (2 * n_samples))
    return expected_total_variation(probabilities, n_samples) + t
