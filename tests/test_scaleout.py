"""Scale-out on Dask: the distributed file equals the serial one, bounded windows, failures leave
no file, cluster addresses, the CLI flags and bad input.

Generation runs on the threads scheduler (and an in-process cluster): every worker thread still
loads the model from the run directory itself (:func:`caloforge.generation.worker_model`), the same
code a worker process runs. The processes scheduler is exercised for simulation only, because a
worker process that loads a model imports every built-in model (pennylane included, ~7 s a
process); a test-only model registered in a test module could not be loaded there at all, so the
model here is the registered ``qvae`` with a tiny config.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from caloforge import parallel
from caloforge.errors import ConfigError, ShowerFileError
from caloforge.generation import ModelSpec, write_generation
from caloforge.geometry import get_geometry
from caloforge.io import Showers
from caloforge.models.qvae import QVAE
from caloforge.parallel import check_scheduler, ordered_results
from caloforge.refsim import chunk_seed, simulate, simulate_to_file
from caloforge.refsim import files as sim_files
from caloforge.workflows import generate
from test_cli_data import run_cli

TINY_QVAE = {
    "topology": "chimera",  # a Boltzmann prior that is quick to build (every worker builds it)
    "units_per_partition": 8,
    "hidden": 32,
    "batch_size": 32,
    "gibbs_sweeps_sample": 4,
}


def file_content(path: Path) -> dict:
    """Every dataset (as arrays) and every attribute of an HDF5 file."""
    with h5py.File(path, "r") as f:
        return {"attrs": dict(f.attrs), **{key: f[key][()] for key in f}}


def assert_same_content(a: Path, b: Path) -> None:
    ca, cb = file_content(a), file_content(b)
    assert ca.keys() == cb.keys()
    for key in ca:
        if key == "attrs":
            assert ca[key] == cb[key]
        else:
            assert ca[key].dtype == cb[key].dtype and np.array_equal(ca[key], cb[key]), key


def leftovers(directory: Path) -> list[str]:
    """Temporary files a writer left behind."""
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- simulation
SIM_CASES = {
    # ds1 photons from a spectrum: energies drawn per chunk from the chunk seed
    "processes": dict(detector="ds1-photons", particle="photon", energies="ds1", n=300),
    # ds1 photons from an energy array, with noise and an offset: energies sliced per chunk
    "threads": dict(
        detector="ds1-photons",
        particle="gamma",
        energies=np.geomspace(1e3, 1e5, 250),
        noise_mev=0.5,
        offset_mm=(3.0, -2.0),
    ),  # fmt: skip
    # ds2 electrons
    "synchronous": dict(detector="ds2", particle="electron", energies="loguniform:1e3:1e6", n=100),
}


@pytest.mark.parametrize("scheduler", sorted(SIM_CASES))
def test_simulation_equals_serial_run(tmp_path, scheduler):
    case = SIM_CASES[scheduler]
    serial = simulate_to_file(tmp_path / "serial.h5", **case, seed=7, chunk_size=32, progress=False)
    dist = simulate_to_file(
        tmp_path / "dist.h5", **case, seed=7, chunk_size=32, workers=2, scheduler=scheduler
    )
    assert_same_content(serial, dist)
    assert leftovers(tmp_path) == []


def test_ordered_results_keep_order_and_a_bounded_window():
    drawn = []

    def calls():
        for i in range(40):
            drawn.append(i)
            yield np.square, (i,)

    window = parallel.CHUNKS_PER_WORKER * 3
    for k, value in enumerate(ordered_results(calls(), "threads", 3)):
        assert value == k * k
        # the window being consumed plus the one computed meanwhile, never more
        assert len(drawn) - k <= 2 * window


def _failing_simulate(*args, seed, **kwargs) -> Showers:
    """simulate(), except that it raises on one chunk."""
    if seed == chunk_seed(7, 2):
        raise RuntimeError("worker lost")
    return simulate(*args, seed=seed, **kwargs)


def _nan_simulate(*args, seed, **kwargs) -> Showers:
    """simulate(), except that one chunk holds NaN (the writer must refuse it)."""
    block = simulate(*args, seed=seed, **kwargs)
    if seed == chunk_seed(7, 2):
        block.showers[0, 0] = np.nan
    return block


@pytest.mark.parametrize(
    ("fake", "error"), [(_failing_simulate, RuntimeError), (_nan_simulate, ShowerFileError)]
)
def test_a_failing_chunk_leaves_no_file(tmp_path, monkeypatch, fake, error):
    monkeypatch.setattr(sim_files, "simulate", fake)
    out = tmp_path / "out.h5"
    with pytest.raises(error):
        simulate_to_file(
            out, "ds1-photons", "photon", "ds1", n=300, seed=7, chunk_size=32,
            workers=2, scheduler="threads",
        )  # fmt: skip
    assert not out.exists() and leftovers(tmp_path) == []


# --------------------------------------------------------------------------- generation
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A registered model (qvae, Boltzmann prior) trained for one epoch, saved as a run dir."""
    photons = simulate("ds1-photons", "photon", "loguniform:1e3:1e5", n=32, seed=3)
    model = QVAE(get_geometry("ds1-photons"), TINY_QVAE)
    model.fit(photons, epochs=1, seed=0, progress=False)
    return model.save(tmp_path_factory.mktemp("scaleout") / "run")


