"""The Boltzmann machine: binary units, biases and masked couplings, and its energy.

For binary units z in {0, 1}^n the energy is

    E(z) = - sum_i b_i z_i - sum_{i<j} W_ij z_i z_j,

and the machine's distribution at inverse temperature beta is p(z) = exp(-beta E(z)) / Z(beta).
``W`` is ``triu(weight * mask, 1)``: only pairs the :class:`~caloforge.boltzmann.Topology` allows
couple, and each pair is counted once. The units of a partition share no coupler, so given the
other partitions they are independent: p(z_i = 1 | rest) = sigmoid(beta * (b_i + sum_j Wsym_ij z_j))
with ``Wsym = W + W.T``. That is what the block Gibbs sampler uses.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping

import torch
from torch import nn

from caloforge.boltzmann.errors import BoltzmannError
from caloforge.boltzmann.topology import Topology


class BoltzmannMachine(nn.Module):
    """A (multi)partite Boltzmann machine on a :class:`Topology`.

    Parameters (trainable): ``bias`` (n,), ``weight`` (n, n); only the entries on the topology's
    couplers (upper triangle) matter. Buffers: ``coupling_mask`` (n, n) float, upper-triangular
    0/1 mask of the couplers, stored in checkpoints beside the weights.

    Args:
        topology: partitions and couplers.
        weight_scale: standard deviation of the initial couplings (normal, seeded by ``seed``).
        seed: seed of the initial couplings.
    """

    coupling_mask: torch.Tensor  # buffer, registered in __init__

    def __init__(self, topology: Topology, *, weight_scale: float = 0.01, seed: int = 0) -> None:
        super().__init__()
        self.topology = topology
        n = topology.n_units
        gen = torch.Generator().manual_seed(seed)
        self.bias = nn.Parameter(torch.zeros(n))
        self.weight = nn.Parameter(torch.randn(n, n, generator=gen) * weight_scale)
        self.register_buffer("coupling_mask", torch.triu(topology.mask, 1).float())

    @classmethod
    def random(
        cls,
        topology: Topology,
        *,
        weight_scale: float = 0.5,
        bias_scale: float = 0.5,
        seed: int = 0,
    ) -> BoltzmannMachine:
        """A machine with N(0, weight_scale^2) couplings and N(0, bias_scale^2) biases (tests,
        benchmarks)."""
        bm = cls(topology, weight_scale=weight_scale, seed=seed)
        gen = torch.Generator().manual_seed(seed + 1_000_003)
        with torch.no_grad():
            bm.bias.copy_(torch.randn(topology.n_units, generator=gen) * bias_scale)
        return bm

    # ------------------------------------------------------------------ structure
    @property
    def n_units(self) -> int:
        return self.topology.n_units

    @property
    def partitions(self) -> list[torch.Tensor]:
        """Unit indices of each partition (contiguous ranges)."""
        return self.topology.partitions

    @property
    def partition_slices(self) -> list[slice]:
        o = self.topology.offsets
        return [slice(o[p], o[p + 1]) for p in range(self.topology.n_partitions)]

    def couplings(self) -> torch.Tensor:
        """(n, n) upper-triangular couplings W = triu(weight * mask, 1), differentiable."""
        return self.weight * self.coupling_mask

    def symmetric_couplings(self) -> torch.Tensor:
        """(n, n) symmetric couplings W + W.T (zero inside every partition)."""
        w = self.couplings()
        return w + w.T

    # ------------------------------------------------------------------ energy
    def energy(self, z: torch.Tensor) -> torch.Tensor:
        """Energy of states ``z`` (B, n) with entries in [0, 1] -> (B,); differentiable.

        Relaxed (non-binary) ``z`` from a binary-concrete posterior are allowed; the formula is
        the same polynomial.
        """
        self.check_states(z)
        z = z.to(self.bias.dtype)
        return -(z @ self.bias) - ((z @ self.couplings()) * z).sum(-1)

    def log_unnormalized_prob(self, z: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """(B,) ``-beta * E(z)``."""
        return -beta * self.energy(z)

    def conditional_logits(self, z: torch.Tensor, partition: int) -> torch.Tensor:
        """(B, n_p) logits of p(z_p = 1 | other partitions) at beta = 1, from states (B, n)."""
        self.check_states(z)
        sl = self.partition_slices[partition]
        return self.bias[sl] + z.to(self.bias.dtype) @ self.symmetric_couplings()[:, sl]

    # ------------------------------------------------------------------ checks
    def check_states(self, z: torch.Tensor) -> None:
        """Raise :class:`BoltzmannError` unless ``z`` is a finite (B, n) tensor."""
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.n_units:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise BoltzmannError(
                f"states must be a (batch, {self.n_units}) tensor for this machine, got {shape}"
            )
        if z.is_floating_point() and not torch.isfinite(z).all():
            raise BoltzmannError("states contain NaN or infinite values")

    def extra_repr(self) -> str:
        return repr(self.topology)


def check_clamp(
    bm: BoltzmannMachine, n_samples: int, clamp: Mapping[int, torch.Tensor] | None
) -> dict[int, torch.Tensor]:
    """Validate a clamp (partition index -> (n_samples, partition size) 0/1 values).

    Returns the clamp with float32 CPU tensors; raises :class:`BoltzmannError` naming the problem.
    """
    if clamp is None:
        return {}
    if not isinstance(clamp, Mapping):
        raise BoltzmannError(
            f"clamp must map partition indices to tensors, got {type(clamp).__name__}"
        )
    sizes = bm.topology.partition_sizes
    out: dict[int, torch.Tensor] = {}
    for p, values in clamp.items():
        if not isinstance(p, int) or not 0 <= p < len(sizes):
            raise BoltzmannError(f"clamp key {p!r} is not a partition index (0..{len(sizes) - 1})")
        values = torch.as_tensor(values)
        if values.shape != (n_samples, sizes[p]):
            raise BoltzmannError(
                f"clamp of partition {p} must have shape ({n_samples}, {sizes[p]}), "
                f"got {tuple(values.shape)}"
            )
        values = values.detach().to("cpu", torch.float32)
        if not torch.all((values == 0) | (values == 1)):
            raise BoltzmannError(f"clamp of partition {p} must hold only 0 and 1 values")
        out[p] = values
    if len(out) == len(sizes):
        raise BoltzmannError("clamp fixes every partition; leave at least one free to sample")
    return out


def check_n_samples(n_samples: int) -> int:
    """``n_samples`` as an int; raises :class:`BoltzmannError` unless it is a positive integer."""
    try:
        value = operator.index(n_samples)
    except TypeError:
        value = 0
    if isinstance(n_samples, bool) or value < 1:
        raise BoltzmannError(f"n_samples must be a positive integer, got {n_samples!r}")
    return value
