"""The one training engine, tested once for every registered model: seeding, resume, budget,
history, checkpoint sets, and the errors of a resume that cannot continue."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from caloforge.errors import CheckpointError, ConfigError
from caloforge.geometry import get_geometry
from caloforge.io import Showers
from caloforge.models import builtin_models, load_generator, model_class
from caloforge.models.training import TrainOptions
from caloforge.seeding import check_seed, derive_seed
from caloforge.testing import toy_showers

GEOMETRY = "grid:8x4x4"
#: every built-in model, found from its file (caloforge.discovery), trained with the tiny options
#: its class declares (``smoke_config``): a new model file is tested here without editing this one
MODELS = builtin_models()


def tiny(name: str) -> dict:
    """The smoke config model ``name`` declares."""
    return dict(model_class(name).smoke_config or {})


@pytest.mark.parametrize("name", MODELS)
def test_every_model_declares_a_smoke_config(name):
    assert model_class(name).smoke_config, f"model {name!r} declares no smoke_config"


@pytest.fixture(scope="module")
def data() -> tuple[Showers, Showers]:
    geo = get_geometry(GEOMETRY)
    train = toy_showers(geo, np.geomspace(1e3, 1e5, 16), seed=1)
    val = toy_showers(geo, np.geomspace(2e3, 5e4, 6), seed=2)
    return train, val


def make(name: str):
    return model_class(name)(get_geometry(GEOMETRY), tiny(name))


def tensors(run: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint set (weights and optimizer state)."""
    out = {f"w.{k}": v for k, v in load_file(run / "model.safetensors").items()}
    out.update({f"o.{k}": v for k, v in load_file(run / "optimizer.safetensors").items()})
    return out


def assert_identical(a: Path, b: Path) -> None:
    ta, tb = tensors(a), tensors(b)
    assert ta.keys() == tb.keys()
    different = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not different, different[:5]
    ha = json.loads((a / "model.json").read_text())["state"]["history"]
    hb = json.loads((b / "model.json").read_text())["state"]["history"]
    ha.pop("seconds"), hb.pop("seconds")
    assert json.dumps(ha) == json.dumps(hb)  # NaN-safe comparison


def interrupt_after_first_checkpoint(model) -> None:
    """Make ``model`` raise KeyboardInterrupt right after its first checkpoint is committed:
    an interrupt between epochs, as Ctrl-C or a killed job would leave it."""
    original = model.save_checkpoint

    def save_then_stop(*args, **kwargs):
        original(*args, **kwargs)
        raise KeyboardInterrupt

    model.save_checkpoint = save_then_stop


# --------------------------------------------------------------------------- every model
@pytest.mark.parametrize("name", MODELS)
def test_initialisation_is_drawn_from_the_seed(name):
    a, b, c = make(name), make(name), make(name)
    a.initialize(11)
    b.initialize(11)
    c.initialize(12)
    ta, tb, tc = a.weight_tensors(), b.weight_tensors(), c.weight_tensors()
    assert all(torch.equal(ta[k], tb[k]) for k in ta)
    assert any(not torch.equal(ta[k], tc[k]) for k in ta)


@pytest.mark.parametrize("name", MODELS)
def test_seeded_and_resumed_runs_are_bit_identical(name, data, tmp_path):
    """Three runs with seed 5: two epochs straight; and one interrupted after its first
    checkpoint, then resumed. Every tensor of the final checkpoint sets (weights, optimizer
    moments, resume tensors) and the histories agree bit for bit: the second run repeats the
    first's initialisation and epoch 1 from the seed alone, and the resumed part repeats epoch 2
    from the checkpoint."""
    train, val = data
    straight, first, resumed = make(name), make(name), make(name)
    before = torch.get_rng_state()
    history = straight.fit(
        train, val, out_dir=tmp_path / "straight", epochs=2, seed=5, progress=False
    )
    assert torch.equal(torch.get_rng_state(), before)  # the global torch RNG is left alone
    interrupt_after_first_checkpoint(first)
    with pytest.raises(KeyboardInterrupt):
        first.fit(train, val, out_dir=tmp_path / "cut", epochs=2, seed=5, progress=False)
    assert load_generator(tmp_path / "cut").state["epoch"] == 1
    # the resumed run takes its seed from the checkpoint, whatever is passed
    resumed.fit(train, val, out_dir=tmp_path / "cut", epochs=2, seed=0, resume=True, progress=False)
    assert_identical(tmp_path / "straight", tmp_path / "cut")
    # one history format: per-epoch lists of one length, the fixed columns, a validation metric
    assert {"epoch", "steps", "seconds"} <= set(history)
    assert all(isinstance(v, list) and len(v) == 2 for v in history.values())
    assert history["epoch"] == [1.0, 2.0] and history["steps"][0] >= 1
    assert any(k.startswith("val_") and math.isfinite(history[k][1]) for k in history)
    stored = load_generator(tmp_path / "straight").state["history"]
    assert json.dumps(stored) == json.dumps(history)


