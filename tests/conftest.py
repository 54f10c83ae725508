"""Shared fixtures: copies of the official CaloChallenge files and tiny synthetic shower files.

The official files live in ``../shared/calochallenge`` beside the repository. Tests only read
them through copies in ``tmp_path``; nothing is ever written there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _official_dir() -> Path:
    """``$CALOFORGE_SHARED/calochallenge``, else ``../shared/calochallenge`` beside the repository,
    else the workplace copy ``/work/shared/calochallenge`` (for clones made elsewhere)."""
    candidates = [REPO_ROOT.parent / "shared", Path("/work/shared")]
    if os.environ.get("CALOFORGE_SHARED"):
        candidates.insert(0, Path(os.environ["CALOFORGE_SHARED"]))
    for base in candidates:
        if (base / "calochallenge").is_dir():
            return base / "calochallenge"
    return candidates[0] / "calochallenge"


#: the official CaloChallenge binnings and sample files (read-only)
OFFICIAL_DIR = _official_dir()
#: built-in geometry name -> official binning XML file name
OFFICIAL_XML = {
    "ds1-photons": "binning_dataset_1_photons.xml",
    "ds1-pions": "binning_dataset_1_pions.xml",
    "ds2": "binning_dataset_2.xml",
    "ds3": "binning_dataset_3.xml",
}
SAMPLE_DS2 = "sample_ds2_10_showers.hdf5"
SAMPLE_DS1_PHOTONS = "sample_ds1_photons_10_showers.hdf5"


def _copy_official(name: str, dst_dir: Path) -> Path:
    src = OFFICIAL_DIR / name
    if not src.is_file():
        raise FileNotFoundError(
            f"official CaloChallenge file {src} is missing; the tests need ../shared/calochallenge"
        )
    dst = dst_dir / name
    shutil.copyfile(src, dst)
    return dst


@pytest.fixture
def one_torch_thread():
    """One torch thread: on a shared, oversubscribed CPU the OpenMP barriers of the Boltzmann
    tests' small products stall (docs/boltzmann.md); restored afterwards. Use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def official_copy(tmp_path: Path) -> Callable[[str], Path]:
    """Factory: copy an official file (XML or HDF5) into ``tmp_path`` and return the copy."""
    return lambda name: _copy_official(name, tmp_path)


@pytest.fixture
def sample_ds2(tmp_path: Path) -> Path:
    """A copy of the official 10-shower dataset-2 sample (10 x 6480)."""
    return _copy_official(SAMPLE_DS2, tmp_path)


@pytest.fixture
def sample_ds1_photons(tmp_path: Path) -> Path:
    """A copy of the official 10-shower dataset-1-photons sample (10 x 368)."""
    return _copy_official(SAMPLE_DS1_PHOTONS, tmp_path)


def synthetic_showers(
    n: int, n_voxels: int, seed: int = 0, occupancy: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse non-negative showers: (incident energies (n,) MeV, showers (n, n_voxels) float32).

    About ``occupancy`` of the voxels are non-zero, exponentially distributed, and every shower
    deposits less than its incident energy.
    """
    rng = np.random.default_rng(seed)
    e_inc = np.exp(rng.uniform(np.log(1e3), np.log(1e6), n))
    hits = rng.random((n, n_voxels)) < occupancy
    showers = np.where(hits, rng.exponential(1.0, (n, n_voxels)), 0.0)
    showers *= (0.5 * e_inc / np.maximum(showers.sum(axis=1), 1e-12))[:, None]
    return e_inc, showers.astype(np.float32)


def write_raw_h5(path: Path, **datasets: np.ndarray) -> Path:
    """Write arrays under the given keys with plain h5py (no caloforge validation)."""
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f.create_dataset(key, data=value)
    return path


@pytest.fixture
def raw_h5(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``raw_h5("name.h5", key=array, ...)`` writes a file in ``tmp_path`` with h5py."""
    return lambda name, **datasets: write_raw_h5(tmp_path / name, **datasets)


def calogan_arrays(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The datasets of a tiny CaloGAN-layout file: three layers in MeV, energy in GeV, overflow."""
    rng = np.random.default_rng(seed)

    def layer(*shape: int) -> np.ndarray:
        return (rng.exponential(5.0, (n, *shape)) * (rng.random((n, *shape)) < 0.4)).astype(
            np.float32
        )

    return {
        "layer_0": layer(3, 96),
        "layer_1": layer(12, 12),
        "layer_2": layer(12, 6),
        "energy": rng.uniform(1.0, 100.0, (n, 1)).astype(np.float32),  # GeV
        "overflow": rng.exponential(1.0, (n, 3)).astype(np.float32),
    }


@pytest.fixture
def calogan_file(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A 7-shower CaloGAN-layout file and the arrays written into it."""
    arrays = calogan_arrays(7, seed=3)
    return write_raw_h5(tmp_path / "calogan.h5", **arrays), arrays


# Property-based tests draw the same examples on every run and machine: a failure found once
# is found every time, and CI cannot turn red by the luck of a draw.
from hypothesis import settings  # noqa: E402

settings.register_profile("caloforge", derandomize=True)
settings.load_profile("caloforge")
