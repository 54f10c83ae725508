"""Samplers of a Boltzmann machine behind one interface, and :func:`get_sampler` to pick one.

Every sampler answers ``sample(bm, n_samples, *, seed, clamp=None) -> (n_samples, n)`` float32
0/1 tensor:

* :class:`~caloforge.boltzmann.BlockGibbsSampler` ("gibbs"): block Gibbs in torch;
* :class:`SimulatedAnnealingSampler` ("sa"): dwave-samplers' Metropolis simulated annealing;
* :class:`SimulatedQuantumAnnealingSampler` ("sqa"): dwave-samplers' path-integral Monte Carlo of
  a transverse-field anneal, stopped at a freeze-out point;
* :class:`QPUSampler` ("qpu"): a D-Wave QPU through dwave-system (needs credentials), directly
  on the qubits of a hardware topology or minor-embedded for a dense one;
* :class:`ExactSampler` ("exact"): exact draws by enumeration, for machines of <= 20 units;
* :class:`ProductOfMarginalsSampler` ("marginals"): independent units with the machine's own
  (conditional) marginals, the product-of-marginals ablation of a prior.

The annealing samplers (:class:`AnnealingSampler`) sample the Ising model of the machine
programmed as E / ``beta_eff`` (see :func:`~caloforge.boltzmann.to_ising`); ``beta_eff`` is the
effective inverse temperature the annealer samples at, found by
:func:`~caloforge.boltzmann.calibrate_beta`. A clamp fixes spins in the Ising model
(``fix_variables``) and the rest is sampled; rows with equal clamp values share one call.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal, Protocol

import dimod
import numpy as np
import torch

from caloforge.boltzmann.errors import BoltzmannError
from caloforge.boltzmann.gibbs import BlockGibbsSampler
from caloforge.boltzmann.ising import to_ising
from caloforge.boltzmann.machine import BoltzmannMachine, check_clamp, check_n_samples
from caloforge.discovery import Registry

SAMPLER_NAMES = ("gibbs", "sa", "sqa", "qpu", "exact", "marginals")  # the built-in ones


class Sampler(Protocol):
    """What a prior sampler answers: ``sample(bm, n, seed=, clamp=)`` -> (n, n_units) 0/1
    float tensor on the machine's device, the same draws for the same seed. ``clamp`` maps a
    partition index to its (n, size) fixed 0/1 values (conditional sampling)."""

    name: str

    def sample(
        self,
        bm: BoltzmannMachine,
        n_samples: int,
        *,
        seed: int,
        clamp: Mapping[int, torch.Tensor] | None = None,
    ) -> torch.Tensor: ...


#: the prior samplers: built in (registered at the end of this module) or declared by a module
#: of :mod:`caloforge.boltzmann` with ``@register_sampler("name")``, found without importing it
SAMPLERS: Registry[type] = Registry(
    "sampler", "caloforge.boltzmann", "register_sampler", BoltzmannError
)


def register_sampler(name: str):
    """Class decorator: make a :class:`Sampler` class available as ``get_sampler(name)`` (and
    ``--sampler name`` in the CLI); its constructor's keyword arguments are the options."""

    def wrap(cls: type) -> type:
        return SAMPLERS.register(name, cls)

    return wrap


def sampler_names() -> list[str]:
    """The names :func:`get_sampler` accepts: the built-in ones, the ones declared by a module
    of :mod:`caloforge.boltzmann` and every registered one."""
    return SAMPLERS.names()


def _unit(v: Hashable) -> int:
    """The unit index of a BQM variable: caloforge's BQMs are labelled 0 .. n - 1."""
    if not isinstance(v, int | np.integer):
        raise BoltzmannError(f"BQM variable {v!r} is not an integer unit index")
    return int(v)