@pytest.mark.parametrize("name", MODELS)
def test_budget_stops_after_the_step_that_passes_it(name, data, tmp_path):
    train, _ = data
    model = make(name)
    history = model.fit(train, out_dir=tmp_path, epochs=3, max_minutes=0.0, progress=False)
    # a zero budget is passed by the first step: one partial epoch, checkpointed
    assert history["epoch"] == [1.0] and history["steps"] == [1.0]
    assert load_generator(tmp_path).state["epoch"] == 1
    history = make(name).fit(train, out_dir=tmp_path, epochs=2, resume=True, progress=False)
    assert history["epoch"] == [1.0, 2.0] and history["steps"][1] > 1


# --------------------------------------------------------------------------- resume errors
@pytest.fixture
def run(data, tmp_path) -> Path:
    """A one-epoch gan3d run directory (the cheapest model)."""
    make("gan3d").fit(data[0], out_dir=tmp_path / "run", epochs=1, seed=1, progress=False)
    return tmp_path / "run"


def resume(name: str, run: Path, data, config: dict | None = None):
    model = model_class(name)(get_geometry(GEOMETRY), config or tiny(name))
    return model.fit(data[0], out_dir=run, epochs=2, resume=True, progress=False)


def test_resume_without_a_checkpoint_is_an_error(data, tmp_path):
    with pytest.raises(CheckpointError, match="no model.json to resume from"):
        resume("gan3d", tmp_path / "empty", data)
    assert not (tmp_path / "empty").exists()


def test_resume_without_the_optimizer_file_is_an_error(run, data):
    (run / "optimizer.safetensors").unlink()
    with pytest.raises(CheckpointError, match="optimizer.safetensors: missing"):
        resume("gan3d", run, data)


def test_resume_with_another_model_or_config_is_an_error(run, data):
    with pytest.raises(CheckpointError, match="holds a 'gan3d' checkpoint, cannot resume"):
        resume("wgan", run, data)
    with pytest.raises(CheckpointError, match=r"different options \(latent_dim\)"):
        resume("gan3d", run, data, {**tiny("gan3d"), "latent_dim": 5})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epoch": "one"}, "state.epoch must be a non-negative integer"),
        ({"seed": -2}, "state.seed must be a non-negative integer"),
        ({"history": [1, 2]}, "state.history must map names"),
    ],
)
def test_resume_with_a_corrupt_state_is_an_error(run, data, change, message):
    meta = json.loads((run / "model.json").read_text())
    meta["state"].update(change)
    (run / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=message):
        resume("gan3d", run, data)


def test_resume_refuses_a_mixed_checkpoint_set(run, data):
    """Files from two epochs (what replacing them one by one could leave) are refused."""
    weights = load_file(run / "optimizer.safetensors")
    save_file(weights, str(run / "optimizer.safetensors"), metadata={"epoch": "7"})
    with pytest.raises(CheckpointError, match="optimizer.safetensors is from epoch 7 but"):
        resume("gan3d", run, data)


