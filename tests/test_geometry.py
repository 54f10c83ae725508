"""Geometries: built-ins against the official binning XML, XML round trips, index maps."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caloforge.errors import GeometryError
from caloforge.geometry import (
    CartesianLayer,
    CylindricalLayer,
    Geometry,
    builtin_names,
    geometry_to_xml,
    get_geometry,
    grid_geometry,
    match_geometry,
    read_xml,
    resolve_geometry,
    write_xml,
)
from conftest import OFFICIAL_XML

# --------------------------------------------------------------------------- helpers


def official_voxels(xml_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parse a CaloChallenge binning XML independently of caloforge.

    Returns per voxel, in the official flat order (radial fastest, then angular, layers in
    increasing id): layer id, lower and upper radial edge (mm), angular bin index.
    """
    root = ET.parse(xml_path).getroot()
    layer_ids, r_lo, r_hi, alpha = [], [], [], []
    for layer in sorted(root.iter("Layer"), key=lambda el: int(el.attrib["id"])):
        edges = [float(x) for x in layer.attrib["r_edges"].split(",")]
        if len(edges) < 2:  # a layer without voxels
            continue
        n_alpha = int(layer.attrib["n_bin_alpha"])
        for a in range(n_alpha):
            for r in range(len(edges) - 1):
                layer_ids.append(int(layer.attrib["id"]))
                r_lo.append(edges[r])
                r_hi.append(edges[r + 1])
                alpha.append(a)
    return np.array(layer_ids), np.array(r_lo), np.array(r_hi), np.array(alpha)


