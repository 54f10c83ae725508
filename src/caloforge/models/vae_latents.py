"""The two latent spaces of the VAE family: a Boltzmann-machine prior (``qvae``) and a
standard-normal prior (``vae``).

Everything that differs between the quantum-assisted VAE and its Gaussian baseline lives here,
behind one interface, :class:`LatentSpace`: the sizes of the encoder's levels, how training
draws relaxed posterior samples and estimates the KL term, the hard posterior sample, how a
trained model draws prior samples at generation, and how exported artifacts describe the prior.
:class:`caloforge.models.qvae.QVAE` holds one (``model.latents``) and never asks which.

Both take the encoder as a callable ``encode(draw) -> (stats, samples)``, one entry per level:
``draw`` maps a level's statistics (B, stats_per_unit * size) to its samples (B, size), and
level k sees the samples of levels < k (:class:`~caloforge.models.qvae.HierarchicalEncoder`).

Example:
    >>> import torch
    >>> space = GaussianLatents(units_per_level=3)
    >>> space.level_sizes, space.stats_per_unit, space.n_latent
    ([3, 3], 2, 6)
    >>> space.prior_sample(torch.ones(5, 1), seed=0, gen=torch.Generator()).shape
    torch.Size([5, 6])
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from caloforge.errors import ConfigError
from caloforge.models.base import LatentInput

if TYPE_CHECKING:
    from caloforge.boltzmann import BoltzmannMachine

#: the encoder as the latent space sees it: ``encode(draw) -> (per-level stats, samples)``
Encode = Callable[
    [Callable[[torch.Tensor], torch.Tensor]], tuple[list[torch.Tensor], list[torch.Tensor]]
]

LOG_E_MIN, LOG_E_MAX = math.log(1e2), math.log(1e7)  # MeV: the range of conditioning codes


def thermometer_code(e_inc: torch.Tensor, n_bits: int) -> torch.Tensor:
    """Binary thermometer code of log E_inc: unit i is 1 when the level exceeds i.

    (N, 1) MeV -> (N, n_bits) float32, over 100 MeV .. 10 TeV."""
    level = (torch.log(e_inc) - LOG_E_MIN) / (LOG_E_MAX - LOG_E_MIN) * n_bits
    return (level > torch.arange(n_bits, dtype=e_inc.dtype, device=e_inc.device)).float()


class LatentSpace(ABC):
    """The prior side of a VAE: what the encoder emits, the KL term and the prior's draws.

    Attributes:
        level_sizes: latent units of each encoder level (one head each).
        stats_per_unit: numbers per unit the encoder emits: 1 (Bernoulli logits) or 2
            (Gaussian mean and log-variance).
        n_latent: width of z, the decoder's latent input.
    """

    level_sizes: list[int]
    stats_per_unit: int
    n_latent: int
    #: the Boltzmann machine of the prior (None: not a Boltzmann prior)
    machine: BoltzmannMachine | None = None
    #: the chosen generation sampler's specification (None: none chosen or none to choose)
    sampler_spec: dict[str, Any] | None = None

    #: whether :meth:`set_sampler` chooses how the prior is sampled
    takes_sampler: bool = False

    def modules(self) -> dict[str, nn.Module]:
        """Trainable modules of the prior, stored with the model's weights (name -> module)."""
        return {}

    @abstractmethod
    def relaxed_posterior(
        self, encode: Encode, e_inc: torch.Tensor, tau: float, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training draw: differentiable z (B, n_latent) and the KL(q || p) estimate (scalar,
        nats per shower) for a batch with incident energies ``e_inc`` (B, 1) MeV at relaxation
        temperature ``tau``; every random number comes from ``gen``."""

    @abstractmethod
    def hard_posterior(
        self, encode: Encode, e_inc: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        """The posterior's evaluation-time latent (B, n_latent): hard samples or the mean."""

    @abstractmethod
    def prior_sample(self, e_inc: torch.Tensor, *, seed: int, gen: torch.Generator) -> torch.Tensor:
        """Generation: (N, n_latent) prior draws (CPU) for incident energies (N, 1) MeV."""

    @abstractmethod
    def latent_input(self) -> LatentInput:
        """The ``prior_z`` entry of the model's :meth:`~caloforge.models.base.Generator.latent_spec`."""

    @abstractmethod
    def description(self) -> dict[str, Any]:
        """What exported artifacts record about the prior (JSON-able)."""

    def set_sampler(self, name: str, **options: Any) -> None:
        """Choose the prior sampler used at generation."""
        raise ConfigError("the Gaussian-prior VAE has no Boltzmann prior to choose a sampler for")

    def start_kl_chains(self, n_sweeps: int, *, persistent: bool, keep: bool = False) -> None:
        """Set up the sampler of the KL's model term (``keep``: leave one already set up)."""

    def chain_tensors(self) -> dict[str, torch.Tensor]:
        """Sampler state to store with the optimizer, so that a resumed run continues exactly."""
        return {}

    def load_chain_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`chain_tensors` stored."""

    def boltzmann(self, model_name: str) -> BoltzmannLatents:
        """This space as a :class:`BoltzmannLatents`, or one sentence saying it is not one."""
        raise ConfigError(
            f"model {model_name!r} has a Gaussian prior; prior diagnostics need the Boltzmann "
            "prior of the QVAE"
        )


class GaussianLatents(LatentSpace):
    """Two levels of ``units_per_level`` Gaussian latents with a standard-normal prior."""

    stats_per_unit = 2

    def __init__(self, units_per_level: int) -> None:
        self.level_sizes = [int(units_per_level)] * 2
        self.n_latent = sum(self.level_sizes)

    def relaxed_posterior(
        self, encode: Encode, e_inc: torch.Tensor, tau: float, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mus: list[torch.Tensor] = []
        logvars: list[torch.Tensor] = []

        def draw(stats: torch.Tensor) -> torch.Tensor:  # reparametrised Gaussian sample
            mu, logvar = stats.chunk(2, dim=1)
            mus.append(mu)
            logvars.append(logvar)
            eps = torch.randn(mu.shape, generator=gen).to(mu.device)
            return mu + eps * torch.exp(0.5 * logvar)

        _, samples = encode(draw)
        mu, logvar = torch.cat(mus, 1), torch.cat(logvars, 1)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1).mean()
        return torch.cat(samples, dim=1), kl

    def hard_posterior(
        self, encode: Encode, e_inc: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        _, means = encode(lambda stats: stats.chunk(2, dim=1)[0])
        return torch.cat(means, dim=1)

    def prior_sample(self, e_inc: torch.Tensor, *, seed: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randn(len(e_inc), self.n_latent, generator=gen)

    def latent_input(self) -> LatentInput:
        return LatentInput("prior_z", (self.n_latent,), "normal(0, 1)")

    def description(self) -> dict[str, Any]:
        return {"kind": "gaussian", "dim": self.n_latent}


class BoltzmannLatents(LatentSpace):
    """Binary latents whose prior is a Boltzmann machine on an annealer topology.

    Args:
        topology: ``rbm-dense``, ``chimera`` (bipartite), ``dense-4partite``, ``pegasus``,
            ``zephyr`` (four-partite).
        units_per_partition: latent units per partition.
        topology_seed: where on the hardware graph the region of qubits is grown.
        condition: condition the prior on log E_inc through a clamped thermometer code.
        conditioning: how. ``"clamp"``: partition 0 of the hardware graph holds the code, coupled
            to the free units through the graph's own couplers (four-partite only; a bipartite
            prior is then unconditioned). ``"bias"``: a separate code partition of
            ``energy_code_units`` units coupled to every unit, i.e. every unit's bias is a
            learned linear function of the code, as an annealer's flux biases would apply it
            (:mod:`caloforge.boltzmann.energy_bias`); works for every topology and leaves
            all partitions of the graph free.
        energy_code_units: code size for ``"bias"``.

    The encoder has one level per free partition, in partition order; z holds every unit in
    the machine's order, the clamped code included.
    """

    stats_per_unit = 1
    takes_sampler = True

    def __init__(
        self,
        topology: str,
        units_per_partition: int,
        *,
        topology_seed: int,
        condition: bool,
        conditioning: str = "clamp",
        energy_code_units: int = 16,
    ) -> None:
        from caloforge.boltzmann import BoltzmannMachine, make_topology
        from caloforge.boltzmann.energy_bias import with_energy_code

        topo = make_topology(topology, int(units_per_partition), seed=int(topology_seed))
        if condition and conditioning == "bias":
            topo = with_energy_code(topo, int(energy_code_units))
        self.machine: BoltzmannMachine = BoltzmannMachine(topo)
        sizes = [len(p) for p in self.machine.partitions]
        #: the partition clamped to the energy code, or None (unconditioned prior)
        self.cond_partition: int | None = 0 if (condition and len(sizes) > 2) else None
        #: the partitions the encoder's levels emit, in level order
        self.level_partitions = [i for i in range(len(sizes)) if i != self.cond_partition]
        self.level_sizes = [sizes[i] for i in self.level_partitions]
        self.n_latent = self.machine.n_units
        self.sampler: Any = None
        self._kl_sampler: Any = None

    def modules(self) -> dict[str, nn.Module]:
        return {"prior": self.machine}

    def boltzmann(self, model_name: str) -> BoltzmannLatents:
        return self

    @property
    def free_units(self) -> np.ndarray:
        """Indices (in unit order) of the units the encoder emits, i.e. not clamped."""
        return np.concatenate(
            [np.asarray(self.machine.partitions[i]) for i in self.level_partitions]
        )

    def clamp(self, e_inc: torch.Tensor) -> dict[int, torch.Tensor] | None:
        """The sampler's clamp for incident energies (N, 1) MeV: {partition: (N, size) code}."""
        if self.cond_partition is None:
            return None
        size = len(self.machine.partitions[self.cond_partition])
        return {self.cond_partition: thermometer_code(e_inc, size)}

    def assemble(self, samples: list[torch.Tensor], e_inc: torch.Tensor) -> torch.Tensor:
        """Put each level's samples (B, size) and the clamped code into the machine's unit
        order: (B, n_units)."""
        parts: list[torch.Tensor | None] = [None] * len(self.machine.partitions)
        for idx, s in zip(self.level_partitions, samples, strict=True):
            parts[idx] = s
        clamp = self.clamp(e_inc)
        if clamp and self.cond_partition is not None:
            parts[self.cond_partition] = clamp[self.cond_partition]
        # partitions are contiguous blocks in unit order (Topology.offsets)
        return torch.cat([p for p in parts if p is not None], dim=1)

    def relaxed_posterior(
        self, encode: Encode, e_inc: torch.Tensor, tau: float, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Binary-concrete samples at temperature ``tau``; the KL is -H(q) + <E(z)>_q -
        <E(z)>_model, the last term from the persistent chains (:meth:`start_kl_chains`), so
        that its gradient is that of KL(q || p) including log Z."""

        def draw(logits: torch.Tensor) -> torch.Tensor:
            u = torch.rand(logits.shape, generator=gen).clamp(1e-6, 1 - 1e-6).to(logits.device)
            return torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / tau)

        logits, samples = encode(draw)
        z = self.assemble(samples, e_inc)
        all_logits = torch.cat(logits, dim=1)
        q = torch.sigmoid(all_logits)
        entropy = (F.softplus(all_logits) - all_logits * q).sum(1).mean()
        if self._kl_sampler is None:
            raise RuntimeError("the KL term's chains are set up by start_kl_chains()")
        with torch.no_grad():
            z_model = self._kl_sampler.sample(
                self.machine, len(e_inc), seed=int(torch.randint(0, 2**31 - 1, (1,), generator=gen)),
                clamp=self.clamp(e_inc),
            ).float()  # fmt: skip
        kl = -entropy + self.machine.energy(z).mean() - self.machine.energy(z_model).mean()
        return z, kl

    def hard_posterior(
        self, encode: Encode, e_inc: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        def draw(logits: torch.Tensor) -> torch.Tensor:  # drawn on the CPU generator
            p = torch.sigmoid(logits)
            return torch.bernoulli(p.cpu(), generator=gen).to(p.device)

        _, samples = encode(draw)
        return self.assemble(samples, e_inc)

    def prior_sample(self, e_inc: torch.Tensor, *, seed: int, gen: torch.Generator) -> torch.Tensor:
        """Draws of the chosen sampler (:meth:`set_sampler`) with the energy partition clamped,
        returned on the CPU; ``gen`` is not used (the sampler is seeded by ``seed``; Gibbs
        draws on the machine's device)."""
        if self.sampler is None:
            raise RuntimeError("choose the prior sampler with set_sampler() first")
        with torch.no_grad():
            z = self.sampler.sample(
                self.machine, len(e_inc), seed=int(seed), clamp=self.clamp(e_inc)
            )
        return z.float().cpu()

    def set_sampler(self, name: str, **options: Any) -> None:
        """gibbs | sa | sqa | qpu with their options (:func:`caloforge.boltzmann.get_sampler`)."""
        from caloforge.boltzmann import get_sampler

        self.sampler = get_sampler(name, **options)
        self.sampler_spec = {"name": name, **json.loads(json.dumps(options, default=str))}

    def start_kl_chains(self, n_sweeps: int, *, persistent: bool, keep: bool = False) -> None:
        if keep and self._kl_sampler is not None:
            return
        from caloforge.boltzmann import BlockGibbsSampler

        self._kl_sampler = BlockGibbsSampler(n_sweeps=n_sweeps, persistent=persistent)

    def chain_tensors(self) -> dict[str, torch.Tensor]:
        """The persistent Gibbs chains of training, (n_chains, n_units)."""
        chains = None if self._kl_sampler is None else self._kl_sampler.chains
        return {} if chains is None else {"gibbs_chains": chains}

    def load_chain_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if self._kl_sampler is not None and "gibbs_chains" in tensors:
            # the sampler keeps its chains as (n_units, n_chains); there is no public setter
            chains = tensors["gibbs_chains"].T.contiguous().float()
            self._kl_sampler._chains = chains.to(self.machine.bias.device)

    def latent_input(self) -> LatentInput:
        name = self.sampler_spec["name"] if self.sampler_spec else "gibbs"
        return LatentInput("prior_z", (self.machine.n_units,), "binary", name)

    def description(self) -> dict[str, Any]:
        return {
            "kind": "boltzmann",
            "topology": self.machine.topology.kind,
            "units": self.machine.n_units,
            "conditioned_partition": self.cond_partition,
            "sampler": self.sampler_spec,
        }