class AnnealingSampler(ABC):
    """A sampler that draws from the machine's Ising model scaled by ``1 / beta_eff``.

    Subclasses implement :meth:`sample_bqm`; this class converts the machine, applies clamps and
    maps spins back to units.
    """

    name = "annealing"

    def __init__(self, beta_eff: float = 1.0) -> None:
        if not (beta_eff > 0 and math.isfinite(beta_eff)):
            raise BoltzmannError(f"beta_eff must be a positive finite number, got {beta_eff!r}")
        self.beta_eff = float(beta_eff)

    def with_beta_eff(self, beta_eff: float) -> AnnealingSampler:
        """A copy of this sampler programming E / ``beta_eff``."""
        other = copy.copy(self)
        AnnealingSampler.__init__(other, beta_eff)
        return other

    @abstractmethod
    def sample_bqm(self, bqm: dimod.BinaryQuadraticModel, num_reads: int, seed: int) -> np.ndarray:
        """(num_reads, len(bqm.variables)) spins in {-1, +1}, columns in ``bqm.variables`` order."""

    def sample(
        self,
        bm: BoltzmannMachine,
        n_samples: int,
        *,
        seed: int,
        clamp: Mapping[int, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """(n_samples, n) float32 0/1 samples of ``bm``'s Ising model programmed as E / beta_eff."""
        n_samples = check_n_samples(n_samples)
        clamp = check_clamp(bm, n_samples, clamp)
        bqm = to_ising(bm, self.beta_eff)
        n = bm.n_units
        spins = np.empty((n_samples, n), dtype=np.int8)
        seeds = np.random.SeedSequence(int(seed))
        if not clamp:
            spins[:] = self._ordered(bqm, self.sample_bqm(bqm, n_samples, _seed(seeds)), n)
            return _units(spins, bm)

        fixed_units = np.concatenate([bm.partitions[p].numpy() for p in sorted(clamp)])
        fixed_spins = (
            2 * torch.cat([clamp[p] for p in sorted(clamp)], dim=1).numpy().astype(np.int8) - 1
        )
        free_units = np.setdiff1d(np.arange(n), fixed_units)
        rows, group = np.unique(fixed_spins, axis=0, return_inverse=True)
        group = group.ravel()
        for g, row in enumerate(rows):
            members = np.nonzero(group == g)[0]
            sub = bqm.copy()
            sub.fix_variables(dict(zip(fixed_units.tolist(), row.tolist(), strict=True)))
            drawn = self.sample_bqm(sub, len(members), _seed(seeds))
            order = [int(v) for v in sub.variables]
            block = np.empty((len(members), n), dtype=np.int8)
            block[:, order] = drawn
            spins[np.ix_(members, free_units)] = block[:, free_units]
            spins[np.ix_(members, fixed_units)] = row
        return _units(spins, bm)

    @staticmethod
    def _ordered(bqm: dimod.BinaryQuadraticModel, drawn: np.ndarray, n: int) -> np.ndarray:
        out = np.empty((drawn.shape[0], n), dtype=np.int8)
        out[:, [_unit(v) for v in bqm.variables]] = drawn
        return out


def _seed(seeds: np.random.SeedSequence) -> int:
    return int(seeds.spawn(1)[0].generate_state(1)[0] % (2**31 - 1))


def _units(spins: np.ndarray, bm: BoltzmannMachine) -> torch.Tensor:
    return torch.from_numpy((spins > 0).astype(np.float32)).to(bm.bias.device)


def _record(sampleset: dimod.SampleSet, variables: Sequence[Any]) -> np.ndarray:
    """Spins of a SampleSet with columns in ``variables`` order, one row per read."""
    index = {v: i for i, v in enumerate(sampleset.variables)}
    cols = [index[v] for v in variables]
    record = sampleset.record
    spins = record.sample[:, cols]
    counts = record.num_occurrences
    if np.any(counts != 1):  # aggregated reads (QPU answer_mode='histogram')
        spins = np.repeat(spins, counts, axis=0)
    return spins.astype(np.int8)


class SimulatedAnnealingSampler(AnnealingSampler):
    """Metropolis simulated annealing (``dwave.samplers.SimulatedAnnealingSampler``).

    Each read anneals ``num_sweeps`` sweeps with inverse temperature going from ``beta_range[0]``
    to ``beta_range[1]`` (in units of the programmed Hamiltonian E / beta_eff). With the default
    ``beta_range=(1.0, 1.0)`` the schedule is flat: every read is a Metropolis chain at inverse
    temperature 1 on E / beta_eff, i.e. an MCMC sampler of exp(-E / beta_eff), exact in the limit
    of many sweeps (and, with beta_eff = 1, a sampler of the machine). A falling temperature
    (e.g. ``(0.1, 1.0)``) anneals into low-energy states like an annealer; its reads are
    NOT exactly Boltzmann distributed (they freeze out), which :func:`calibrate_beta` absorbs.

    Args:
        beta_eff: effective inverse temperature the machine is programmed for.
        num_sweeps: sweeps per read.
        beta_range: (initial, final) inverse temperature of the schedule.
        beta_schedule_type: "geometric" or "linear".
    """

    name = "sa"

    def __init__(
        self,
        beta_eff: float = 1.0,
        *,
        num_sweeps: int = 100,
        beta_range: tuple[float, float] = (1.0, 1.0),
        beta_schedule_type: Literal["geometric", "linear"] = "geometric",
    ) -> None:
        super().__init__(beta_eff)
        if num_sweeps < 1:
            raise BoltzmannError(f"num_sweeps must be at least 1, got {num_sweeps}")
        if len(beta_range) != 2 or min(beta_range) <= 0:
            raise BoltzmannError(f"beta_range must be two positive numbers, got {beta_range!r}")
        if beta_schedule_type not in ("geometric", "linear"):
            raise BoltzmannError(
                f"beta_schedule_type must be 'geometric' or 'linear', got {beta_schedule_type!r}"
            )
        self.num_sweeps = int(num_sweeps)
        self.beta_range = (float(beta_range[0]), float(beta_range[1]))
        self.beta_schedule_type = beta_schedule_type

    def sample_bqm(self, bqm: dimod.BinaryQuadraticModel, num_reads: int, seed: int) -> np.ndarray:
        from dwave.samplers import SimulatedAnnealingSampler as Neal

        if bqm.num_variables == 0:
            return np.empty((num_reads, 0), dtype=np.int8)
        sampleset = Neal().sample(
            bqm,
            num_reads=num_reads,
            num_sweeps=self.num_sweeps,
            beta_range=self.beta_range,
            beta_schedule_type=self.beta_schedule_type,
            seed=seed,
        )
        return _record(sampleset, list(bqm.variables))


class SimulatedQuantumAnnealingSampler(AnnealingSampler):
    """Path-integral simulated quantum annealing (``dwave.samplers.PathIntegralAnnealingSampler``).

    Emulates a transverse-field anneal H(s) = -A(s)/2 sum_i sigma^x_i + B(s)/2 H_p, with the
    problem Hamiltonian H_p = E / beta_eff, a linear schedule A(s) = gamma (1 - s), B(s) = s, at
    a fixed physical inverse temperature ``beta_phys`` (units of H_p): the path-integral Monte
    Carlo runs ``num_sweeps`` sweeps from s = 0 to ``s_freeze`` and returns the projected classical
    states there. ``s_freeze`` < 1 emulates an annealer's freeze-out: the dynamics stop while a
    transverse field remains, so the reads follow a quantum Boltzmann distribution, not exp(-E);
    :func:`calibrate_beta` finds the ``beta_eff`` at which their mean energy matches the machine.
    ``hold_sweeps`` extra sweeps at s = 1 (no transverse field) turn the end of the run into a
    classical Metropolis sampler at ``beta_phys``.

    Args:
        beta_eff: effective inverse temperature the machine is programmed for.
        num_sweeps: sweeps of the anneal (0 <= s <= s_freeze).
        beta_phys: physical inverse temperature of the emulated annealer, in units of E/beta_eff.
        gamma: transverse field at s = 0, in the same units.
        s_freeze: freeze-out point of the anneal, in (0, 1].
        hold_sweeps: sweeps at s = 1 after the anneal (only with s_freeze = 1).
    """

    name = "sqa"

    def __init__(
        self,
        beta_eff: float = 1.0,
        *,
        num_sweeps: int = 100,
        beta_phys: float = 1.0,
        gamma: float = 4.0,
        s_freeze: float = 1.0,
        hold_sweeps: int = 0,
    ) -> None:
        super().__init__(beta_eff)
        if num_sweeps < 2:
            raise BoltzmannError(f"num_sweeps must be at least 2, got {num_sweeps}")
        if not 0 < s_freeze <= 1:
            raise BoltzmannError(f"s_freeze must lie in (0, 1], got {s_freeze}")
        if hold_sweeps and s_freeze != 1:
            raise BoltzmannError("hold_sweeps needs s_freeze = 1 (a hold after a finished anneal)")
        if beta_phys <= 0 or gamma < 0:
            raise BoltzmannError(
                f"beta_phys must be positive and gamma non-negative, got {beta_phys}, {gamma}"
            )
        self.num_sweeps = int(num_sweeps)
        self.beta_phys = float(beta_phys)
        self.gamma = float(gamma)
        self.s_freeze = float(s_freeze)
        self.hold_sweeps = int(hold_sweeps)

    def schedule(self) -> tuple[np.ndarray, np.ndarray]:
        """(Hp_field, Hd_field) per sweep, already multiplied by ``beta_phys``."""
        s = np.linspace(0.0, self.s_freeze, self.num_sweeps)
        s = np.concatenate([s, np.ones(self.hold_sweeps)])
        return self.beta_phys * s, self.beta_phys * self.gamma * (1.0 - s)

    def sample_bqm(self, bqm: dimod.BinaryQuadraticModel, num_reads: int, seed: int) -> np.ndarray:
        from dwave.samplers import PathIntegralAnnealingSampler

        if bqm.num_variables == 0:
            return np.empty((num_reads, 0), dtype=np.int8)
        hp, hd = self.schedule()
        sampleset = PathIntegralAnnealingSampler().sample(
            bqm,
            num_reads=num_reads,
            beta_schedule_type="custom",
            Hp_field=hp,
            Hd_field=hd,
            seed=seed,
        )
        return _record(sampleset, list(bqm.variables))


class QPUSampler(AnnealingSampler):
    """A D-Wave quantum processing unit through ``dwave.system.DWaveSampler``.

    Two ways onto the hardware, chosen by the machine's topology:

    * **direct** (``chimera``, ``pegasus``, ``zephyr``): the topology IS (a region of) the
      hardware graph, so unit i is programmed on qubit ``topology.qubits[i]``, no embedding;
    * **minor-embedded** (``rbm-dense``, ``dense-4partite``: no qubit layout): each unit becomes
      a chain of qubits (a clique embedding from minorminer's ``busclique``, else
      ``find_embedding``; found once per machine and QPU and kept in :attr:`embedding`). A
      unit's field is split evenly over its chain, a coupling over the couplers between two
      chains, and the qubits of a chain are tied by a ferromagnetic coupling of strength
      ``chain_strength`` (``dwave.embedding.embed_bqm``). A read whose chains all agree has
      exactly the energy of its logical state plus a constant, so keeping only those reads
      (``chain_break_method=discard``) samples the same distribution as the logical machine
      would at the annealer's temperature; reads with a broken chain are discarded and more are
      requested until ``n_samples`` are kept. :attr:`unbroken_fraction` reports the share kept
      in the last call.

    The problem is sent with ``auto_scale=False`` so the annealer sees exactly E / beta_eff; h
    and J, chains included, must then lie inside the QPU's ``h_range`` and ``j_range`` (an error
    names the worst coefficient otherwise; a larger beta_eff shrinks them, at the price of a
    hotter effective distribution).

    Args:
        beta_eff: effective inverse temperature (calibrate with :func:`calibrate_beta`; an
            embedded machine has its own, since chains change the annealer's dynamics).
        qpu: a dimod structured sampler (``DWaveSampler()``, or
            ``dwave.system.testing.MockDWaveSampler`` in tests); built on first use from the
            user's dwave-cloud-client configuration when None.
        solver: solver name or features for ``DWaveSampler(solver=...)`` when ``qpu`` is None.
        annealing_time: microseconds per anneal.
        max_reads_per_call: split larger requests into several QPU calls.
        chain_strength: ferromagnetic coupling inside a chain (Ising units); None takes the
            strongest the QPU's ``j_range`` allows (1 on an Advantage system).
        embedding_seed: seed of the embedding search.
        max_calls: give up (with an error saying why) after this many QPU calls for one request
            when too few reads keep their chains unbroken.

    The QPU is not seeded: ``seed`` only orders the calls; QPU samples are not reproducible.
    """

    name = "qpu"

    def __init__(
        self,
        beta_eff: float = 1.0,
        *,
        qpu: Any = None,
        solver: str | dict | None = None,
        annealing_time: float = 20.0,
        max_reads_per_call: int = 1000,
        chain_strength: float | None = None,
        embedding_seed: int = 0,
        max_calls: int = 100,
    ) -> None:
        super().__init__(beta_eff)
        if chain_strength is not None and not (
            chain_strength > 0 and math.isfinite(chain_strength)
        ):
            raise BoltzmannError(
                f"chain_strength must be a positive finite number, got {chain_strength!r}"
            )
        if int(max_calls) < 1:
            raise BoltzmannError(f"max_calls must be at least 1, got {max_calls!r}")
        self._qpu = qpu
        self.solver = solver
        self.annealing_time = float(annealing_time)
        self.max_reads_per_call = int(max_reads_per_call)
        self.chain_strength = None if chain_strength is None else float(chain_strength)
        self.embedding_seed = int(embedding_seed)
        self.max_calls = int(max_calls)
        self._qubits: tuple[int, ...] | None = None
        #: unit -> chain of qubits, for a machine without a qubit layout (None otherwise)
        self.embedding: dict[int, tuple[int, ...]] | None = None
        self._embedded: tuple[int, tuple[tuple[int, int], ...]] | None = None  # (units, edges)
        self._target: Any = None  # the QPU's working graph (networkx), found with the embedding
        #: share of the reads of the last embedded request whose chains were all unbroken
        self.unbroken_fraction: float | None = None

    @property
    def qpu(self) -> Any:
        """The structured dimod sampler (created from the user's D-Wave configuration)."""
        if self._qpu is None:
            try:
                from dwave.system import DWaveSampler
            except ImportError:
                raise BoltzmannError(
                    "the QPU sampler needs dwave-system; install caloforge[qpu]"
                ) from None
            try:
                self._qpu = DWaveSampler(solver=self.solver)
            except Exception as exc:  # cloud-client raises many types for missing credentials
                raise BoltzmannError(
                    f"cannot connect to a D-Wave QPU ({type(exc).__name__}: {exc}); configure "
                    "credentials with `dwave config create` or choose another sampler"
                ) from None
        return self._qpu

    def sample(
        self,
        bm: BoltzmannMachine,
        n_samples: int,
        *,
        seed: int,
        clamp: Mapping[int, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        if bm.topology.qubits is None:
            self._qubits = None
            self._embed(bm)
        else:
            self.embedding = None
            self._qubits = self._check_hardware(bm)
        return super().sample(bm, n_samples, seed=seed, clamp=clamp)

    def _embed(self, bm: BoltzmannMachine) -> None:
        """Find (once per machine graph) a minor-embedding of the machine into the QPU."""
        edges = tuple((int(i), int(j)) for i, j in bm.topology.edges)  # i < j, sorted
        if self.embedding is not None and self._embedded == (bm.n_units, edges):
            return
        from minorminer import busclique, find_embedding  # installed with dwave-system

        target = self.qpu.to_networkx_graph()
        units = list(range(bm.n_units))
        found: dict = {}
        if target.graph.get("family") in ("chimera", "pegasus", "zephyr"):
            found = busclique.find_clique_embedding(
                units, target, seed=self.embedding_seed, use_cache=False
            )
        if not found:
            import networkx as nx

            source = nx.Graph()
            source.add_nodes_from(units)
            source.add_edges_from(edges)
            found = find_embedding(source, target, random_seed=self.embedding_seed)
        if not found or set(found) != set(units):
            raise BoltzmannError(
                f"no minor-embedding of the {bm.n_units}-unit {bm.topology.kind!r} machine into "
                "this QPU's working graph was found; use fewer units or a chimera, pegasus or "
                "zephyr topology"
            )
        self.embedding = {int(u): tuple(int(q) for q in found[u]) for u in units}
        self._embedded = (bm.n_units, edges)
        self._target = target

    def _check_hardware(self, bm: BoltzmannMachine) -> tuple[int, ...]:
        """The topology's qubits, once they and their couplers are checked on this QPU."""
        qpu = self.qpu
        nodes = set(qpu.nodelist)
        q = bm.topology.qubits
        if q is None:
            raise BoltzmannError(f"topology {bm.topology.kind!r} has no qubit layout")
        missing = [u for u in q if u not in nodes]
        if missing:
            raise BoltzmannError(
                f"{len(missing)} qubit(s) of the topology (e.g. {missing[0]}) are not working on "
                "this QPU; rebuild the topology with another seed"
            )
        edges = {tuple(sorted(e)) for e in qpu.edgelist}
        absent = [
            (q[i], q[j]) for i, j in bm.topology.edges if tuple(sorted((q[i], q[j]))) not in edges
        ]
        if absent:
            raise BoltzmannError(
                f"{len(absent)} coupler(s) of the topology (e.g. {absent[0]}) are missing on this "
                "QPU; rebuild the topology with another seed"
            )
        return q

    def sample_bqm(self, bqm: dimod.BinaryQuadraticModel, num_reads: int, seed: int) -> np.ndarray:
        if bqm.num_variables == 0:
            return np.empty((num_reads, 0), dtype=np.int8)
        if self.embedding is not None and self._qubits is None:
            return self._sample_embedded(bqm, num_reads)
        qubits = self._qubits
        if qubits is None:
            raise BoltzmannError("the QPU sampler maps a BQM only inside sample(bm, ...)")
        hardware = bqm.relabel_variables(
            {v: qubits[_unit(v)] for v in bqm.variables}, inplace=False
        )
        self._check_ranges(hardware)
        _, per_call, params = self._read_params()
        chunks = []
        remaining = num_reads
        while remaining > 0:
            reads = min(per_call, remaining)
            sampleset = self.qpu.sample(hardware, num_reads=reads, **params)
            chunks.append(_record(sampleset, [qubits[_unit(v)] for v in bqm.variables])[:reads])
            remaining -= reads
        return np.concatenate(chunks)[:num_reads]

    def _read_params(self) -> tuple[int, int, dict[str, Any]]:
        """(min reads, max reads per call, sampling parameters the QPU accepts)."""
        props = getattr(self.qpu, "properties", {})
        low, high = props.get("num_reads_range", (1, self.max_reads_per_call))
        per_call = max(int(low), min(self.max_reads_per_call, int(high)))
        params = {"auto_scale": False, "annealing_time": self.annealing_time}
        params = {k: v for k, v in params.items() if k in getattr(self.qpu, "parameters", params)}
        return int(low), per_call, params

    def _sample_embedded(self, bqm: dimod.BinaryQuadraticModel, num_reads: int) -> np.ndarray:
        """Reads of the embedded problem, unembedded; reads with a broken chain are dropped."""
        from dwave.embedding import chain_breaks, embed_bqm, unembed_sampleset

        assert self.embedding is not None
        embedding = {v: self.embedding[_unit(v)] for v in bqm.variables}
        strength = self.chain_strength
        if strength is None:
            j_lo = getattr(self.qpu, "properties", {}).get("j_range", (-1.0, 1.0))[0]
            strength = -float(j_lo) if math.isfinite(j_lo) and j_lo < 0 else 1.0
        hardware = embed_bqm(bqm, embedding, self._target, chain_strength=strength)
        self._check_ranges(hardware)
        low, per_call, params = self._read_params()
        variables = list(bqm.variables)
        kept: list[np.ndarray] = []
        n_kept = n_read = 0
        last_share = self.unbroken_fraction or 1.0  # the previous request's, as a first guess
        for _ in range(self.max_calls):
            # ask for what is still missing, scaled up by the share of reads kept so far
            share = max(n_kept, 1) / n_read if n_read else last_share
            want = math.ceil(1.1 * (num_reads - n_kept) / share)
            reads = max(low, min(per_call, want))
            sampleset = self.qpu.sample(hardware, num_reads=reads, **params)
            unembedded = unembed_sampleset(
                sampleset, embedding, bqm, chain_break_method=chain_breaks.discard
            )
            n_read += int(sampleset.record.num_occurrences.sum())
            if len(unembedded):
                block = _record(unembedded, variables)
                kept.append(block)
                n_kept += len(block)
            self.unbroken_fraction = n_kept / n_read
            if n_kept >= num_reads:
                return np.concatenate(kept)[:num_reads]
        raise BoltzmannError(
            f"only {n_kept} of {num_reads} reads kept every chain unbroken after "
            f"{self.max_calls} QPU calls ({self.unbroken_fraction:.2%} of {n_read} reads); raise "
            "chain_strength or beta_eff"
        )

    def _check_ranges(self, bqm: dimod.BinaryQuadraticModel) -> None:
        props = getattr(self.qpu, "properties", {})
        h_lo, h_hi = props.get("h_range", (-math.inf, math.inf))
        j_lo, j_hi = props.get("j_range", (-math.inf, math.inf))
        h = np.array(list(bqm.linear.values()))
        j = np.array(list(bqm.quadratic.values()))
        if h.size and (h.min() < h_lo or h.max() > h_hi):
            raise BoltzmannError(
                f"Ising field {h[np.argmax(np.abs(h))]:.3g} is outside the QPU's h_range "
                f"[{h_lo}, {h_hi}]; raise beta_eff or regularise the biases"
            )
        if j.size and (j.min() < j_lo or j.max() > j_hi):
            raise BoltzmannError(
                f"Ising coupling {j[np.argmax(np.abs(j))]:.3g} is outside the QPU's j_range "
                f"[{j_lo}, {j_hi}]; raise beta_eff or regularise the couplings"
            )


class ExactSampler:
    """Exact i.i.d. draws from exp(-beta E) / Z by enumerating all states (n <= 20)."""

    name = "exact"

    def __init__(self, beta: float = 1.0) -> None:
        self.beta = float(beta)

    def sample(
        self,
        bm: BoltzmannMachine,
        n_samples: int,
        *,
        seed: int,
        clamp: Mapping[int, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        from caloforge.boltzmann.partition import all_states, exact_energies

        n_samples = check_n_samples(n_samples)
        clamp = check_clamp(bm, n_samples, clamp)
        gen = torch.Generator().manual_seed(int(seed))
        energies = exact_energies(bm)
        states = all_states(bm.n_units)
        if not clamp:
            probs = torch.softmax(-self.beta * energies, 0)
            idx = torch.multinomial(probs, n_samples, replacement=True, generator=gen)
            return states[idx].float().to(bm.bias.device)
        out = torch.empty(n_samples, bm.n_units)
        fixed = torch.cat([bm.partitions[p] for p in sorted(clamp)])
        values = torch.cat([clamp[p] for p in sorted(clamp)], dim=1).double()
        rows, inverse = torch.unique(values, dim=0, return_inverse=True)
        for g, row in enumerate(rows):
            members = torch.nonzero(inverse == g).ravel()
            allowed = (states[:, fixed] == row).all(1)
            logits = torch.where(allowed, -self.beta * energies, -torch.inf)
            probs = torch.softmax(logits, 0)
            idx = torch.multinomial(probs, len(members), replacement=True, generator=gen)
            out[members] = states[idx].float()
        return out.to(bm.bias.device)


class ProductOfMarginalsSampler:
    """Independent units with the machine's (conditional) marginals: the ablation of a prior.

    Draws z with p(z) = prod_i p(z_i | clamp row), the product of the prior's own marginals given
    each sample's clamp (e.g. its energy code), so every coupling-induced correlation is gone
    while each unit's rate is kept. Marginals are not computed: every sample runs
    ``chains_per_sample`` block Gibbs chains (``n_sweeps`` sweeps, its own clamp) and unit i
    takes its value from chain k_i drawn uniformly and independently per unit. Given equilibrated
    chains each unit has exactly its marginal; two units share a chain with probability
    1 / chains_per_sample, so 1 / chains_per_sample of every pair correlation remains
    (3 % at the default 32). Cost: ``chains_per_sample`` times a Gibbs draw.

    Args:
        n_sweeps: Gibbs sweeps of the chains (enough to equilibrate, see ``diagnose_prior``).
        chains_per_sample: K chains per sample.
        beta: inverse temperature.
    """

    name = "marginals"

    def __init__(self, n_sweeps: int = 50, *, chains_per_sample: int = 32, beta: float = 1.0):
        if not isinstance(chains_per_sample, int) or chains_per_sample < 2:
            raise BoltzmannError(
                f"chains_per_sample must be an integer >= 2, got {chains_per_sample!r}"
            )
        self.gibbs = BlockGibbsSampler(n_sweeps, beta=beta)
        self.chains_per_sample = chains_per_sample

    def sample(
        self,
        bm: BoltzmannMachine,
        n_samples: int,
        *,
        seed: int,
        clamp: Mapping[int, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """(n_samples, n) float32 0/1 draws of the product of the (conditional) marginals."""
        n_samples = check_n_samples(n_samples)
        clamp = check_clamp(bm, n_samples, clamp)
        k = self.chains_per_sample
        wide = {p: v.repeat_interleave(k, dim=0) for p, v in clamp.items()}
        chains = self.gibbs.sample(bm, n_samples * k, seed=seed, clamp=wide or None)
        chains = chains.reshape(n_samples, k, bm.n_units)
        gen = torch.Generator().manual_seed(int(seed) + 1)
        pick = torch.randint(0, k, (n_samples, 1, bm.n_units), generator=gen)
        return torch.gather(chains, 1, pick.to(chains.device)).squeeze(1)


def get_sampler(name: str, **kwargs: Any):
    """The sampler called ``name`` (see :func:`sampler_names`) built with ``kwargs``."""
    cls = SAMPLERS.get(name)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise BoltzmannError(f"bad option for sampler {name!r}: {exc}") from None


for _name, _cls in (
    ("gibbs", BlockGibbsSampler),
    ("sa", SimulatedAnnealingSampler),
    ("sqa", SimulatedQuantumAnnealingSampler),
    ("qpu", QPUSampler),
    ("exact", ExactSampler),
    ("marginals", ProductOfMarginalsSampler),
):
    register_sampler(_name)(_cls)
