"""Exact first and second moments of a machine, and a test that samples reproduce them.

A sampler of exp(-beta E) must reproduce the unit marginals m_i = <z_i>, the coupler moments
q_ij = <z_i z_j> on every coupler of the topology, and the mean energy <E> (which is the linear
combination -b.m - sum W_ij q_ij). (For spins s = 2z - 1 these carry the same information:
<s_i> = 2 m_i - 1 and <s_i s_j> = 4 q_ij - 2 m_i - 2 m_j + 1.) The exact values come from

* :func:`exact_moments`: enumeration of all 2^n states (n <= 20), or
* :func:`tree_moments`: the exact belief propagation on a tree decomposition of dwave-samplers'
  ``TreeDecompositionSampler`` (any size whose treewidth is small, e.g. Chimera 2x16,
  Pegasus 4x8 or Zephyr 4x8 regions: treewidth ~8-12, milliseconds to a fraction of a second).

Both accept one clamp row (the conditional distribution of the free units).

:func:`check_moments` turns the differences into z-scores with their null standard deviations:

* **independent draws** ((N, n) samples, one per independent chain or read): the count of a
  0/1 feature with exact mean mu is Binomial(N, mu) under the null, so each feature gets the
  exact two-sided binomial p-value, reported as the equivalent normal z (sign of the
  difference times isf(p / 2); about (mean - mu) / sqrt(mu (1 - mu) / N) for common
  features). The plain normal z fails for rare features: at mu = 8e-6 one event in 4000
  draws (probability 3 %) would read z = 5.3. For the energy the null standard deviation is
  sqrt(s_E^2 / N) with s_E the sample standard deviation (relative error ~ 1/sqrt(2N)).
* **correlated draws** ((T, C, n) traces of C chains, e.g. persistent chains recorded every
  sweep): batch means over chains. Each chain's time average is one independent draw, so the
  standard error is the standard deviation of the C chain averages over sqrt(C), whatever the
  autocorrelation inside a chain (the effective sample size is implied, not assumed); the
  z-score then follows Student's t with C - 1 degrees of freedom.

The check fails if any |z| exceeds the Bonferroni threshold z* with P(|Z| > z*) = alpha / K for K
tested quantities (n units + E couplers + the energy, less the features a clamp fixes): by the
union bound a correct sampler fails with probability <= alpha (default 1e-4) whatever the
correlations between the K z-scores (asymptotically normal; t for batch means). For K = 20-250,
z* = 4.4-5.1 at alpha = 1e-4. A quantity biased by d null standard deviations is caught with
probability >= Phi(d - z*): about 98 % at d = z* + 2.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from caloforge.boltzmann.conditional import clamp_row_units
from caloforge.boltzmann.errors import BoltzmannError
from caloforge.boltzmann.machine import BoltzmannMachine

#: Family-wise false-alarm probability of :func:`check_moments` for a correct sampler.
DEFAULT_ALPHA = 1e-4


@dataclass(frozen=True)
class Moments:
    """Exact moments of a machine (or of its conditional given a clamp row).

    Attributes:
        unit: (n,) float64 marginals <z_i> (clamped units hold their clamp value).
        pair: (E,) float64 <z_i z_j> for the topology's ``edges`` (E, 2), in that order.
        edges: (E, 2) int64 coupled unit pairs i < j.
        mean_energy: <E> at beta = 1 units of E (not E / beta), float.
        log_partition: log Z (of the conditional when clamped, with the clamped units' energy
            included), float.
    """

    unit: np.ndarray
    pair: np.ndarray
    edges: np.ndarray
    mean_energy: float
    log_partition: float


def _weights(bm: BoltzmannMachine) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with torch.no_grad():
        b = bm.bias.detach().double().cpu().numpy()
        w = bm.couplings().detach().double().cpu().numpy()
    edges = bm.topology.edges
    return b, edges, w[edges[:, 0], edges[:, 1]] if len(edges) else np.zeros(0)


def _mean_energy(bm: BoltzmannMachine, unit: np.ndarray, pair: np.ndarray) -> float:
    b, _, w = _weights(bm)
    return float(-(b @ unit) - (w @ pair))


def exact_moments(
    bm: BoltzmannMachine, beta: float = 1.0, clamp: Mapping[int, torch.Tensor] | None = None
) -> Moments:
    """Moments of exp(-beta E) by enumerating all states (n <= 20).

    Args:
        bm: the machine.
        beta: inverse temperature.
        clamp: partition -> one (size,) 0/1 row: the moments of the conditional distribution.
    """
    from caloforge.boltzmann.partition import all_states, exact_energies

    fixed = clamp_row_units(bm, clamp)
    states = all_states(bm.n_units)
    logits = -beta * exact_energies(bm)
    if fixed:
        idx = torch.tensor(list(fixed))
        allowed = (states[:, idx] == torch.tensor(list(fixed.values()), dtype=states.dtype)).all(1)
        logits = torch.where(allowed, logits, -torch.inf)
    log_z = float(torch.logsumexp(logits, 0))
    p = torch.softmax(logits, 0)
    edges = bm.topology.edges
    unit = (p @ states).numpy()
    pair = (p @ (states[:, edges[:, 0]] * states[:, edges[:, 1]])).numpy()
    for u, v in fixed.items():  # exact values, not sums of probabilities that round to them
        unit[u] = v
    both = np.array([i in fixed and j in fixed for i, j in edges.tolist()], dtype=bool)
    pair[both] = unit[edges[both, 0]] * unit[edges[both, 1]]
    return Moments(unit, pair, edges, _mean_energy(bm, unit, pair), log_z)


def tree_moments(
    bm: BoltzmannMachine, beta: float = 1.0, clamp: Mapping[int, torch.Tensor] | None = None
) -> Moments:
    """Exact moments of exp(-beta E) from dwave-samplers' ``TreeDecompositionSampler``.

    Exact for any size; its cost grows like 2^treewidth, so use it for hardware regions of a few
    dozen units (Chimera 2x16: ms; Pegasus 4x8, Zephyr 4x8: < 0.2 s; Pegasus 4x16: ~12 s).
    """
    from dwave.samplers import TreeDecompositionSampler

    from caloforge.boltzmann.ising import to_ising

    if not (beta > 0 and math.isfinite(beta)):
        raise BoltzmannError(f"beta must be a positive finite number, got {beta!r}")
    fixed = clamp_row_units(bm, clamp)
    bqm = to_ising(bm)
    if fixed:
        spins: dict[Hashable, float] = {u: 2 * v - 1 for u, v in fixed.items()}
        bqm.fix_variables(spins)
    unit = np.empty(bm.n_units)
    for u, v in fixed.items():
        unit[u] = v
    info = (
        TreeDecompositionSampler()
        .sample(bqm, num_reads=1, beta=float(beta), marginals=True, seed=0)
        .info
    )
    for v, prob in info["variable_marginals"].items():
        unit[int(v)] = prob
    joint = {}
    for (u, v), table in info["interaction_marginals"].items():
        joint[(int(u), int(v))] = table[(1, 1)]
        joint[(int(v), int(u))] = table[(1, 1)]
    edges = bm.topology.edges
    pair = np.empty(len(edges))
    for k, (i, j) in enumerate(edges.tolist()):
        if i in fixed or j in fixed:
            pair[k] = (fixed[i] if i in fixed else unit[i]) * (fixed[j] if j in fixed else unit[j])
        else:
            pair[k] = joint[(i, j)]
    # the sampler's log Z is that of exp(-beta * bqm energy); bqm energy = E for fixed spins too
    return Moments(
        unit, pair, edges, _mean_energy(bm, unit, pair), float(info["log_partition_function"])
    )


def product_moments(bm: BoltzmannMachine, reference: Moments) -> Moments:
    """The moments of the product of ``reference``'s marginals: <z_i z_j> = m_i m_j.

    The target of :class:`~caloforge.boltzmann.ProductOfMarginalsSampler`; log Z is NaN (not a
    Boltzmann distribution of ``bm``).
    """
    m, e = reference.unit, reference.edges
    pair = m[e[:, 0]] * m[e[:, 1]]
    return Moments(m.copy(), pair, e, _mean_energy(bm, m, pair), math.nan)


@dataclass(frozen=True)
class MomentCheck:
    """Outcome of :func:`check_moments`.

    Attributes:
        z_unit: (n,) z-scores of the unit marginals (0 where a clamp fixes the unit).
        z_pair: (E,) z-scores of the coupler moments (0 where the moment is fixed).
        z_energy: z-score of the mean energy.
        threshold: the Bonferroni threshold z* on |z|.
        n_tests: K, the number of quantities tested.
        n_draws: N independent draws (or C chains for a trace).
        passed: True when every |z| <= threshold.
    """

    z_unit: np.ndarray
    z_pair: np.ndarray
    z_energy: float
    threshold: float
    n_tests: int
    n_draws: int
    passed: bool

    @property
    def max_abs_z(self) -> float:
        """Largest |z| over every tested quantity."""
        return float(
            max(
                np.abs(self.z_unit).max(initial=0),
                np.abs(self.z_pair).max(initial=0),
                abs(self.z_energy),
            )
        )

    def summary(self) -> str:
        """One line: the worst z-scores of each family against the threshold."""
        return (
            f"max |z| units {np.abs(self.z_unit).max(initial=0):.2f}, couplers "
            f"{np.abs(self.z_pair).max(initial=0):.2f}, energy {abs(self.z_energy):.2f} "
            f"(threshold {self.threshold:.2f}, K = {self.n_tests}, N = {self.n_draws})"
        )


def bonferroni_threshold(
    n_tests: int, alpha: float = DEFAULT_ALPHA, dof: int | None = None
) -> float:
    """z* with P(|T| > z*) = alpha / n_tests for T standard normal (``dof`` None) or Student t."""
    q = 1.0 - alpha / (2 * n_tests)
    return float(stats.norm.ppf(q) if dof is None else stats.t.ppf(q, dof))


def _features(z: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(..., n + E) unit values and coupler products of (..., n) 0/1 states."""
    return np.concatenate([z, z[..., edges[:, 0]] * z[..., edges[:, 1]]], axis=-1)


