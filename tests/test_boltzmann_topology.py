"""Topologies: partitions hold no coupler, qubits and couplers are real hardware ones."""

from __future__ import annotations

import dwave.graphs as dg
import numpy as np
import pytest
import torch

from caloforge.boltzmann import BoltzmannError, Topology, make_topology
from caloforge.errors import CaloforgeError

HARDWARE = {
    "chimera": lambda: dg.chimera_graph(16),
    "pegasus": lambda: dg.pegasus_graph(16),
    "zephyr": lambda: dg.zephyr_graph(12, 4),
}
MAX_DEGREE = {"chimera": 6, "pegasus": 15, "zephyr": 20}


@pytest.mark.parametrize(
    ("kind", "n_parts"),
    [("rbm-dense", 2), ("dense-4partite", 4), ("chimera", 2), ("pegasus", 4), ("zephyr", 4)],
)
def test_partitions_are_independent_sets_of_the_requested_size(kind, n_parts):
    topo = make_topology(kind, 32)
    assert topo.partition_sizes == (32,) * n_parts
    assert topo.n_units == 32 * n_parts
    assert [len(p) for p in topo.partitions] == [32] * n_parts
    assert torch.equal(torch.cat(topo.partitions), torch.arange(topo.n_units))
    mask = topo.mask
    assert mask.dtype == torch.bool and torch.equal(mask, mask.T)
    assert not mask.diagonal().any()
    for p in topo.partitions:
        assert not mask[p][:, p].any(), "a coupler lies inside a partition"
    assert int(mask.sum()) == 2 * topo.n_couplers


def test_dense_rbm_couples_every_visible_hidden_pair():
    topo = make_topology("rbm-dense", 5)
    assert topo.qubits is None
    assert topo.n_couplers == 25
    assert topo.mask[:5, 5:].all()


def test_dense_four_partite_couples_every_pair_across_partitions():
    topo = make_topology("dense-4partite", 5)
    assert topo.qubits is None and topo.partition_sizes == (5, 5, 5, 5)
    assert topo.n_couplers == 6 * 25  # 4 choose 2 partition pairs, 5 x 5 units each
    part = topo.partition_of
    across = part[:, None] != part[None, :]
    assert torch.equal(topo.mask, across)
    assert Topology.from_dict(topo.to_dict()).n_couplers == topo.n_couplers


@pytest.mark.parametrize("kind", ["chimera", "pegasus", "zephyr"])
def test_annealer_topologies_use_real_qubits_and_keep_most_couplers(kind):
    topo = make_topology(kind, 64)
    graph = HARDWARE[kind]()
    assert all(q in graph for q in topo.qubits)
    q = topo.qubits
    for i, j in topo.edges:
        assert graph.has_edge(q[i], q[j])
    # every hardware coupler between the chosen qubits is in the topology
    assert topo.n_couplers == graph.subgraph(q).number_of_edges()
    # a compact region keeps most of the hardware couplers: mean degree >= 75% of the maximum
    # for the 4-colour graphs and >= 80% for Chimera (whose degree is at most 6)
    ratio = topo.degree().mean() / MAX_DEGREE[kind]
    assert ratio > (0.8 if kind == "chimera" else 0.75), ratio


def test_topologies_are_deterministic_given_the_seed():
    a, b = make_topology("pegasus", 16, seed=0), make_topology("pegasus", 16, seed=0)
    c = make_topology("pegasus", 16, seed=3)
    assert a.qubits == b.qubits and np.array_equal(a.edges, b.edges)
    assert a.qubits != c.qubits


def test_round_trip_through_a_plain_dict():
    topo = make_topology("zephyr", 8)
    again = Topology.from_dict(topo.to_dict())
    assert again.qubits == topo.qubits and again.partition_sizes == topo.partition_sizes
    assert np.array_equal(again.edges, topo.edges)


@pytest.mark.parametrize(
    ("kind", "n", "match"),
    [
        ("king", 4, "unknown topology kind 'king'"),
        ("pegasus", 0, "n_per_partition must be a positive integer"),
        ("chimera", 5000, "at most 1024 units per partition"),
    ],
)
def test_bad_topology_requests_raise_one_clear_sentence(kind, n, match):
    with pytest.raises(CaloforgeError, match=match):
        make_topology(kind, n)


def test_a_coupler_inside_a_partition_is_rejected():
    with pytest.raises(BoltzmannError, match="same partition but are coupled"):
        Topology("custom", (2, 2), np.array([[0, 1]]))
