"""Shower files: round trips, official samples, CaloGAN, streaming, validation, atomic writes."""

from __future__ import annotations

import os
import stat

import h5py
import numpy as np
import pytest

import caloforge
import caloforge.io as cio
from caloforge.errors import GeometryError, ShowerFileError
from caloforge.geometry import get_geometry
from caloforge.io import (
    Showers,
    ShowerWriter,
    convert_calogan,
    inspect_file,
    iter_showers,
    read_showers,
    write_showers,
)
from caloforge.summary import summarize
from conftest import calogan_arrays, synthetic_showers

# --------------------------------------------------------------------------- round trips


def test_write_read_round_trip_in_official_layout(tmp_path):
    e_inc, showers = synthetic_showers(12, 368, seed=1)
    attrs = {"particle": "photon", "producer": "test", "seed": 7}
    path = write_showers(tmp_path / "out.h5", e_inc, showers, geometry="ds1-photons", attrs=attrs)

    # what the official tools see: two datasets, float64 (N, 1) energies as in the official
    # files (float32 ones make the official cls-low classifier fail on a dtype mismatch),
    # float32 voxels, gzip, chunked
    with h5py.File(path, "r") as f:
        assert sorted(f.keys()) == ["incident_energies", "showers"]
        energies, voxels = f["incident_energies"], f["showers"]
        assert energies.shape == (12, 1) and voxels.shape == (12, 368)
        assert energies.dtype == np.float64 and voxels.dtype == np.float32
        assert voxels.compression == "gzip" and energies.compression == "gzip"
        assert voxels.chunks is not None
        np.testing.assert_array_equal(voxels[:], showers)
        np.testing.assert_array_equal(energies[:, 0], e_inc)
        assert f.attrs["geometry"] == "ds1-photons"
        assert f.attrs["particle"] == "photon"
        assert f.attrs["producer"] == "test"
        assert f.attrs["caloforge_version"] == caloforge.__version__
        assert int(f.attrs["seed"]) == 7

    back = read_showers(path, geometry="ds1-photons")
    assert len(back) == 12 and back.n_voxels == 368
    assert back.showers.dtype == np.float32
    np.testing.assert_array_equal(back.showers, showers)
    np.testing.assert_array_equal(back.incident_energies, e_inc)
    assert back.attrs["seed"] == 7 and back.attrs["geometry"] == "ds1-photons"


def test_written_file_gets_usual_permissions(tmp_path):
    e_inc, showers = synthetic_showers(2, 10)
    path = write_showers(tmp_path / "perm.h5", e_inc, showers)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_write_float64_and_n1_energies(tmp_path):
    e_inc, showers = synthetic_showers(3, 20, seed=2)
    path = write_showers(tmp_path / "f64.h5", e_inc[:, None], showers, dtype=np.float64)
    with h5py.File(path, "r") as f:
        assert f["showers"].dtype == np.float64
        assert f["incident_energies"].shape == (3, 1)
    np.testing.assert_array_equal(read_showers(path).incident_energies, e_inc)


def test_shower_writer_appends_chunks(tmp_path):
    e_inc, showers = synthetic_showers(25, 40, seed=3)
    with ShowerWriter(tmp_path / "chunks.h5", 40, attrs={"seed": 1}) as writer:
        for start in range(0, 25, 10):
            writer.append(e_inc[start : start + 10], showers[start : start + 10])
    assert writer.n_written == 25
    back = read_showers(tmp_path / "chunks.h5")
    np.testing.assert_array_equal(back.showers, showers)


def test_write_rejects_wrong_shapes(tmp_path):
    e_inc, showers = synthetic_showers(4, 368)
    with pytest.raises(ShowerFileError, match=r"bad\.h5: showers to write have shape \(4, 368\), "):
        write_showers(tmp_path / "bad.h5", e_inc, showers, geometry="ds2")
    with pytest.raises(ShowerFileError, match=r"bad\.h5: 3 incident energies for 4 showers"):
        write_showers(tmp_path / "bad.h5", e_inc[:3], showers)
    with pytest.raises(ShowerFileError, match=r"expected \(N, V\)"):
        write_showers(tmp_path / "bad.h5", e_inc, showers.ravel())
    with pytest.raises(ShowerFileError, match=r"bad\.h5 \(writing\): 'showers' contains NaN"):
        write_showers(tmp_path / "bad.h5", e_inc, np.full_like(showers, np.nan))
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- official samples