@pytest.mark.parametrize("scheduler", ["threads", "synchronous"])
def test_generation_equals_workflows_generate(tmp_path, run_dir, scheduler):
    common = dict(n=200, energies="loguniform:1e3:1e5", sampler="gibbs", seed=4, batch_size=48)
    serial = tmp_path / "serial.h5"
    generate(run_dir, serial, **common, progress=False)
    result = generate(
        run_dir, tmp_path / "dist.h5", **common, workers=2, scheduler=scheduler, progress=False
    )
    assert result["n"] == 200
    assert_same_content(serial, tmp_path / "dist.h5")


def test_tasks_of_several_batches_keep_the_batch_seeds(tmp_path, run_dir):
    """write_generation with 2 batches per task: batch i still gets batch_seed(seed, i)."""
    from caloforge.io import read_showers
    from caloforge.workflows import prepare_generation

    common = dict(n=150, energies="loguniform:1e3:1e5", seed=3)
    generate(run_dir, tmp_path / "serial.h5", **common, batch_size=40, progress=False)
    model, e, attrs = prepare_generation(run_dir, **common)
    write_generation(
        tmp_path / "dist.h5", ModelSpec.of(run_dir), e, attrs, model.geometry.n_voxels,
        seed=3, batch_size=40, batches_per_task=2, workers=2, scheduler="threads",
    )  # fmt: skip
    assert_same_content(tmp_path / "serial.h5", tmp_path / "dist.h5")
    assert len(read_showers(tmp_path / "dist.h5")) == 150


def test_generation_with_energies_from_a_file(tmp_path, run_dir):
    ref = simulate_to_file(tmp_path / "ref.h5", "ds1-photons", "photon", "ds1", n=100, seed=1,
                           progress=False)  # fmt: skip
    generate(run_dir, tmp_path / "serial.h5", energies_from=ref, n=90, seed=2, batch_size=32,
             progress=False)  # fmt: skip
    generate(run_dir, tmp_path / "dist.h5", energies_from=ref, n=90, seed=2,
                         batch_size=32, workers=2, scheduler="threads")  # fmt: skip
    assert_same_content(tmp_path / "serial.h5", tmp_path / "dist.h5")


# --------------------------------------------------------------------------- clusters
@pytest.fixture(scope="module")
def cluster_address():
    """An in-process dask.distributed cluster listening on TCP (two single-thread workers)."""
    import distributed  # a dev dependency: these tests run in CI

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
        dashboard_address=None,
    ) as cluster:  # fmt: skip
        yield cluster.scheduler_address


