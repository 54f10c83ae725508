"""Conditions flow from shower files and the CLI to every model: the angles and entry point a
file records (or `generate --theta/--phi/--entry-x/--entry-y` gives) reach ``model.sample``, and
a model that cannot take them refuses with one sentence before anything is written."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloforge import workflows
from caloforge.conditions import Conditions
from caloforge.errors import ConfigError
from caloforge.io import read_showers, write_showers
from caloforge.models.base import model_class
from test_reliability_cli import assert_one_error, cli

N = 12


def _file(path, **attrs):
    rng = np.random.default_rng(0)
    return write_showers(
        path,
        rng.uniform(1e3, 1e5, N),
        rng.exponential(10.0, (N, 368)).astype(np.float32),
        geometry="ds1-photons",
        attrs=attrs,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("cond")
    data = _file(d / "train.h5")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is many times faster under load
    try:
        workflows.train(
            "qvae", data, d / "run", config=dict(model_class("qvae").smoke_config or {}),
            epochs=1, progress=False,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return d / "run"


def test_conditions_read_from_file_attributes():
    e = np.array([1e3, 2e3])
    c = Conditions.from_attrs(e, {"theta": 0.2, "phi": 1.0, "offset_x_mm": 3.0})
    assert np.array_equal(c.theta, [0.2, 0.2]) and np.array_equal(c.phi, [1.0, 1.0])
    assert np.array_equal(c.entry, [[3.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    assert Conditions.from_attrs(e, {}).names == {"energy"}  # an official file: energy only


def test_head_on_centred_conditions_ask_nothing_more():
    e = np.ones(3)
    assert Conditions.uniform(e, theta=0.0, phi=2.0, entry=(0, 0, 0)).effective == {"energy"}
    assert Conditions.uniform(e, theta=0.1).effective == {"energy", "theta"}
    assert Conditions.uniform(e, theta=0.1, phi=0.0).effective == {"energy", "theta", "phi"}
    assert Conditions.uniform(e, entry=(0, 2.0, 0)).effective == {"energy", "entry"}


def test_an_energy_only_model_refuses_a_tilted_file_before_writing(tmp_path, run):
    tilted = _file(tmp_path / "tilted.h5", theta=0.2, phi=0.0)
    out = tmp_path / "g.h5"
    with pytest.raises(ConfigError, match=r"cannot take phi, theta \(as .*tilted.h5 records"):
        workflows.generate(run, out, energies_from=tilted, progress=False)
    assert not out.exists()


def test_a_head_on_file_is_accepted_and_its_conditions_recorded(tmp_path, run):
    head_on = _file(tmp_path / "head_on.h5", theta=0.0, phi=0.0, offset_x_mm=0.0)
    out = tmp_path / "g.h5"
    workflows.generate(run, out, energies_from=head_on, progress=False)
    attrs = read_showers(out).attrs
    assert (attrs["theta"], attrs["phi"], attrs["offset_x_mm"]) == (0.0, 0.0, 0.0)


def test_a_model_that_takes_angles_receives_them(tmp_path, run, monkeypatch):
    """The conditions reach ``sample`` for a model that declares them: the file's angle, or the
    explicit value, which wins over the file's."""
    cls = model_class("qvae")
    monkeypatch.setattr(cls, "supported_conditions", frozenset({"energy", "theta", "phi", "entry"}))
    seen: list[Conditions] = []

    def sample(self, conditions, *, seed=0, batch_size=1024):
        seen.append(conditions)
        return np.zeros((len(conditions), self.geometry.n_voxels), np.float32)

    monkeypatch.setattr(cls, "sample", sample)
    tilted = _file(tmp_path / "tilted.h5", theta=0.2, phi=0.5)
    workflows.generate(run, tmp_path / "a.h5", energies_from=tilted, progress=False)
    assert np.all(seen[-1].theta == 0.2) and np.all(seen[-1].phi == 0.5)
    assert seen[-1].entry is None
    workflows.generate(
        run, tmp_path / "b.h5", energies_from=tilted, theta=0.4, entry_mm=(1.0, -2.0),
        progress=False,
    )  # fmt: skip
    assert np.all(seen[-1].theta == 0.4) and np.all(seen[-1].phi == 0.5)
    assert np.array_equal(seen[-1].entry[0], [1.0, -2.0, 0.0])
    assert read_showers(tmp_path / "b.h5").attrs["theta"] == 0.4


def test_cli_angle_for_an_energy_only_model_is_one_sentence(tmp_path, run):
    args = ["generate", str(run), "-o", "g.h5", "--n", "5", "--energies", "1e4"]
    rc, _, err = cli(*args, "--theta", "0.3", cwd=tmp_path)
    assert_one_error(rc, err, "conditioned on energy only and cannot take theta")
    rc, _, err = cli(*args, "--theta", "4", cwd=tmp_path)
    assert_one_error(rc, err, "--theta must be <= 3.14159 rad")
    assert list(tmp_path.iterdir()) == []
