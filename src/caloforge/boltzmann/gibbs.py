"""Vectorised block Gibbs sampling of a Boltzmann machine, with optional persistent chains.

One sweep updates the partitions in turn; all units of a partition are drawn at once from
p(z_p = 1 | rest) = sigmoid(beta * (b_p + Wsym[p, :] z)). Chains live in a transposed
(n_units, n_chains) float32 buffer so every partition is a contiguous block of rows; the field of a
partition is one matrix product, sparse (CSR) for hardware graphs whose couplings are sparse and
dense block products for dense RBMs. Randomness comes from one ``torch.Generator`` seeded by the
call's ``seed``, so a call is deterministic given its seed (and, when persistent, the chains it
continues).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch

from caloforge.boltzmann.errors import BoltzmannError
from caloforge.boltzmann.machine import BoltzmannMachine, check_clamp, check_n_samples

#: Above this fraction of non-zero entries a partition's coupling rows are multiplied densely.
SPARSE_DENSITY_THRESHOLD = 0.08


@dataclass
class _Block:
    """How to compute the field of one partition: rows ``sl`` of the coupling matrix."""

    sl: slice
    bias: torch.Tensor  # (n_p, 1)
    sparse: torch.Tensor | None  # (n_p, n) CSR
    dense: list[tuple[slice, torch.Tensor]]  # [(other partition slice, (n_p, n_q))]

    def field(self, state: torch.Tensor) -> torch.Tensor:
        """(n_p, B) local fields b_p + Wsym[p, :] @ state for a (n, B) state."""
        if self.sparse is not None:
            return torch.sparse.mm(self.sparse, state).add_(self.bias)
        out = self.bias.expand(-1, state.shape[1]).clone()
        for sl, w in self.dense:
            out.addmm_(w, state[sl])
        return out


def _blocks(bm: BoltzmannMachine, sparse: bool | None) -> list[_Block]:
    with torch.no_grad():
        wsym = bm.symmetric_couplings().detach().float()
        bias = bm.bias.detach().float()
    slices = bm.partition_slices
    blocks = []
    for sl in slices:
        rows = wsym[sl]
        use_sparse = sparse
        if use_sparse is None:
            density = (rows != 0).float().mean().item() if rows.numel() else 0.0
            use_sparse = density < SPARSE_DENSITY_THRESHOLD
        if use_sparse:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is beta"
                csr = rows.to_sparse_csr()
            blocks.append(_Block(sl, bias[sl, None], csr, []))
        else:
            dense = [
                (other, rows[:, other].contiguous())
                for other in slices
                if other != sl and bool((rows[:, other] != 0).any())
            ]
            blocks.append(_Block(sl, bias[sl, None], None, dense))
    return blocks


class BlockGibbsSampler:
    """Block Gibbs sampler over the partitions of a :class:`BoltzmannMachine`.

    Args:
        n_sweeps: sweeps (one update of every free partition) per :meth:`sample` call. Choose it
            from the measured integrated autocorrelation time (see
            :func:`~caloforge.boltzmann.autocorrelation_time` and the prior-sampling benchmark).
        persistent: keep the chains between calls and continue them (persistent contrastive
            divergence for training). The chains restart when ``n_samples`` or the machine's size
            changes, or after :meth:`reset`.
        beta: inverse temperature of the sampled distribution exp(-beta E).
        burn_in: extra sweeps run once when chains are (re)initialised.
        sparse: force sparse (True) or dense (False) field products; None picks per partition
            from the coupling density.
        num_threads: torch intra-op threads while sampling (restored afterwards); None leaves
            torch's setting. On a shared, oversubscribed CPU 1 thread is far faster (the
            OpenMP barriers of small products stall): see docs/boltzmann.md.

    Chains start from independent units with p(z_i = 1) = sigmoid(beta b_i).
    """

    name = "gibbs"

    def __init__(
        self,
        n_sweeps: int = 20,
        *,
        persistent: bool = False,
        beta: float = 1.0,
        burn_in: int = 0,
        sparse: bool | None = None,
        num_threads: int | None = None,
    ) -> None:
        if not isinstance(n_sweeps, int) or n_sweeps < 0:
            raise BoltzmannError(f"n_sweeps must be a non-negative integer, got {n_sweeps!r}")
        if not isinstance(burn_in, int) or burn_in < 0:
            raise BoltzmannError(f"burn_in must be a non-negative integer, got {burn_in!r}")
        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
            raise BoltzmannError(f"num_threads must be a positive integer, got {num_threads!r}")
        if not (beta >= 0 and beta < float("inf")):
            raise BoltzmannError(f"beta must be a finite non-negative number, got {beta!r}")
        self.n_sweeps = n_sweeps
        self.persistent = persistent
        self.beta = float(beta)
        self.burn_in = burn_in
        self.sparse = sparse
        self.num_threads = num_threads
        self._chains: torch.Tensor | None = None  # (n, B) persistent state

    def reset(self) -> None:
        """Forget the persistent chains."""
        self._chains = None

    @property
    def chains(self) -> torch.Tensor | None:
        """(n_chains, n) current persistent chain states, or None."""
        return None if self._chains is None else self._chains.T.clone()

    # ------------------------------------------------------------------ sampling
    def sample(
        self,
        bm: BoltzmannMachine,
        n_samples: int,
        *,
        seed: int,
        clamp: Mapping[int, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Draw ``n_samples`` states (one per chain) after ``n_sweeps`` sweeps.

        Args:
            bm: the machine.
            n_samples: number of chains / samples.
            seed: seeds this call's random numbers.
            clamp: partition index -> (n_samples, partition size) fixed 0/1 values.

        Returns:
            (n_samples, n) float32 tensor of 0/1 on the machine's device.
        """
        with _threads(self.num_threads):
            state, _ = self.run(bm, n_samples, seed=seed, clamp=clamp)
            return state.T.contiguous()

    def energy_trace(
        self,
        bm: BoltzmannMachine,
        n_chains: int,
        n_sweeps: int,
        *,
        seed: int,
        burn_in: int = 0,
    ) -> torch.Tensor:
        """(n_sweeps, n_chains) energies recorded after each sweep of fresh chains.

        The first ``burn_in`` sweeps are run but not recorded. Persistent chains are untouched.
        """
        runner = BlockGibbsSampler(
            n_sweeps, persistent=False, beta=self.beta, burn_in=burn_in, sparse=self.sparse
        )
        with _threads(self.num_threads):
            _, trace = runner.run(bm, n_chains, seed=seed, record_energy=True)
        if trace is None:  # run() records the trace whenever record_energy is set
            raise RuntimeError("the Gibbs runner returned no energy trace")
        return trace

    def state_trace(
        self,
        bm: BoltzmannMachine,
        n_chains: int,
        n_sweeps: int,
        *,
        seed: int,
        burn_in: int = 0,
        clamp: Mapping[int, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """(n_sweeps, n_chains, n) uint8 states recorded after each sweep of fresh chains.

        The first ``burn_in`` sweeps are run but not recorded; ``clamp`` as in :meth:`sample`.
        Persistent chains are untouched. Memory: n_sweeps * n_chains * n bytes.
        """
        runner = BlockGibbsSampler(
            n_sweeps, persistent=False, beta=self.beta, burn_in=burn_in, sparse=self.sparse
        )
        out = torch.empty(n_sweeps, n_chains, bm.n_units, dtype=torch.uint8)
        recorded = [0]

        def keep(state: torch.Tensor) -> None:
            out[recorded[0]] = state.T.to("cpu", torch.uint8)
            recorded[0] += 1

        with _threads(self.num_threads):
            runner.run(bm, n_chains, seed=seed, clamp=clamp, observer=keep)
        return out

    def run(
        self,
        bm: BoltzmannMachine,
        n_samples: int,
        *,
        seed: int,
        clamp: Mapping[int, torch.Tensor] | None = None,
        record_energy: bool = False,
        observer: Callable[[torch.Tensor], None] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the chains; returns the (n, n_samples) state and, if asked, the energy trace.

        ``observer``, if given, is called with the (n, n_samples) state after each of the last
        ``n_sweeps`` sweeps (not the burn-in); it must not modify the state.
        """
        n_samples = check_n_samples(n_samples)
        clamp = check_clamp(bm, n_samples, clamp)
        device = bm.bias.device
        gen = torch.Generator(device=device).manual_seed(int(seed))
        blocks = _blocks(bm, self.sparse)
        n = bm.n_units

        sweeps = self.n_sweeps
        state = self._chains if self.persistent else None
        if state is None or state.shape != (n, n_samples) or state.device != device:
            with torch.no_grad():
                p0 = torch.sigmoid(self.beta * bm.bias.detach().float())[:, None]
            state = (torch.rand(n, n_samples, generator=gen, device=device) < p0).float()
            sweeps += self.burn_in
        else:
            state = state.clone()
        for p, values in clamp.items():
            state[blocks[p].sl] = values.to(device).T
        free = [b for p, b in enumerate(blocks) if p not in clamp]

        # energies after each of the last n_sweeps sweeps (burn-in sweeps are not recorded)
        trace = torch.empty(self.n_sweeps if record_energy else 0, n_samples, device=device)
        recorded = 0
        uniform = torch.empty(max(b.sl.stop - b.sl.start for b in free), n_samples, device=device)
        with torch.no_grad():
            for sweep in range(sweeps):
                for block in free:
                    prob = block.field(state).mul_(self.beta).sigmoid_()
                    u = uniform[: prob.shape[0]]
                    torch.rand(u.shape, generator=gen, device=device, out=u)
                    state[block.sl] = torch.lt(u, prob).float()
                if sweep >= sweeps - self.n_sweeps:
                    if record_energy:
                        trace[recorded] = _energy_t(bm, state, blocks)
                        recorded += 1
                    if observer is not None:
                        observer(state)
        if self.persistent:
            self._chains = state
        return state, (trace if record_energy else None)


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (None: unchanged)."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _energy_t(bm: BoltzmannMachine, state: torch.Tensor, blocks: list[_Block]) -> torch.Tensor:
    """(B,) energies of a transposed (n, B) state: -b.z - 1/2 z.Wsym.z."""
    e = torch.zeros(state.shape[1], device=state.device)
    for block in blocks:
        field = block.field(state)  # b_p + Wsym[p] z
        zp = state[block.sl]
        bias_term = (block.bias * zp).sum(0)
        # sum_p z_p.(b_p + Wsym[p] z) = 2 b.z + z.Wsym.z  ->  E = -(that + b.z) / 2
        e -= 0.5 * ((field * zp).sum(0) + bias_term)
    return e


def sweeps_from_autocorrelation(tau: float, factor: float = 2.0) -> int:
    """Sweeps between (nearly) independent samples: ``ceil(factor * tau)``, at least 1."""
    if not tau > 0:
        raise BoltzmannError(f"autocorrelation time must be positive, got {tau!r}")
    import math

    return max(1, math.ceil(factor * tau))