def test_cluster_results_equal_serial_runs(tmp_path, run_dir, cluster_address):
    assert cluster_address.startswith("tcp://")
    case = SIM_CASES["processes"]
    serial = simulate_to_file(tmp_path / "serial.h5", **case, seed=5, chunk_size=64, progress=False)
    dist = simulate_to_file(
        tmp_path / "dist.h5", **case, seed=5, chunk_size=64, scheduler=cluster_address
    )
    assert_same_content(serial, dist)
    common = dict(n=100, energies="loguniform:1e3:1e5", seed=1, batch_size=32)
    generate(run_dir, tmp_path / "gen_serial.h5", **common, progress=False)
    generate(run_dir, tmp_path / "gen_dist.h5", **common, scheduler=cluster_address)
    assert_same_content(tmp_path / "gen_serial.h5", tmp_path / "gen_dist.h5")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_address_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT_S", 0.5)
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(ConfigError, match=r"could not reach the Dask scheduler at tcp://"):
        simulate_to_file(tmp_path / "x.h5", "ds1-photons", "photon", "ds1", n=10, scheduler=address)
    assert not (tmp_path / "x.h5").exists() and leftovers(tmp_path) == []


def test_address_without_distributed_installed(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(ConfigError) as info:
        simulate_to_file(
            tmp_path / "x.h5", "ds1-photons", "photon", "ds1", n=10, scheduler="tcp://host:8786"
        )
    message = str(info.value)
    assert "needs the dask.distributed package" in message and "caloforge[cluster]" in message
    assert message.count(". ") == 0 and "\n" not in message  # one sentence


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("workers", [0, -2, 1.5, True, "2"])
def test_bad_worker_counts(workers):
    with pytest.raises(ConfigError, match="the number of workers must be a positive integer"):
        check_scheduler("threads", workers)


@pytest.mark.parametrize("scheduler", ["gpu", "thread", "", "host:8786"])
def test_unknown_schedulers(scheduler):
    with pytest.raises(ConfigError, match="unknown scheduler"):
        check_scheduler(scheduler, 2)


def test_scheduler_defaults():
    assert check_scheduler(None, None) == ("processes", parallel.os.cpu_count() or 1)
    assert check_scheduler("tcp://10.0.0.1:8786", None) == ("tcp://10.0.0.1:8786", None)
    assert check_scheduler(" threads ", 3) == ("threads", 3)


# --------------------------------------------------------------------------- CLI
def test_cli_simulate_with_workers_equals_serial(tmp_path, monkeypatch, capsys):
    args = ["simulate", "-d", "ds1-photons", "-p", "photon", "-n", "150", "-e", "ds1",
            "--seed", "3", "--chunk-size", "40"]  # fmt: skip
    code, _, err = run_cli(monkeypatch, capsys, *args, "-o", str(tmp_path / "serial.h5"))
    assert code == 0, err
    code, out, err = run_cli(
        monkeypatch, capsys, *args, "-o", str(tmp_path / "dist.h5"),
        "--workers", "2", "--scheduler", "threads",
    )  # fmt: skip
    assert code == 0, err
    assert "wrote 150 photon showers" in out
    assert_same_content(tmp_path / "serial.h5", tmp_path / "dist.h5")


def test_cli_generate_with_workers_equals_serial(tmp_path, run_dir, monkeypatch, capsys):
    args = ["generate", str(run_dir), "--n", "100", "--energies", "loguniform:1e3:1e5",
            "--seed", "2", "--batch-size", "32"]  # fmt: skip
    code, _, err = run_cli(monkeypatch, capsys, *args, "-o", str(tmp_path / "serial.h5"))
    assert code == 0, err
    code, out, err = run_cli(
        monkeypatch, capsys, *args, "-o", str(tmp_path / "dist.h5"),
        "--workers", "2", "--scheduler", "threads",
    )  # fmt: skip
    assert code == 0, err
    assert "wrote 100 showers" in out
    assert_same_content(tmp_path / "serial.h5", tmp_path / "dist.h5")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "0"], "the number of workers must be a positive integer, got 0"),
        (["--workers", "2", "--scheduler", "gpu"], "unknown scheduler 'gpu'"),
    ],
)
def test_cli_bad_scale_out_flags(tmp_path, monkeypatch, capsys, flags, message):
    out = tmp_path / "x.h5"
    code, _, err = run_cli(monkeypatch, capsys, "simulate", "-n", "10", "-o", str(out), *flags)
    assert code == 2
    assert err.startswith("error: ") and message in " ".join(err.split())
    assert not out.exists()