def test_read_official_ds2_sample(sample_ds2):
    block = read_showers(sample_ds2, geometry="ds2")
    with h5py.File(sample_ds2, "r") as f:
        np.testing.assert_array_equal(block.showers, f["showers"][:])
        np.testing.assert_array_equal(block.incident_energies, f["incident_energies"][:, 0])
    assert block.showers.shape == (10, 6480)
    assert block.attrs["seed"] == 42
    info = inspect_file(sample_ds2)
    assert (info.layout, info.n_showers, info.n_voxels) == ("calochallenge", 10, 6480)


def test_read_official_ds1_photons_sample(sample_ds1_photons):
    block = read_showers(sample_ds1_photons, geometry="ds1-photons")
    assert block.showers.shape == (10, 368)
    # dataset-1 incident energies are powers of two
    log2 = np.log2(block.incident_energies)
    np.testing.assert_array_equal(log2, np.round(log2))
    layers = get_geometry("ds1-photons").layer_energies(block.showers)
    np.testing.assert_allclose(layers.sum(axis=1), block.showers.sum(axis=1), rtol=1e-5)


def test_summary_of_official_sample(sample_ds2):
    s = summarize(sample_ds2)
    assert (s.n_showers, s.n_voxels, s.geometry) == (10, 6480, "ds2")
    assert s.matching_geometries == ["ds2"]
    with h5py.File(sample_ds2, "r") as f:
        e = f["incident_energies"][:, 0].astype(np.float64)
        x = f["showers"][:].astype(np.float64)
    assert s.e_inc_min == pytest.approx(e.min()) and s.e_inc_max == pytest.approx(e.max())
    ratio = x.sum(axis=1) / e
    assert s.response_mean == pytest.approx(ratio.mean(), rel=1e-6)
    assert s.response_std == pytest.approx(ratio.std(), rel=1e-4)
    assert s.sparsity_mean == pytest.approx((x == 0).mean())


# --------------------------------------------------------------------------- CaloGAN


def test_read_calogan_layout(calogan_file):
    path, arrays = calogan_file
    block = read_showers(path, geometry="calogan")
    n = len(arrays["energy"])
    assert block.showers.shape == (n, 504)
    flat = np.concatenate(
        [arrays["layer_0"].reshape(n, -1), arrays["layer_1"].reshape(n, -1), arrays["layer_2"].reshape(n, -1)],
        axis=1,
    )  # fmt: skip
    np.testing.assert_array_equal(block.showers, flat)
    # energy in GeV -> MeV
    np.testing.assert_allclose(block.incident_energies, arrays["energy"][:, 0] * 1000.0, rtol=1e-6)
    np.testing.assert_array_equal(block.extras["overflow"], arrays["overflow"])
    # the calogan geometry maps the flat vector back onto the layers
    g = get_geometry("calogan")
    np.testing.assert_array_equal(
        block.showers[:, g.layer_slices[1]].reshape(n, 12, 12), arrays["layer_1"]
    )
    v = g.ravel(2, 11, 5)
    np.testing.assert_array_equal(block.showers[:, v], arrays["layer_2"][:, 11, 5])
    info = inspect_file(path)
    assert (info.layout, info.n_showers, info.n_voxels) == ("calogan", n, 504)


def test_convert_calogan(calogan_file, tmp_path):
    path, arrays = calogan_file
    out = convert_calogan(path, tmp_path / "converted.h5", chunk_size=3)
    with h5py.File(out, "r") as f:
        assert f["showers"].shape == (7, 504)
        assert f["incident_energies"].shape == (7, 1)
        assert f.attrs["geometry"] == "calogan"
        assert "CaloGAN" in f.attrs["producer"]
    direct = read_showers(path)
    converted = read_showers(out, geometry="calogan")
    np.testing.assert_array_equal(converted.showers, direct.showers)
    np.testing.assert_allclose(converted.incident_energies, direct.incident_energies, rtol=1e-7)


