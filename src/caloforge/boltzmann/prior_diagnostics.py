"""Diagnostics of a Boltzmann prior: how strongly it couples, how far it is from a product of
its own marginals, and how many Gibbs sweeps it needs.

:func:`diagnose_prior` (machine + optional clamp -> :class:`PriorDiagnostics`) runs three parts,
each also callable alone:

* :func:`coupling_stats`: mean / rms / max |W| over the topology's couplers, the fraction above
  thresholds (0.1, 0.3, 1.0), per pair of partitions, and the biases' spread.
* :func:`product_kl`: the total correlation KL(p || prod_i p_i) = sum_i H(p_i) - H(p) in nats
  (zero exactly when the units are independent). With a clamp it is the KL of the conditional
  p(z_free | c) against the product of ITS marginals, averaged over the distinct clamp rows.

  - ``"exact"`` (<= 20 free units): enumeration.
  - ``"tree"``: exact marginals, <E> and log Z from dwave-samplers' tree decomposition
    (H = <E> + log Z at beta = 1); for low-treewidth machines (tens of units).
  - ``"ais"`` (any size): KL = E_p[g] - log Z with g(z) = -E(z) - log q(z), q the product of
    the marginals. log Z by annealed importance sampling (:func:`ais_log_partition`), E_p[g]
    and the marginals from block Gibbs chains (after ``burn_in`` sweeps), with a batch-means
    standard error over chains. Reported error: sqrt(se_AIS^2 + se_g^2). Known biases, both
    small against the error for the default sizes: AIS estimates Z without bias, so log Z is
    low by ~Var(log w) / (2 n_chains) and KL high by as much. q uses marginals m_hat fitted on
    the same samples, which lowers E[-log q] = sum_i H(m_hat_i) by sum_i Var(m_hat_i) /
    (2 m_i (1 - m_i)) to second order (~ units x tau / (2 x samples)); that term, with
    Var(m_hat_i) by batch means, is added back.
  - ``"auto"``: exact up to 20 free units, else AIS.

* :func:`mixing_stats`: the integrated autocorrelation time (in sweeps) under block Gibbs of the
  energy, each free partition's magnetisation (mean of its units), every free unit, and any user
  observable (a callable (B, n) float states -> (B,), e.g. the decoder's total energy of the
  shower a latent state decodes to), measured on the second half of ``n_sweeps`` sweeps of
  ``n_chains`` fresh chains (each chain's values are centred on its clamp row's mean, so
  different rows do not masquerade as slow mixing); the burn-in of each (first sweep at which
  the chains' mean is within 2 standard errors of its second-half mean); and the recommended
  sweep count for fresh chains

      recommended_sweeps = max(max burn-in, ceil(k * max tau)),  k = 10 (``SWEEP_FACTOR``).

  Why k = 10: fresh chains forget their start like exp(-t / tau_exp). For an AR(1)-like
  observable tau_int = (1 + phi) / (1 - phi) ~ 2 tau_exp, but that is not guaranteed: on a
  strongly coupled Pegasus 4x8 machine (mean |W| 1.66) the slowest unit relaxed from its start
  with tau_exp ~ 6.4 sweeps against its tau_int of 6.9 (measured): 40 sweeps (more than
  k = 5 would give, 35) left it 6.7 null standard deviations off at 128 000 draws. With tau_exp <= tau_int, k = 10 shrinks
  the start's memory by e^-10 = 4.5e-5: a start 1000 null standard deviations off ends within
  0.05. It only sees slow modes the observables see, so check ``reliable`` (the trace is
  >= 50 tau long) and, for small machines, :func:`check_moments`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from caloforge.boltzmann.conditional import condition
from caloforge.boltzmann.diagnostics import autocorrelation_time, burn_in_sweeps
from caloforge.boltzmann.errors import BoltzmannError
from caloforge.boltzmann.gibbs import BlockGibbsSampler
from caloforge.boltzmann.machine import BoltzmannMachine

#: |W| thresholds of the coupling statistics.
COUPLING_THRESHOLDS = (0.1, 0.3, 1.0)
#: k of recommended_sweeps = max(burn-in, ceil(k * max tau)).
SWEEP_FACTOR = 10.0
#: A trace shorter than this many autocorrelation times gives an unreliable tau.
MIN_TRACE_PER_TAU = 50
#: At most this many distinct clamp rows enter the KL (each needs its own log Z).
MAX_CLAMP_ROWS = 4

Observable = Callable[[torch.Tensor], torch.Tensor]


# ------------------------------------------------------------------ couplings


@dataclass
class PairCouplings:
    """Couplers between partitions ``partitions = (p, q)``, p < q."""

    partitions: tuple[int, int]
    n_couplers: int
    mean_abs: float
    max_abs: float
    fraction_above: dict[str, float]


@dataclass
class CouplingStats:
    """Spread of the couplings W (on the topology's couplers) and of the biases b."""

    n_couplers: int
    mean_abs: float
    rms: float
    max_abs: float
    fraction_above: dict[str, float]
    per_pair: list[PairCouplings]
    bias_mean_abs: float
    bias_max_abs: float


def _fractions(w: np.ndarray, thresholds: tuple[float, ...]) -> dict[str, float]:
    return {f"{t:g}": float(np.mean(w > t)) if w.size else math.nan for t in thresholds}


def coupling_stats(
    bm: BoltzmannMachine, thresholds: tuple[float, ...] = COUPLING_THRESHOLDS
) -> CouplingStats:
    """Coupling statistics of ``bm``: |W| over all couplers and per pair of partitions."""
    with torch.no_grad():
        w_full = bm.couplings().detach().double().cpu().numpy()
        b = bm.bias.detach().double().cpu().numpy()
    edges = bm.topology.edges
    w = np.abs(w_full[edges[:, 0], edges[:, 1]]) if len(edges) else np.zeros(0)
    part = bm.topology.partition_of.numpy()
    pairs = []
    n_p = bm.topology.n_partitions
    for p in range(n_p):
        for q in range(p + 1, n_p):
            sel = (part[edges[:, 0]] == p) & (part[edges[:, 1]] == q)
            if not np.any(sel):
                continue
            pairs.append(
                PairCouplings(
                    (p, q),
                    int(sel.sum()),
                    float(w[sel].mean()),
                    float(w[sel].max()),
                    _fractions(w[sel], thresholds),
                )
            )
    return CouplingStats(
        n_couplers=int(w.size),
        mean_abs=float(w.mean()) if w.size else math.nan,
        rms=float(np.sqrt(np.mean(w**2))) if w.size else math.nan,
        max_abs=float(w.max()) if w.size else math.nan,
        fraction_above=_fractions(w, thresholds),
        per_pair=pairs,
        bias_mean_abs=float(np.abs(b).mean()),
        bias_max_abs=float(np.abs(b).max()),
    )


# ------------------------------------------------------------------ clamp rows


def _clamp_rows(
    bm: BoltzmannMachine, clamp: Mapping[int, torch.Tensor] | None, max_rows: int
) -> list[dict[int, torch.Tensor]]:
    """Distinct clamp rows (at most ``max_rows``, evenly spaced in sorted order) as one-row
    clamps; [{}] without a clamp."""
    if not clamp:
        return [{}]
    if not isinstance(clamp, Mapping):
        raise BoltzmannError(
            f"clamp must map partition indices to tensors, got {type(clamp).__name__}"
        )
    sizes = bm.topology.partition_sizes
    keys = sorted(clamp)
    blocks = []
    for p in keys:
        if not isinstance(p, int) or not 0 <= p < len(sizes):
            raise BoltzmannError(f"clamp key {p!r} is not a partition index (0..{len(sizes) - 1})")
        values = torch.as_tensor(clamp[p]).detach().cpu().float()
        if values.ndim == 1:
            values = values[None]
        if values.ndim != 2 or values.shape[1] != sizes[p]:
            raise BoltzmannError(
                f"clamp of partition {p} must have shape (rows, {sizes[p]}), "
                f"got {tuple(values.shape)}"
            )
        blocks.append(values)
    if len({b.shape[0] for b in blocks}) != 1:
        raise BoltzmannError("every clamped partition needs the same number of rows")
    rows = torch.unique(torch.cat(blocks, dim=1), dim=0)
    if rows.shape[0] > max_rows:
        pick = np.unique(np.linspace(0, rows.shape[0] - 1, max_rows).round().astype(int))
        rows = rows[torch.from_numpy(pick)]
    out = []
    for row in rows:
        one, start = {}, 0
        for p in keys:
            one[p] = row[start : start + sizes[p]]
            start += sizes[p]
        out.append(one)
    return out


def _chain_clamp(
    rows: list[dict[int, torch.Tensor]], n_chains: int
) -> tuple[dict[int, torch.Tensor] | None, np.ndarray]:
    """Clamp tensors giving chain c the row c % len(rows), and each chain's row index."""
    which = np.arange(n_chains) % len(rows)
    if not rows[0]:
        return None, which
    idx = torch.from_numpy(which)
    return {p: torch.stack([r[p] for r in rows])[idx] for p in rows[0]}, which


# ------------------------------------------------------------------ KL to the product


@dataclass
class KLEstimate:
    """KL(p || product of its marginals) in nats, averaged over clamp rows.

    Attributes:
        kl, stderr: the estimate and its standard error (0 for exact methods).
        method: "exact", "tree" or "ais".
        entropy: H(p) (of the free units) in nats; marginal_entropy: sum_i H(p_i).
        log_partition, log_partition_stderr: log Z of the free units' machine (given the clamp).
        per_row: the KL of each distinct clamp row, rows in sorted (lexicographic) order.
        n_free: free units.
    """

    kl: float
    stderr: float
    method: str
    entropy: float
    marginal_entropy: float
    log_partition: float
    log_partition_stderr: float
    per_row: list[float]
    n_free: int


def _binary_entropy(m: np.ndarray) -> np.ndarray:
    m = np.clip(m, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(m * np.log(m) + (1 - m) * np.log1p(-m))
    return np.nan_to_num(h, nan=0.0)


def _row_kl(
    bm: BoltzmannMachine,
    row: dict[int, torch.Tensor],
    method: str,
    *,
    seed: int,
    n_chains: int,
    burn_in: int,
    n_record: int,
    ais_chains: int,
    ais_steps: int,
) -> tuple[float, float, str, float, float, float, float, int]:
    from caloforge.boltzmann.partition import (
        ais_log_partition,
        all_states,
        exact_energies,
        exact_log_partition,
    )

    cond = condition(bm, row or None)
    n_free = int(cond.free_units.size)
    if cond.machine is None:  # one free partition: independent units given the clamp
        h = float(_binary_entropy(1 / (1 + np.exp(-cond.bias))).sum())
        log_z = float(np.logaddexp(0.0, cond.bias).sum())
        return 0.0, 0.0, "exact", h, h, log_z, 0.0, n_free
    sub = cond.machine
    if method == "auto":
        method = "exact" if n_free <= 20 else "ais"
    if method == "exact":
        if n_free > 20:
            raise BoltzmannError(
                f"exact KL enumerates at most 20 free units, this prior has {n_free}"
            )
        logits = -exact_energies(sub)
        log_z = exact_log_partition(sub)
        p = torch.softmax(logits, 0)
        h = float(-(p * torch.log_softmax(logits, 0)).sum())
        m = (p @ all_states(n_free)).numpy()
        h_m = float(_binary_entropy(m).sum())
        return h_m - h, 0.0, "exact", h, h_m, log_z, 0.0, n_free
    if method == "tree":
        from caloforge.boltzmann.moments import tree_moments

        mom = tree_moments(sub)
        h = mom.mean_energy + mom.log_partition
        h_m = float(_binary_entropy(mom.unit).sum())
        return h_m - h, 0.0, "tree", h, h_m, mom.log_partition, 0.0, n_free
    if method != "ais":
        raise BoltzmannError(f"unknown KL method {method!r}; choose auto, exact, tree or ais")
    log_z, log_z_se = ais_log_partition(sub, ais_chains, ais_steps, seed=seed)
    trace = BlockGibbsSampler(1).state_trace(
        sub, n_chains, n_record, seed=seed + 1, burn_in=burn_in
    )
    z = trace.double().numpy()  # (T, C, n_free)
    m = np.clip(z.mean((0, 1)), 1e-12, 1 - 1e-12)
    with torch.no_grad():
        b = sub.bias.detach().double().numpy()
        w = sub.couplings().detach().double().numpy()
    energy = -(z @ b) - ((z @ w) * z).sum(-1)
    log_q = z @ np.log(m) + (1 - z) @ np.log1p(-m)
    g = (-energy - log_q).mean(0)  # (C,) chain averages
    # sum_i H(m_hat_i) is low by sum_i Var(m_hat_i) / (2 m_i (1 - m_i)) (second order of H
    # around m); Var(m_hat_i) by batch means over chains, so autocorrelation is included
    var_m = z.mean(0).var(0, ddof=1) / n_chains
    plug_in_bias = float(np.sum(var_m / (2 * m * (1 - m))))
    kl = float(g.mean()) + plug_in_bias - log_z
    se = math.hypot(float(g.std(ddof=1)) / math.sqrt(n_chains), log_z_se)
    h = float(energy.mean()) + log_z
    h_m = float(_binary_entropy(m).sum()) + plug_in_bias
    return kl, se, "ais", h, h_m, log_z, log_z_se, n_free


def product_kl(
    bm: BoltzmannMachine,
    *,
    clamp: Mapping[int, torch.Tensor] | None = None,
    method: str = "auto",
    seed: int,
    n_chains: int = 256,
    burn_in: int = 200,
    n_record: int = 200,
    ais_chains: int = 256,
    ais_steps: int = 500,
    max_clamp_rows: int = MAX_CLAMP_ROWS,
) -> KLEstimate:
    """KL(p || prod_i p_i) of ``bm`` (or of its conditional given each clamp row), in nats.

    Args:
        bm: the machine.
        clamp: partition -> (rows, size) or (size,) 0/1 values; distinct rows are averaged
            (at most ``max_clamp_rows``, evenly spaced).
        method: "auto", "exact", "tree" or "ais" (module docstring).
        seed: seeds AIS and the Gibbs chains.
        n_chains, burn_in, n_record: Gibbs chains of the AIS method (``burn_in`` sweeps, then
            ``n_record`` recorded sweeps each).
        ais_chains, ais_steps: AIS runs and ladder steps.
    """
    rows = _clamp_rows(bm, clamp, max_clamp_rows)
    seeds = np.random.SeedSequence(int(seed)).generate_state(len(rows))
    parts = [
        _row_kl(
            bm,
            row,
            method,
            seed=int(s),
            n_chains=n_chains,
            burn_in=burn_in,
            n_record=n_record,
            ais_chains=ais_chains,
            ais_steps=ais_steps,
        )
        for row, s in zip(rows, seeds, strict=True)
    ]
    arr = np.array([[p[0], p[1], p[3], p[4], p[5], p[6]] for p in parts], dtype=np.float64)
    r = len(parts)
    methods = {p[2] for p in parts}
    return KLEstimate(
        kl=float(arr[:, 0].mean()),
        stderr=float(np.sqrt((arr[:, 1] ** 2).sum()) / r),
        method="+".join(sorted(methods)),
        entropy=float(arr[:, 2].mean()),
        marginal_entropy=float(arr[:, 3].mean()),
        log_partition=float(arr[:, 4].mean()),
        log_partition_stderr=float(np.sqrt((arr[:, 5] ** 2).sum()) / r),
        per_row=[float(x) for x in arr[:, 0]],
        n_free=parts[0][7],
    )


# ------------------------------------------------------------------ mixing


@dataclass
class MixingStats:
    """Autocorrelation times (sweeps) and burn-in under block Gibbs, and the sweep count.

    Attributes:
        tau: observable name -> integrated autocorrelation time ("energy",
            "magnetisation[p]", user names).
        burn_in: observable name -> burn-in sweeps of fresh chains.
        unit_tau_max, unit_tau_median: over the free units that move; slowest_units: the
            (at most 5) units with the largest tau.
        unit_burn_in_max: the largest burn-in of a single unit.
        tau_max: largest tau of all (observables and units); burn_in_max likewise.
        sweep_factor: k; recommended_sweeps: max(burn_in_max, ceil(k tau_max)).
        observable_sweeps: the same over the observables only (energy, magnetisations, user
            observables), without single units: enough for what those observables see (e.g. the
            decoder's output), usually far fewer on strongly coupled machines, where a few
            nearly frozen units flip rarely.
        reliable: the recorded half of the trace is >= 50 tau_max sweeps.
        skipped: observables that did not move (constant), so have no tau.
    """

    tau: dict[str, float]
    burn_in: dict[str, int]
    unit_tau_max: float
    unit_tau_median: float
    slowest_units: list[int]
    unit_burn_in_max: int
    tau_max: float
    burn_in_max: int
    sweep_factor: float
    recommended_sweeps: int
    observable_sweeps: int
    n_chains: int
    n_sweeps: int
    reliable: bool
    skipped: list[str] = field(default_factory=list)


def _tau_and_burn(x: np.ndarray, which: np.ndarray, half: int) -> tuple[float, int]:
    """tau of the second half of a (T, C) trace (centred per clamp row) and its burn-in."""
    tail = x[half:].copy()
    for g in np.unique(which):
        tail[:, which == g] -= tail[:, which == g].mean()
    return autocorrelation_time(tail), burn_in_sweeps(x)


def mixing_stats(
    bm: BoltzmannMachine,
    *,
    clamp: Mapping[int, torch.Tensor] | None = None,
    seed: int,
    n_chains: int = 256,
    n_sweeps: int = 400,
    observables: Mapping[str, Observable] | None = None,
    sweep_factor: float = SWEEP_FACTOR,
    max_clamp_rows: int = 64,
) -> MixingStats:
    """Autocorrelation times and burn-in under block Gibbs (see the module docstring).

    Args:
        bm: the machine.
        clamp: partition -> (rows, size) or (size,) 0/1; chain c uses distinct row c % rows.
        seed: seeds the chains.
        n_chains, n_sweeps: fresh chains and sweeps recorded (tau uses the second half).
        observables: name -> callable mapping (B, n) float32 states to (B,) values.
        sweep_factor: k of the recommendation.
    """
    if n_sweeps < 16 or n_chains < 2:
        raise BoltzmannError(
            f"mixing needs n_sweeps >= 16 and n_chains >= 2, got {n_sweeps}, {n_chains}"
        )
    rows = _clamp_rows(bm, clamp, max_clamp_rows)
    chain_clamp, which = _chain_clamp(rows, n_chains)
    trace = BlockGibbsSampler(1).state_trace(bm, n_chains, n_sweeps, seed=seed, clamp=chain_clamp)
    half = n_sweeps // 2
    clamped = set(rows[0])
    free_parts = [p for p in range(bm.topology.n_partitions) if p not in clamped]
    series: dict[str, np.ndarray] = {}
    with torch.no_grad():
        states = trace.float()
        series["energy"] = torch.stack([bm.energy(s) for s in states]).double().numpy()
        for p in free_parts:
            sl = bm.partition_slices[p]
            series[f"magnetisation[{p}]"] = states[:, :, sl].mean(-1).double().numpy()
        for name, fn in (observables or {}).items():
            values = torch.stack([torch.as_tensor(fn(s)).reshape(-1) for s in states])
            if values.shape != (n_sweeps, n_chains):
                raise BoltzmannError(
                    f"observable {name!r} must map (B, n) states to (B,) values, got shape "
                    f"{tuple(values.shape[1:])} for B = {n_chains}"
                )
            series[name] = values.detach().double().cpu().numpy()
    tau: dict[str, float] = {}
    burn: dict[str, int] = {}
    skipped: list[str] = []
    for name, x in series.items():
        try:
            tau[name], burn[name] = _tau_and_burn(x, which, half)
        except BoltzmannError:
            skipped.append(name)
    free_units = np.concatenate([bm.partitions[p].numpy() for p in free_parts])
    unit_tau = {}
    unit_burn = 0
    z = trace.numpy()
    for u in free_units.tolist():
        try:
            t_u, b_u = _tau_and_burn(z[:, :, u].astype(np.float64), which, half)
        except BoltzmannError:  # a unit that never flips in the record
            continue
        unit_tau[u] = t_u
        unit_burn = max(unit_burn, b_u)
    taus = np.array(list(unit_tau.values())) if unit_tau else np.zeros(0)
    slowest = sorted(unit_tau, key=lambda u: unit_tau[u], reverse=True)[:5]
    all_taus = list(tau.values()) + taus.tolist()
    tau_max = max(all_taus) if all_taus else 1.0
    burn_max = max([unit_burn, *burn.values()])
    recommended = max(burn_max, math.ceil(sweep_factor * tau_max), 1)
    obs_tau = max(tau.values(), default=1.0)
    observable_sweeps = max([*burn.values(), math.ceil(sweep_factor * obs_tau), 1])
    return MixingStats(
        tau=tau,
        burn_in=burn,
        unit_tau_max=float(taus.max()) if taus.size else math.nan,
        unit_tau_median=float(np.median(taus)) if taus.size else math.nan,
        slowest_units=[int(u) for u in slowest],
        unit_burn_in_max=int(unit_burn),
        tau_max=float(tau_max),
        burn_in_max=int(burn_max),
        sweep_factor=float(sweep_factor),
        recommended_sweeps=int(recommended),
        observable_sweeps=int(observable_sweeps),
        n_chains=int(n_chains),
        n_sweeps=int(n_sweeps),
        reliable=bool(n_sweeps - half >= MIN_TRACE_PER_TAU * tau_max),
        skipped=skipped,
    )


# ------------------------------------------------------------------ all together


@dataclass
class PriorDiagnostics:
    """Everything :func:`diagnose_prior` measured; :meth:`to_dict` is plain JSON."""

    n_units: int
    partition_sizes: list[int]
    topology: str
    clamped_partitions: list[int]
    n_clamp_rows: int
    couplings: CouplingStats
    kl: KLEstimate
    mixing: MixingStats
    seed: int
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict (NaN becomes None; tuples lists)."""
        return _jsonable(asdict(self))

    def summary_lines(self) -> list[str]:
        """A few human-readable lines (for ``caloforge describe RUN --prior``)."""
        c, k, m = self.couplings, self.kl, self.mixing
        above = ", ".join(f"{v:.1%} > {t}" for t, v in c.fraction_above.items())
        lines = [
            f"prior: {self.n_units} units {self.partition_sizes} ({self.topology}), "
            f"clamped partitions {self.clamped_partitions or 'none'}",
            f"couplings: {c.n_couplers} couplers, mean |W| {c.mean_abs:.3f}, max {c.max_abs:.3f}"
            f" ({above}); mean |b| {c.bias_mean_abs:.3f}",
        ]
        for pc in c.per_pair:
            lines.append(
                f"  partitions {pc.partitions}: {pc.n_couplers} couplers, mean |W| "
                f"{pc.mean_abs:.3f}, max {pc.max_abs:.3f}"
            )
        lines.append(
            f"KL(prior || product of marginals) = {k.kl:.4f} +- {k.stderr:.4f} nats ({k.method}"
            f", {self.n_clamp_rows} clamp row(s)) of entropy {k.entropy:.2f} nats"
        )
        taus = ", ".join(f"{n} {t:.2f}" for n, t in m.tau.items())
        lines.append(
            f"tau_int (sweeps): {taus}; units max {m.unit_tau_max:.2f} median "
            f"{m.unit_tau_median:.2f}; burn-in max {m.burn_in_max}"
        )
        lines.append(
            f"recommended Gibbs sweeps: {m.recommended_sweeps} = max(burn-in {m.burn_in_max}, "
            f"ceil({m.sweep_factor:g} x tau_max {m.tau_max:.2f}))"
            + ("" if m.reliable else "  [trace < 50 tau: rerun with more sweeps]")
        )
        lines.append(f"  (observables only, without single units: {m.observable_sweeps})")
        return lines


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    return x


def diagnose_prior(
    bm: BoltzmannMachine,
    *,
    clamp: Mapping[int, torch.Tensor] | None = None,
    seed: int,
    observables: Mapping[str, Observable] | None = None,
    kl_method: str = "auto",
    n_chains: int = 256,
    n_sweeps: int = 400,
    ais_chains: int = 256,
    ais_steps: int = 500,
    max_clamp_rows: int = MAX_CLAMP_ROWS,
) -> PriorDiagnostics:
    """Coupling statistics, KL to the product of marginals and Gibbs mixing of a prior.

    Args:
        bm: the prior.
        clamp: partition -> (rows, size) or (size,) 0/1 conditioning values (e.g. the energy
            codes of a few incident energies); the KL averages the distinct rows (at most
            ``max_clamp_rows``, evenly spaced) and the mixing chains cycle through them.
        seed: seeds every chain and AIS run (the result is deterministic given the seed).
        observables: extra name -> callable((B, n) float32 states) -> (B,) for the mixing.
        kl_method: "auto", "exact", "tree" or "ais".
        n_chains, n_sweeps: chains and recorded sweeps of the mixing measurement; the AIS KL
            uses ``n_chains`` chains after ``recommended_sweeps`` of burn-in, recording
            ``n_sweeps // 2`` sweeps.
        ais_chains, ais_steps: AIS size for log Z (``ais`` method only).
    """
    rows = _clamp_rows(bm, clamp, max_clamp_rows)
    seeds = np.random.SeedSequence(int(seed)).generate_state(2)
    mixing = mixing_stats(
        bm,
        clamp=clamp,
        seed=int(seeds[0]),
        n_chains=n_chains,
        n_sweeps=n_sweeps,
        observables=observables,
        max_clamp_rows=max_clamp_rows,
    )
    kl = product_kl(
        bm,
        clamp=clamp,
        method=kl_method,
        seed=int(seeds[1]),
        n_chains=n_chains,
        burn_in=mixing.recommended_sweeps,
        n_record=max(n_sweeps // 2, 2),
        ais_chains=ais_chains,
        ais_steps=ais_steps,
        max_clamp_rows=max_clamp_rows,
    )
    return PriorDiagnostics(
        n_units=bm.n_units,
        partition_sizes=list(bm.topology.partition_sizes),
        topology=bm.topology.kind,
        clamped_partitions=sorted(rows[0]),
        n_clamp_rows=len(rows),
        couplings=coupling_stats(bm),
        kl=kl,
        mixing=mixing,
        seed=int(seed),
        settings={
            "kl_method": kl_method,
            "n_chains": n_chains,
            "n_sweeps": n_sweeps,
            "ais_chains": ais_chains,
            "ais_steps": ais_steps,
            "max_clamp_rows": max_clamp_rows,
            "sweep_factor": SWEEP_FACTOR,
        },
    )