def _energy(bm: BoltzmannMachine, z: np.ndarray) -> np.ndarray:
    b, edges, w = _weights(bm)
    return -(z @ b) - (z[..., edges[:, 0]] * z[..., edges[:, 1]]) @ w


def _binomial_z(frac: np.ndarray, mu: np.ndarray, n: int, z_normal: np.ndarray) -> np.ndarray:
    """Equivalent normal z of the exact two-sided binomial test of counts frac * n against
    Binomial(n, mu): sign(diff) * isf(p / 2); the normal z where p underflows to 0."""
    counts = np.rint(frac * n)
    mu = np.clip(mu, 1e-300, 1 - 1e-16)
    lower = stats.binom.cdf(counts, n, mu)
    upper = stats.binom.sf(counts - 1, n, mu)
    p_two = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
    z = np.sign(frac - mu) * stats.norm.isf(p_two / 2)
    return np.where(p_two > 0, z, z_normal)


def check_moments(
    bm: BoltzmannMachine,
    samples: torch.Tensor | np.ndarray,
    reference: Moments,
    *,
    alpha: float = DEFAULT_ALPHA,
) -> MomentCheck:
    """Do ``samples`` reproduce the exact ``reference`` moments within their null spread?

    Args:
        bm: the machine the samples claim to follow (for the energy).
        samples: (N, n) independent draws, or (T, C, n) traces of C independent chains
            (batch means over chains; C >= 8).
        reference: exact moments (:func:`exact_moments` or :func:`tree_moments`) of the target,
            with the same clamp as the samples.
        alpha: family-wise probability that a correct sampler fails.

    Returns:
        A :class:`MomentCheck`; see the module docstring for the statistics and the threshold.
    """
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu().numpy()
    z = np.asarray(samples, dtype=np.float64)
    n = bm.n_units
    if z.ndim not in (2, 3) or z.shape[-1] != n:
        raise BoltzmannError(f"samples must be (N, {n}) or (T, chains, {n}), got {z.shape}")
    if not np.all((z == 0) | (z == 1)):
        raise BoltzmannError("samples must hold only 0 and 1 values")
    mu = np.concatenate([reference.unit, reference.pair, [reference.mean_energy]])
    if z.ndim == 2:
        n_draws = z.shape[0]
        if n_draws < 2:
            raise BoltzmannError("check_moments needs at least 2 draws")
        feats = _features(z, reference.edges)
        energy = _energy(bm, z)
        mean = np.concatenate([feats.mean(0), [energy.mean()]])
        p = np.clip(mu[:-1], 0.0, 1.0)
        var = np.concatenate([p * (1 - p), [energy.var(ddof=1)]])  # exact for 0/1 features
        se = np.sqrt(var / n_draws)
        dof = None
    else:
        n_draws = z.shape[1]
        if n_draws < 8 or z.shape[0] < 1:
            raise BoltzmannError(f"batch means need at least 8 chains, got {n_draws}")
        feats = _features(z, reference.edges).mean(0)  # (C, K - 1) chain averages
        energy = _energy(bm, z).mean(0)  # (C,)
        per_chain = np.concatenate([feats, energy[:, None]], axis=1)
        mean = per_chain.mean(0)
        se = per_chain.std(0, ddof=1) / math.sqrt(n_draws)
        dof = n_draws - 1
    diff = mean - mu
    p = np.clip(mu[:-1], 0.0, 1.0)
    exact_var = np.concatenate([p * (1 - p), [np.inf]])
    fixed = exact_var <= 1e-12  # a clamp (or an infinite coupling) fixes the feature
    if dof is not None:
        # floor: the standard error of independent draws (a run of chains that never moved
        # shows se = 0; the floor keeps z finite and only ever makes the check more lenient)
        floor = np.append(p * (1 - p), 0.0) / z[..., 0].size
        se = np.maximum(se, np.sqrt(floor))
    fixed_ok = np.abs(diff) <= 1e-9
    zs = np.where(fixed, np.where(fixed_ok, 0.0, np.inf), diff / np.where(fixed, 1.0, se))
    if dof is None:
        zs[:-1] = np.where(fixed[:-1], zs[:-1], _binomial_z(mean[:-1], p, n_draws, zs[:-1]))
    # a feature a clamp fixes is not a test (it holds exactly or z = inf)
    n_tests = max(1, int(np.count_nonzero(~fixed)))
    threshold = bonferroni_threshold(n_tests, alpha, dof)
    passed = bool(np.all(np.abs(zs) <= threshold))
    return MomentCheck(
        z_unit=zs[:n],
        z_pair=zs[n:-1],
        z_energy=float(zs[-1]),
        threshold=threshold,
        n_tests=n_tests,
        n_draws=n_draws,
        passed=passed,
    )