def test_convert_refuses_a_non_calogan_file(sample_ds2, tmp_path):
    with pytest.raises(ShowerFileError, match=r"sample_ds2_10_showers\.hdf5: not a CaloGAN file"):
        convert_calogan(sample_ds2, tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_calogan_wrong_layer_shape(raw_h5):
    arrays = calogan_arrays(4)
    arrays["layer_1"] = arrays["layer_1"][:, :, :6]
    path = raw_h5("badgan.h5", **arrays)
    with pytest.raises(ShowerFileError, match=r"badgan\.h5: 'layer_1' has shape \(4, 12, 6\), "):
        read_showers(path)


def test_calogan_missing_energy(raw_h5):
    arrays = calogan_arrays(3)
    del arrays["energy"]
    path = raw_h5("noenergy.h5", **arrays)
    with pytest.raises(
        ShowerFileError, match=r"noenergy\.h5: missing key 'energy' \(the file holds"
    ):
        read_showers(path)


# --------------------------------------------------------------------------- streaming


def test_streaming_in_chunks_reproduces_the_file(tmp_path):
    e_inc, showers = synthetic_showers(37, 50, seed=4)
    path = write_showers(tmp_path / "s.h5", e_inc, showers)
    blocks = list(iter_showers(path, chunk_size=5))
    assert [len(b) for b in blocks] == [5] * 7 + [2]
    np.testing.assert_array_equal(np.concatenate([b.showers for b in blocks]), showers)
    np.testing.assert_array_equal(np.concatenate([b.incident_energies for b in blocks]), e_inc)


def test_default_chunk_size_follows_the_memory_budget(tmp_path, monkeypatch):
    e_inc, showers = synthetic_showers(30, 64, seed=5)
    path = write_showers(tmp_path / "budget.h5", e_inc, showers)
    monkeypatch.setattr(cio, "CHUNK_BYTES", 8 * 64 * 4)  # eight float32 showers of 64 voxels
    assert [len(b) for b in iter_showers(path)] == [8, 8, 8, 6]
    np.testing.assert_array_equal(read_showers(path).showers, showers)


def test_several_files_read_as_one_dataset(tmp_path):
    parts = [synthetic_showers(n, 30, seed=10 + i) for i, n in enumerate((4, 9, 2))]
    paths = [write_showers(tmp_path / f"part{i}.h5", *p) for i, p in enumerate(parts)]
    block = read_showers(paths)
    np.testing.assert_array_equal(block.showers, np.concatenate([p[1] for p in parts]))
    assert sum(len(b) for b in iter_showers(paths, chunk_size=3)) == 15
    first = read_showers(paths, max_showers=6)
    np.testing.assert_array_equal(first.showers, block.showers[:6])


def test_several_files_with_different_voxel_counts(tmp_path):
    a = write_showers(tmp_path / "a.h5", *synthetic_showers(2, 30))
    b = write_showers(tmp_path / "b.h5", *synthetic_showers(2, 31))
    with pytest.raises(ShowerFileError, match=r"different voxel counts \(a\.h5: 30, b\.h5: 31\)"):
        next(iter_showers([a, b]))


def test_showers_block_selection():
    e_inc, showers = synthetic_showers(6, 8)
    block = Showers(e_inc, showers, {"geometry": "x"}, {"overflow": np.arange(6)})
    sub = block[1:4]
    assert len(sub) == 3 and sub.attrs == {"geometry": "x"}
    np.testing.assert_array_equal(sub.extras["overflow"], [1, 2, 3])
    with pytest.raises(ShowerFileError, match="5 incident energies but 6 showers"):
        Showers(e_inc[:5], showers)


# --------------------------------------------------------------------------- validation


def test_not_hdf5(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("this is a text file, not HDF5\n")
    with pytest.raises(ShowerFileError, match=r"notes\.h5: not an HDF5 file") as info:
        read_showers(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_file(tmp_path, keep):
    path = write_showers(tmp_path / "full.h5", *synthetic_showers(50, 200, seed=6))
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ShowerFileError, match=r"cut\.h5: the HDF5 file is truncated"):
        read_showers(cut)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ShowerFileError, match=r"absent\.h5: no such file"):
        read_showers(tmp_path / "absent.h5")
    with pytest.raises(ShowerFileError, match=r"is a directory, expected an HDF5 shower file"):
        read_showers(tmp_path)
    with pytest.raises(ShowerFileError, match="no shower file given"):
        read_showers([])


@pytest.mark.parametrize(
    ("datasets", "pattern"),
    [
        (
            {"incident_energies": np.ones((3, 1))},
            r"nokey\.h5: missing key 'showers' \(the file holds incident_energies\)",
        ),
        (
            {"showers": np.ones((3, 5))},
            r"nokey\.h5: missing key 'incident_energies' \(the file holds showers\)",
        ),
        (
            {"incident_energies": np.ones((3, 2)), "showers": np.ones((3, 5))},
            r"nokey\.h5: 'incident_energies' has shape \(3, 2\), expected \(N, 1\)",
        ),
        (
            {"incident_energies": np.ones((3, 1)), "showers": np.ones((3, 5, 2))},
            r"nokey\.h5: 'showers' has shape \(3, 5, 2\), expected \(N, V\)",
        ),
    ],
)
def test_missing_key_or_bad_shape(raw_h5, datasets, pattern):
    path = raw_h5("nokey.h5", **datasets)
    with pytest.raises(ShowerFileError, match=pattern):
        read_showers(path)


def test_file_without_showers(raw_h5):
    path = raw_h5("none.h5", incident_energies=np.ones((0, 1)), showers=np.ones((0, 30)))
    assert inspect_file(path).n_showers == 0
    assert list(iter_showers(path)) == []
    with pytest.raises(ShowerFileError, match=r"none\.h5: the file holds no showers"):
        read_showers(path)


def test_voxel_count_does_not_match_geometry(sample_ds2):
    pattern = r"sample_ds2_10_showers\.hdf5: 'showers' has 6480 voxels per shower but geometry 'ds3' expects 40500"
    with pytest.raises(ShowerFileError, match=pattern):
        read_showers(sample_ds2, geometry="ds3")
    with pytest.raises(ShowerFileError, match=pattern):
        inspect_file(sample_ds2, "ds3")
    with pytest.raises(GeometryError, match="unknown geometry 'ds9'"):
        inspect_file(sample_ds2, "ds9")


def test_n_mismatch_between_energies_and_showers(raw_h5):
    path = raw_h5("mismatch.h5", incident_energies=np.ones((4, 1)), showers=np.ones((5, 368)))
    pattern = (
        r"mismatch\.h5: 'incident_energies' has 4 entries but 'showers' has 5 showers; "
        "they must match"
    )
    with pytest.raises(ShowerFileError, match=pattern):
        read_showers(path)


def _showers_with(value: float, where: str) -> dict[str, np.ndarray]:
    e_inc, showers = synthetic_showers(20, 30, seed=8)
    e_inc = e_inc[:, None].astype(np.float32)
    if where == "energies":
        e_inc[13, 0] = value
    else:
        showers[13, 7] = value
    return {"incident_energies": e_inc, "showers": showers}


@pytest.mark.parametrize(
    ("value", "where", "pattern"),
    [
        (np.nan, "showers", r"'showers' contains NaN or Inf"),
        (np.inf, "showers", r"'showers' contains NaN or Inf"),
        (np.nan, "energies", r"'incident_energies' contains NaN or Inf"),
        (-np.inf, "energies", r"'incident_energies' contains NaN or Inf"),
        (-2.5, "showers", r"'showers' has negative voxel energies \(min -2\.5 MeV\)"),
        (-100.0, "energies", r"'incident_energies' must be > 0 MeV, found -100"),
        (0.0, "energies", r"'incident_energies' must be > 0 MeV, found 0"),
    ],
)
def test_bad_values_name_file_rows_and_problem(raw_h5, value, where, pattern):
    path = raw_h5("values.h5", **_showers_with(value, where))
    # the message names the file and the rows of the chunk that holds the bad shower
    with pytest.raises(ShowerFileError, match=r"values\.h5 showers 10-19: " + pattern):
        list(iter_showers(path, chunk_size=10))
    with pytest.raises(ShowerFileError, match=r"values\.h5 showers 0-19: " + pattern):
        read_showers(path)
    # validation can be switched off for files one wants to inspect anyway
    assert len(read_showers(path, validate=False)) == 20


# --------------------------------------------------------------------------- atomic writes


def test_exception_inside_writer_leaves_nothing(tmp_path):
    e_inc, showers = synthetic_showers(10, 20)
    target = tmp_path / "partial.h5"
    with pytest.raises(RuntimeError, match="simulated crash"):
        with ShowerWriter(target, 20) as writer:
            writer.append(e_inc[:5], showers[:5])
            assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
            raise RuntimeError("simulated crash")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_rewrite_keeps_the_old_file(tmp_path):
    e_inc, showers = synthetic_showers(4, 20, seed=1)
    target = write_showers(tmp_path / "keep.h5", e_inc, showers)
    with pytest.raises(KeyboardInterrupt):
        with ShowerWriter(target, 20) as writer:
            writer.append(e_inc[:2], showers[:2] * 2)
            raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["keep.h5"]
    np.testing.assert_array_equal(read_showers(target).showers, showers)


def test_bad_append_inside_writer_leaves_nothing(tmp_path):
    e_inc, showers = synthetic_showers(4, 20)
    with pytest.raises(ShowerFileError, match=r"expected \(N, 20\)"):
        with ShowerWriter(tmp_path / "shape.h5", 20) as writer:
            writer.append(e_inc, showers)
            writer.append(e_inc, showers[:, :10])
    assert list(tmp_path.iterdir()) == []


def test_writing_an_empty_file_is_refused(tmp_path):
    target = tmp_path / "empty.h5"
    with pytest.raises(
        ShowerFileError, match=r"empty\.h5: refusing to write a file with no showers"
    ):
        with ShowerWriter(target, 10):
            pass
    with pytest.raises(ShowerFileError, match="refusing to write a file with no showers"):
        write_showers(target, np.ones(0), np.ones((0, 10)))
    assert list(tmp_path.iterdir()) == []


def test_append_outside_the_with_block():
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        ShowerWriter("never.h5", 3).append(np.ones(1), np.ones((1, 3)))