def geometry_voxels(g: Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The same per-voxel quantities, computed from a caloforge geometry's index maps."""
    pos, a, b = g.unravel(np.arange(g.n_voxels))
    layer_ids = np.asarray(g.layer_ids)[pos]
    r_lo = np.array([g.layers[p].r_edges[r] for p, r in zip(pos, b, strict=True)])
    r_hi = np.array([g.layers[p].r_edges[r + 1] for p, r in zip(pos, b, strict=True)])
    return layer_ids, r_lo, r_hi, a


def xml_layer_records(xml_text_or_path: str | Path) -> list[tuple[int, tuple[float, ...], int]]:
    """(id, r_edges as floats, n_bin_alpha) of every <Layer>, empty layers included."""
    if isinstance(xml_text_or_path, Path):
        root = ET.parse(xml_text_or_path).getroot()
    else:
        root = ET.fromstring(xml_text_or_path)
    return [
        (
            int(el.attrib["id"]),
            tuple(float(x) for x in el.attrib["r_edges"].split(",")),
            int(el.attrib.get("n_bin_alpha", "1")),
        )
        for el in root.iter("Layer")
    ]


# --------------------------------------------------------------------------- built-ins


@pytest.mark.parametrize("name", sorted(OFFICIAL_XML))
def test_builtin_equals_official_xml_voxel_for_voxel(name, official_copy):
    xml_path = official_copy(OFFICIAL_XML[name])
    ref_layer, ref_lo, ref_hi, ref_alpha = official_voxels(xml_path)
    g = get_geometry(name)

    assert g.n_voxels == len(ref_layer)
    layer, lo, hi, alpha = geometry_voxels(g)
    np.testing.assert_array_equal(layer, ref_layer)
    np.testing.assert_array_equal(lo, ref_lo)
    np.testing.assert_array_equal(hi, ref_hi)
    np.testing.assert_array_equal(alpha, ref_alpha)

    # voxel_polar holds the bin centres of exactly those bins
    r_c, alpha_c = g.voxel_polar
    np.testing.assert_allclose(r_c, 0.5 * (ref_lo + ref_hi), rtol=0, atol=1e-12)
    n_alpha = np.array([g.layers[p].n_alpha for p in g.unravel(np.arange(g.n_voxels))[0]])
    np.testing.assert_allclose(alpha_c, -np.pi + (ref_alpha + 0.5) * 2 * np.pi / n_alpha)


@pytest.mark.parametrize(
    ("name", "n_voxels", "n_layers"),
    [
        ("ds1-photons", 368, 5),
        ("ds1-pions", 533, 7),
        ("ds2", 6480, 45),
        ("ds3", 40500, 45),
        ("calogan", 504, 3),
        ("grid:25x25x25", 15625, 25),
        ("grid:48x25x25", 30000, 48),
    ],
)
def test_builtin_voxel_counts(name, n_voxels, n_layers):
    g = get_geometry(name)
    assert g.n_voxels == n_voxels
    assert g.n_layers == n_layers
    assert g.layer_offsets[-1] == n_voxels
    assert sum(s.stop - s.start for s in g.layer_slices) == n_voxels


def test_builtin_names_and_kinds():
    assert builtin_names() == ["ds1-photons", "ds1-pions", "ds2", "ds3", "calogan", "grid:LxXxY"]
    assert get_geometry("ds2").kind == "cylindrical"
    assert get_geometry("calogan").kind == "cartesian"
    assert get_geometry("ds2").image_shape == (45, 16, 9)
    assert get_geometry("ds3").image_shape == (45, 50, 18)
    assert get_geometry("grid:30x30x30:5").layers[0].dx == 5.0
    assert get_geometry("ds1-pions").layer_ids == (0, 1, 2, 3, 12, 13, 14)
    assert get_geometry("ds1-photons").particle == "photon"


def test_calogan_layer_layout():
    g = get_geometry("calogan")
    assert [lay.shape for lay in g.layers] == [(3, 96), (12, 12), (12, 6)]
    assert g.layer_sizes == (288, 144, 72)
    assert not g.is_regular
    with pytest.raises(GeometryError, match="layers of different shapes"):
        _ = g.image_shape


def test_ds2_flat_order_is_layer_angle_radius():
    """``showers.reshape(N, 45, 16, 9)`` gives (layer, angle, radius), as in the official data."""
    g = get_geometry("ds2")
    flat = np.arange(g.n_voxels)
    cube = flat.reshape(45, 16, 9)
    layer, a, r = np.meshgrid(np.arange(45), np.arange(16), np.arange(9), indexing="ij")
    np.testing.assert_array_equal(g.ravel(layer, a, r), cube)


def test_match_and_resolve(official_copy):
    assert match_geometry(6480) == ["ds2"]
    assert match_geometry(504) == ["calogan"]
    assert match_geometry(12345) == []
    path = official_copy(OFFICIAL_XML["ds1-pions"])
    from_path = resolve_geometry(str(path))
    assert from_path.layers == get_geometry("ds1-pions").layers
    assert resolve_geometry(get_geometry("ds2")) is get_geometry("ds2")


# --------------------------------------------------------------------------- XML round trips


@pytest.mark.parametrize("name", sorted(OFFICIAL_XML))
def test_builtin_xml_round_trip(name, tmp_path, official_copy):
    g = get_geometry(name)
    out = write_xml(g, tmp_path / f"{name}.xml")
    back = read_xml(out, name=name)
    assert back == g
    assert back.meta == g.meta  # pid, etaMin/etaMax, total layer count incl. empty ones
    # the written file lists the same layers (empty ones too) as the official one
    official = xml_layer_records(official_copy(OFFICIAL_XML[name]))
    assert xml_layer_records(out) == official


@st.composite
def radial_edges(draw) -> tuple[float, ...]:
    """Increasing radial edges in mm with arbitrary (not round) values, from 0 or an inner radius."""
    widths = draw(st.lists(st.floats(min_value=1e-3, max_value=500.0), min_size=1, max_size=8))
    inner = draw(st.sampled_from([0.0, 0.0, 0.5, 80.123456789]))
    return (inner, *(float(x) for x in inner + np.cumsum(widths)))


@st.composite
def cylindrical_geometries(draw) -> Geometry:
    """Cylindrical geometries with gaps in the layer ids (empty layers in the XML)."""
    ids = sorted(draw(st.sets(st.integers(0, 30), min_size=1, max_size=6)))
    layers = tuple(
        CylindricalLayer(layer_id, draw(radial_edges()), draw(st.integers(1, 60)))
        for layer_id in ids
    )
    particle = draw(st.sampled_from(["electron", "photon", "pion"]))
    return Geometry("random", layers, particle, {"pid": "11"})


@settings(max_examples=40, deadline=None)
@given(g=cylindrical_geometries())
def test_random_cylindrical_xml_round_trip(g, tmp_path_factory):
    path = tmp_path_factory.mktemp("xml") / "random.xml"
    back = read_xml(write_xml(g, path), name=g.name)
    assert back == g
    assert back.n_voxels == g.n_voxels
    assert back.meta["n_layers_total"] == max(g.layer_ids) + 1


def test_cartesian_geometries_refuse_xml(tmp_path):
    with pytest.raises(GeometryError, match=r"'calogan' is Cartesian.*cylindrical"):
        geometry_to_xml(get_geometry("calogan"))
    target = tmp_path / "grid.xml"
    with pytest.raises(GeometryError, match=r"'grid:25x25x25' is Cartesian"):
        write_xml(get_geometry("grid:25x25x25"), target)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("ds4", r"unknown geometry 'ds4'; built-ins are ds1-photons, .*grid:25x25x25"),
        ("grid:2x3", r"unknown geometry 'grid:2x3'"),
        ("grid:0x5x5", r"a grid needs at least one layer and cell, got 0x5x5"),
        ("", r"unknown geometry ''"),
    ],
)
def test_unknown_geometry_names(name, pattern):
    with pytest.raises(GeometryError, match=pattern) as info:
        get_geometry(name)
    assert "\n" not in str(info.value)


