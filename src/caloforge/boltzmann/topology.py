"""Which latent units of a Boltzmann machine may couple: dense RBMs and real annealer graphs.

A :class:`Topology` splits ``n`` units into partitions (stored contiguously: partition ``p``
holds units ``offsets[p] .. offsets[p+1]-1``) and says which pairs may couple. No coupler lies
inside a partition, so every partition can be Gibbs-sampled as one block.

Annealer topologies come from real D-Wave hardware graphs (``dwave.graphs``):

* ``"chimera"``: Chimera C16 (D-Wave 2000Q), 2 partitions from the graph's proper 2-colouring;
* ``"pegasus"``: Pegasus P16 (Advantage), 4 partitions from the proper 4-colouring;
* ``"zephyr"``: Zephyr Z(12, 4) (Advantage2), 4 partitions from the proper 4-colouring.

From the chosen graph we pick ``n_per_partition`` qubits of every colour by growing one compact
region (see :func:`select_balanced_region`), so the units keep most of the hardware couplers
between them, and the unit -> qubit map (:attr:`Topology.qubits`) places the machine on the QPU
without any minor-embedding. ``"rbm-dense"`` is the plain bipartite RBM with every visible-hidden
pair coupled and no qubits; ``"dense-4partite"`` is its four-partition analogue, every pair of
units in different partitions coupled (3/4 of all pairs, against 1/2 for the RBM), no qubits:
the densest graph that block Gibbs still samples in four blocks.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import networkx as nx
import numpy as np
import torch

from caloforge.boltzmann.errors import BoltzmannError

TOPOLOGY_KINDS = ("rbm-dense", "dense-4partite", "chimera", "pegasus", "zephyr")

#: The hardware graph each annealer kind uses (the constructor call, for the record).
HARDWARE_GRAPHS = {
    "chimera": "dwave.graphs.chimera_graph(16)",
    "pegasus": "dwave.graphs.pegasus_graph(16)",
    "zephyr": "dwave.graphs.zephyr_graph(12, 4)",
}


@dataclass(frozen=True, eq=False)
class Topology:
    """Partitions and allowed couplers of a Boltzmann machine.

    Attributes:
        kind: one of :data:`TOPOLOGY_KINDS` (or ``"custom"``).
        partition_sizes: number of units in each partition; units are numbered partition by
            partition, so partition ``p`` is the slice ``offsets[p]:offsets[p+1]``.
        edges: (E, 2) int64 array of coupled unit pairs ``(i, j)`` with ``i < j``, sorted.
        qubits: annealer qubit label (linear index in the hardware graph) of every unit, or
            ``None`` for a topology that is not a hardware graph (``"rbm-dense"``,
            ``"dense-4partite"``).
        graph: description of the hardware graph the qubits belong to ("" if none).
    """

    kind: str
    partition_sizes: tuple[int, ...]
    edges: np.ndarray
    qubits: tuple[int, ...] | None = None
    graph: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sizes = tuple(int(s) for s in self.partition_sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise BoltzmannError(
                f"a topology needs at least two non-empty partitions, got sizes {sizes}"
            )
        object.__setattr__(self, "partition_sizes", sizes)
        n = sum(sizes)
        edges = np.asarray(self.edges, dtype=np.int64).reshape(-1, 2)
        edges = np.sort(edges, axis=1)
        if edges.size and (edges.min() < 0 or edges.max() >= n):
            raise BoltzmannError(f"topology edges must join units 0..{n - 1}")
        if edges.size and np.any(edges[:, 0] == edges[:, 1]):
            raise BoltzmannError("topology edges must join two different units, found a self-loop")
        edges = np.unique(edges, axis=0)
        part = np.repeat(np.arange(len(sizes)), sizes)
        if edges.size and np.any(part[edges[:, 0]] == part[edges[:, 1]]):
            i, j = edges[part[edges[:, 0]] == part[edges[:, 1]]][0]
            raise BoltzmannError(
                f"units {i} and {j} lie in the same partition but are coupled; "
                "a partition must hold no coupler"
            )
        object.__setattr__(self, "edges", edges)
        if self.qubits is not None:
            qubits = tuple(int(q) for q in self.qubits)
            if len(qubits) != n or len(set(qubits)) != n:
                raise BoltzmannError(f"a topology of {n} units needs {n} distinct qubit labels")
            object.__setattr__(self, "qubits", qubits)

    # ------------------------------------------------------------------ shape
    @property
    def n_units(self) -> int:
        return sum(self.partition_sizes)

    @property
    def n_partitions(self) -> int:
        return len(self.partition_sizes)

    @property
    def n_couplers(self) -> int:
        return int(self.edges.shape[0])

    @property
    def offsets(self) -> tuple[int, ...]:
        """Start of each partition and the total: partition ``p`` is ``offsets[p]:offsets[p+1]``."""
        return tuple(int(x) for x in np.concatenate([[0], np.cumsum(self.partition_sizes)]))

    @property
    def partitions(self) -> list[torch.Tensor]:
        """Unit indices of each partition, as LongTensors."""
        o = self.offsets
        return [torch.arange(o[p], o[p + 1]) for p in range(self.n_partitions)]

    @property
    def partition_of(self) -> torch.Tensor:
        """(n,) LongTensor: partition index of every unit."""
        return torch.repeat_interleave(
            torch.arange(self.n_partitions), torch.tensor(self.partition_sizes)
        )

    @property
    def mask(self) -> torch.Tensor:
        """(n, n) symmetric bool tensor, True where two units may couple."""
        n = self.n_units
        mask = torch.zeros(n, n, dtype=torch.bool)
        if self.n_couplers:
            e = torch.from_numpy(self.edges)
            mask[e[:, 0], e[:, 1]] = True
            mask[e[:, 1], e[:, 0]] = True
        return mask

    def degree(self) -> np.ndarray:
        """(n,) number of couplers of every unit."""
        return np.bincount(self.edges.ravel(), minlength=self.n_units)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON description (for checkpoints; no pickle)."""
        return {
            "kind": self.kind,
            "partition_sizes": list(self.partition_sizes),
            "edges": self.edges.tolist(),
            "qubits": None if self.qubits is None else list(self.qubits),
            "graph": self.graph,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Topology:
        """Rebuild a topology written by :meth:`to_dict`."""
        missing = {"kind", "partition_sizes", "edges"} - set(data)
        if missing:
            raise BoltzmannError(
                f"topology description lacks the field(s) {', '.join(sorted(missing))}"
            )
        return cls(
            kind=str(data["kind"]),
            partition_sizes=tuple(data["partition_sizes"]),
            edges=np.asarray(data["edges"], dtype=np.int64).reshape(-1, 2),
            qubits=None if data.get("qubits") is None else tuple(data["qubits"]),
            graph=str(data.get("graph", "")),
            meta=dict(data.get("meta", {})),
        )

    def __repr__(self) -> str:
        return (
            f"Topology(kind={self.kind!r}, partitions={list(self.partition_sizes)}, "
            f"couplers={self.n_couplers}{', ' + self.graph if self.graph else ''})"
        )


def make_topology(kind: str, n_per_partition: int, *, seed: int = 0) -> Topology:
    """Build a topology of ``kind`` with ``n_per_partition`` units in each partition.

    Args:
        kind: ``"rbm-dense"`` or ``"chimera"`` (2 partitions), ``"dense-4partite"``,
            ``"pegasus"`` or ``"zephyr"`` (4 partitions).
        n_per_partition: units per partition (Chimera C16 allows up to 1024, Pegasus P16 up to
            1410, Zephyr Z(12,4) up to 1200).
        seed: picks where on the hardware graph the region of qubits is grown (seed 0 starts
            at the most central qubit); deterministic.
    """
    if kind not in TOPOLOGY_KINDS:
        raise BoltzmannError(
            f"unknown topology kind {kind!r}; choose one of {', '.join(TOPOLOGY_KINDS)}"
        )
    if not isinstance(n_per_partition, (int, np.integer)) or n_per_partition < 1:
        raise BoltzmannError(f"n_per_partition must be a positive integer, got {n_per_partition!r}")
    n_per_partition = int(n_per_partition)
    if kind == "rbm-dense":
        n = n_per_partition
        i, j = np.meshgrid(np.arange(n), np.arange(n, 2 * n), indexing="ij")
        edges = np.stack([i.ravel(), j.ravel()], axis=1)
        return Topology(kind, (n, n), edges, None, "", {"n_per_partition": n, "seed": seed})
    if kind == "dense-4partite":
        n = n_per_partition
        part = np.repeat(np.arange(4), n)
        lo, hi = np.triu_indices(4 * n, k=1)
        keep = part[lo] != part[hi]
        edges = np.stack([lo[keep], hi[keep]], axis=1).astype(np.int64)
        return Topology(kind, (n,) * 4, edges, None, "", {"n_per_partition": n, "seed": seed})

    graph, colour_of, n_colours = _hardware_graph(kind)
    chosen = select_balanced_region(graph, colour_of, n_colours, n_per_partition, seed=seed)
    # Units are numbered partition by partition, qubits ascending inside a partition.
    # The hardware graphs carry linear integer labels.
    qubits = [int(q) for part in chosen for q in sorted(cast(list[int], part))]
    unit_of = {q: u for u, q in enumerate(qubits)}
    edges = np.array(
        [
            (unit_of[a], unit_of[b])
            for a, b in graph.subgraph(qubits).edges()
            if a in unit_of and b in unit_of
        ],
        dtype=np.int64,
    ).reshape(-1, 2)
    meta = {"n_per_partition": n_per_partition, "seed": seed}
    return Topology(
        kind, (n_per_partition,) * n_colours, edges, tuple(qubits), HARDWARE_GRAPHS[kind], meta
    )


@functools.lru_cache(maxsize=3)
def _hardware_graph(kind: str) -> tuple[nx.Graph, Callable[[Hashable], int], int]:
    """The hardware graph of ``kind``, a proper colouring of it and its number of colours.

    Cached: callers must not modify the returned graph.
    """
    import dwave.graphs as dg

    if kind == "chimera":
        g = dg.chimera_graph(16)
        index = nx.get_node_attributes(g, "chimera_index")
        return g, lambda q: dg.chimera_two_color(index[q]), 2
    if kind == "pegasus":
        g = dg.pegasus_graph(16)
        index = nx.get_node_attributes(g, "pegasus_index")
        return g, lambda q: dg.pegasus_four_color(index[q]), 4
    g = dg.zephyr_graph(12, 4)
    index = nx.get_node_attributes(g, "zephyr_index")
    return g, lambda q: dg.zephyr_four_color(index[q]), 4


def select_balanced_region(
    graph: nx.Graph,
    colour_of: Callable[[Hashable], int],
    n_colours: int,
    n_per_colour: int,
    *,
    seed: int = 0,
) -> list[list[Hashable]]:
    """Choose ``n_per_colour`` nodes of every colour forming one compact, well-coupled region.

    Greedy growth: start at one node (seed 0: the node of maximal degree farthest, in hops, from
    any node of lower degree, i.e. deep inside the graph; other seeds: a random node of maximal
    degree), then
    repeatedly add the frontier node with the MOST couplers to the nodes already chosen, skipping
    nodes whose colour class is full. Maximising the couplers into the region at every step keeps
    the region round and the induced subgraph dense (most hardware couplers between the chosen
    qubits survive); ties are broken by a seeded random priority. The colouring must be proper,
    so no edge joins two nodes of one returned list.

    Returns:
        ``n_colours`` lists of nodes, list ``c`` holding the chosen nodes of colour ``c``.
    """
    colour = {q: int(colour_of(q)) for q in graph.nodes}
    bad = [(a, b) for a, b in graph.edges if colour[a] == colour[b]]
    if bad:
        raise BoltzmannError(f"the colouring is not proper: nodes {bad[0]} share a colour")
    capacity = np.bincount(list(colour.values()), minlength=n_colours)
    if n_per_colour > capacity.min():
        raise BoltzmannError(
            f"n_per_partition={n_per_colour} is too large for this hardware graph; "
            f"at most {int(capacity.min())} units per partition fit"
        )
    rng = np.random.default_rng(seed)
    nodes = sorted(graph.nodes)
    priority = dict(zip(nodes, rng.permutation(len(nodes)), strict=True))
    start = _start_node(graph, nodes, rng, seed)

    chosen: list[list[Hashable]] = [[] for _ in range(n_colours)]
    in_region: set[Hashable] = set()
    score: dict[Hashable, int] = {}
    heap: list[tuple[int, int, Hashable]] = [(0, priority[start], start)]
    todo = n_colours * n_per_colour
    while todo:
        if not heap:  # region boxed in: restart from the best remaining node of an open colour
            open_nodes = [
                q for q in nodes if q not in in_region and len(chosen[colour[q]]) < n_per_colour
            ]
            q = min(open_nodes, key=lambda q: (-score.get(q, 0), priority[q]))
            heap.append((-score.get(q, 0), priority[q], q))
        neg, _, q = heapq.heappop(heap)
        if q in in_region or -neg != score.get(q, 0) or len(chosen[colour[q]]) >= n_per_colour:
            continue  # stale entry, or a node of a full colour
        in_region.add(q)
        chosen[colour[q]].append(q)
        todo -= 1
        for r in graph.neighbors(q):
            if r not in in_region and len(chosen[colour[r]]) < n_per_colour:
                score[r] = score.get(r, 0) + 1
                heapq.heappush(heap, (-score[r], priority[r], r))
    return chosen


def _start_node(graph: nx.Graph, nodes: Sequence[Hashable], rng: np.random.Generator, seed: int):
    max_degree = max(d for _, d in graph.degree)
    hubs = [q for q in nodes if graph.degree[q] == max_degree]
    if seed != 0:
        return hubs[int(rng.integers(len(hubs)))]
    # The hub farthest (in hops) from the nearest boundary node, i.e. the most central one.
    boundary = [q for q in nodes if graph.degree[q] < max_degree]
    depth = nx.multi_source_dijkstra_path_length(graph, boundary) if boundary else {}
    position = {q: i for i, q in enumerate(nodes)}
    return max(hubs, key=lambda q: (depth.get(q, 0), -position[q]))