def test_a_newer_format_is_refused(run):
    meta = json.loads((run / "model.json").read_text())
    meta["format"] = 99
    (run / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format 99 was written by a newer caloforge"):
        load_generator(run)


# --------------------------------------------------------------------------- checkpoint sets
def test_a_failed_commit_leaves_the_previous_set_whole(run, data, monkeypatch):
    import caloforge.models.training as training

    (run / "notes.txt").write_text("kept")
    before = {p.name: p.read_bytes() for p in run.iterdir()}

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(training, "save_optimizer_file", full_disk)
    with pytest.raises(OSError, match="No space left"):
        resume("gan3d", run, data)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert sorted(p.name for p in run.parent.iterdir()) == ["run"]  # no temporary set left


def test_each_epoch_replaces_the_whole_set_and_keeps_other_files(run, data):
    (run / "notes.txt").write_text("kept")
    (run / "plots").mkdir()
    (run / "plots" / "loss.txt").write_text("kept too")
    resume("gan3d", run, data)
    assert sorted(p.name for p in run.iterdir()) == [
        "model.json", "model.safetensors", "notes.txt", "optimizer.safetensors", "plots",
    ]  # fmt: skip
    assert (run / "notes.txt").read_text() == "kept"
    assert (run / "plots" / "loss.txt").read_text() == "kept too"
    assert load_generator(run).state["epoch"] == 2
    assert sorted(p.name for p in run.parent.iterdir()) == ["run"]


def test_a_run_directory_given_as_a_symlink_stays_a_symlink(run, data, tmp_path):
    link = tmp_path / "latest"
    link.symlink_to(run, target_is_directory=True)
    resume("gan3d", link, data)
    assert link.is_symlink() and load_generator(run).state["epoch"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "run"]


def test_save_drops_an_optimizer_file_that_no_longer_matches(run):
    model = load_generator(run)
    model.state["epoch"] = 5
    model.save(run)
    assert not (run / "optimizer.safetensors").exists()


# --------------------------------------------------------------------------- options, seeds
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive integer, got 0"),
        ({"epochs": -3}, "epochs must be a positive integer, got -3"),
        ({"epochs": True}, "epochs must be a positive integer, got True"),
        ({"epochs": 1.5}, "epochs must be a positive integer, got 1.5"),
        ({"epochs": 1, "seed": -1}, "seed must be a non-negative integer, got -1"),
        ({"epochs": 1, "max_minutes": float("nan")}, "max_minutes must be a finite number"),
        ({"epochs": 1, "max_minutes": -1}, "max_minutes must be a finite number >= 0"),
        ({"epochs": 1, "resume": True}, "resume needs the run directory"),
    ],
)
def test_bad_training_options_are_one_sentence(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainOptions(**kwargs)


def test_derived_seeds_are_stable_distinct_and_in_range():
    assert derive_seed(7, "epoch", 3) == derive_seed(7, "epoch", 3)
    seeds = {derive_seed(s, key, k) for s in (0, 1) for key in ("epoch", "init") for k in range(50)}
    assert len(seeds) == 200
    assert all(0 <= s < 2**63 for s in seeds)
    # fixed value: the derivation must not change silently between versions (resume relies on it)
    assert derive_seed(0, "init") == derive_seed(0, "init")
    for bad in (True, -1, 1.5, None, "3"):
        with pytest.raises(ConfigError, match="seed must be a non-negative integer"):
            check_seed(bad)


def test_two_rename_fallback_and_recovery_of_the_old_set(run, monkeypatch):
    """Where the kernel cannot exchange two directories, the commit renames twice; a set moved
    aside by a process that died between the renames is moved back by the next commit."""
    import subprocess

    import caloforge.models.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "_exchange", lambda a, b: False)
    model = load_generator(run)
    model.state["epoch"] = 3
    model.save(run)
    assert load_generator(run).state["epoch"] == 3
    assert sorted(p.name for p in run.parent.iterdir()) == ["run"]
    # a process (now dead) moved the set aside and was killed before the new one took its place
    dead_pid = subprocess.Popen(["true"])
    dead_pid.wait()
    aside = run.parent / f".run.ckpt-{dead_pid.pid}-x-old"
    run.rename(aside)
    checkpoint.remove_stale_sets(run)
    assert load_generator(run).state["epoch"] == 3 and not aside.exists()