MALFORMED_XML = {
    "not_xml": ("<Bins><Bin name='e'><Layer id='0'", r"not a well-formed binning XML"),
    "no_bin": ("<Bins></Bins>", r"expected exactly one <Bin> element, found 0"),
    "two_bins": (
        "<Bins><Bin name='a'><Layer id='0' r_edges='0,1'/></Bin><Bin name='b'/></Bins>",
        r"expected exactly one <Bin> element, found 2",
    ),
    "no_layers": ("<Bins><Bin name='e'/></Bins>", r"the <Bin> element has no <Layer> elements"),
    "no_edges": (
        "<Bins><Bin name='e'><Layer id='0' n_bin_alpha='3'/></Bin></Bins>",
        r"<Layer> needs integer id, comma-separated r_edges and n_bin_alpha",
    ),
    "bad_number": (
        "<Bins><Bin name='e'><Layer id='0' r_edges='0,x,2' n_bin_alpha='3'/></Bin></Bins>",
        r"<Layer> needs integer id",
    ),
    "decreasing": (
        "<Bins><Bin name='e'><Layer id='0' r_edges='0,5,3' n_bin_alpha='3'/></Bin></Bins>",
        r"layer 0: radial edges must be at least two increasing values",
    ),
    "zero_alpha": (
        "<Bins><Bin name='e'><Layer id='0' r_edges='0,5' n_bin_alpha='0'/></Bin></Bins>",
        r"layer 0: n_alpha must be >= 1, got 0",
    ),
    "only_empty_layers": (
        "<Bins><Bin name='e'><Layer id='0' r_edges='0' n_bin_alpha='1'/></Bin></Bins>",
        r"has no layer with voxels",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_XML))
def test_malformed_xml_gives_one_clear_sentence(case, tmp_path):
    text, pattern = MALFORMED_XML[case]
    path = tmp_path / f"{case}.xml"
    path.write_text(text)
    with pytest.raises(GeometryError, match=pattern) as info:
        read_xml(path)
    message = str(info.value)
    assert "\n" not in message
    if case not in ("decreasing", "zero_alpha", "only_empty_layers"):
        assert str(path) in message


def test_missing_xml_file(tmp_path):
    path = tmp_path / "absent.xml"
    with pytest.raises(GeometryError, match=r"absent\.xml: no such binning XML file"):
        resolve_geometry(str(path))


def test_invalid_geometry_construction():
    with pytest.raises(GeometryError, match="has no layer with voxels"):
        Geometry("empty", ())
    with pytest.raises(GeometryError, match="mixes cylindrical and Cartesian layers"):
        Geometry("mixed", (CylindricalLayer(0, (0.0, 1.0), 2), CartesianLayer(1, 2, 2)))
    with pytest.raises(GeometryError, match=r"layer ids must increase, got \[1, 0\]"):
        Geometry("order", (CartesianLayer(1, 2, 2), CartesianLayer(0, 2, 2)))
    with pytest.raises(GeometryError, match="nx, ny >= 1 and cell sizes > 0 mm"):
        CartesianLayer(0, 0, 3)


# --------------------------------------------------------------------------- index maps


GEOMETRY_NAMES = ["ds1-photons", "ds1-pions", "ds2", "ds3", "calogan", "grid:7x3x5"]


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(GEOMETRY_NAMES), data=st.data())
def test_ravel_unravel_are_inverse(name, data):
    g = get_geometry(name)
    voxels = np.array(
        data.draw(st.lists(st.integers(0, g.n_voxels - 1), min_size=1, max_size=20)), dtype=int
    )
    layer, a, b = g.unravel(voxels)
    np.testing.assert_array_equal(g.ravel(layer, a, b), voxels)
    # and the other way round, from a valid (layer, a, b)
    p = data.draw(st.integers(0, g.n_layers - 1))
    na, nb = g.layers[p].shape
    ai, bi = data.draw(st.integers(0, na - 1)), data.draw(st.integers(0, nb - 1))
    v = g.ravel(p, ai, bi)
    assert g.layer_slices[p].start <= v < g.layer_slices[p].stop
    assert tuple(int(x) for x in g.unravel(v)) == (p, ai, bi)


def test_index_maps_reject_out_of_range():
    g = get_geometry("ds2")
    with pytest.raises(GeometryError, match=r"voxel index out of range 0..6479 for ds2"):
        g.unravel(6480)
    with pytest.raises(GeometryError, match=r"voxel index out of range"):
        g.unravel(np.array([3, -1]))
    with pytest.raises(GeometryError, match=r"layer position out of range 0..44"):
        g.ravel(45, 0, 0)
    with pytest.raises(GeometryError, match=r"bin index out of range for geometry ds2"):
        g.ravel(0, 16, 0)


def test_voxel_centres_hand_checked():
    # ds2 voxel 38: layer 0, angular bin 4 of 16, radial bin 2 (9.3 - 13.95 mm);
    # centre r = 11.625 mm, alpha = -pi + 4.5 * 2pi/16 = -7pi/16, x = r cos(7pi/16) = 2.267925
    ds2 = get_geometry("ds2")
    assert tuple(int(x) for x in ds2.unravel(38)) == (0, 4, 2)
    r, alpha = 11.625, -7 * math.pi / 16
    np.testing.assert_allclose(ds2.voxel_polar[0][38], r)
    np.testing.assert_allclose(ds2.voxel_polar[1][38], alpha)
    np.testing.assert_allclose(ds2.voxel_centres[38], [2.267925, -11.401629], atol=1e-6)
    # ds1-photons layer 0 has one angular bin: voxel 3 is the radial bin 30 - 50 mm
    ds1 = get_geometry("ds1-photons")
    np.testing.assert_allclose(ds1.voxel_polar[0][3], 40.0)
    # calogan layer_1 (12 x 12 cells of 40 mm), x bin 5 and y bin 7: centre (-20, 60) mm
    calogan = get_geometry("calogan")
    v = 288 + 5 * 12 + 7
    assert tuple(int(x) for x in calogan.unravel(v)) == (1, 5, 7)
    np.testing.assert_allclose(calogan.voxel_centres[v], [-20.0, 60.0])
    np.testing.assert_allclose(calogan.voxel_areas[v], 1600.0)
    # a 1 mm grid of 25 x 25 cells: the first cell is centred at (-12, -12) mm
    np.testing.assert_allclose(get_geometry("grid:25x25x25").voxel_centres[0], [-12.0, -12.0])


def test_voxel_areas_cover_each_layer():
    g = get_geometry("ds1-pions")
    for layer, sl in zip(g.layers, g.layer_slices, strict=True):
        np.testing.assert_allclose(g.voxel_areas[sl].sum(), math.pi * layer.r_edges[-1] ** 2)


def test_layer_energies():
    g = get_geometry("ds1-photons")
    rng = np.random.default_rng(1)
    showers = rng.exponential(1.0, (4, g.n_voxels))
    expected = np.stack([showers[:, sl].sum(axis=1) for sl in g.layer_slices], axis=1)
    np.testing.assert_allclose(g.layer_energies(showers), expected)
    ones = g.layer_energies(np.ones((1, g.n_voxels)))
    np.testing.assert_array_equal(ones[0], g.layer_sizes)
    with pytest.raises(GeometryError, match=r"showers has 367 voxels .* 'ds1-photons' has 368"):
        g.layer_energies(np.ones((2, 367)))


@pytest.mark.parametrize("name", ["ds1-pions", "ds3", "calogan", "grid:4x3x2:2.5"])
def test_dict_round_trip(name):
    g = get_geometry(name)
    back = Geometry.from_dict(json.loads(json.dumps(g.to_dict())))
    assert back == g
    assert back.meta == g.meta
    assert back.n_voxels == g.n_voxels


def test_from_dict_rejects_bad_descriptions():
    good = grid_geometry(2, 3, 3).to_dict()
    with pytest.raises(GeometryError, match=r"unknown geometry kind 'hexagonal'"):
        Geometry.from_dict({**good, "kind": "hexagonal"})
    with pytest.raises(GeometryError, match=r"missing or has a bad field: 'nx'"):
        Geometry.from_dict({**good, "layers": [{"id": 0, "ny": 3, "dx": 1, "dy": 1}]})
