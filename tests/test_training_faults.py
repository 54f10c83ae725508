"""Fault injection: training that dies during a checkpoint commit (at each of its points) or is
killed with SIGKILL at random moments, then resumed, ends with exactly the weights of an
uninterrupted run, and leaves no temporary files once it has finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import caloforge.models.checkpoint as checkpoint
from caloforge.geometry import get_geometry
from caloforge.models import model_class
from caloforge.testing import toy_showers

CONFIG = {"latent_dim": 4, "gen_channels": [4, 2], "disc_channels": [2, 2], "batch_size": 4}
EPOCHS = 4
GEO = get_geometry("grid:8x4x4")
TRAIN = toy_showers(GEO, np.geomspace(1e3, 1e5, 16), seed=1)


def assert_same_sets(a: Path, b: Path) -> None:
    for name in ("model.safetensors", "optimizer.safetensors"):
        ta, tb = load_file(a / name), load_file(b / name)
        assert ta.keys() == tb.keys()
        assert all(torch.equal(ta[k], tb[k]) for k in ta), name


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> tuple[Path, float]:
    """The uninterrupted run (seed 9) and how many seconds it took."""
    out = tmp_path_factory.mktemp("straight") / "run"
    t0 = time.monotonic()
    model_class("gan3d")(GEO, CONFIG).fit(TRAIN, out_dir=out, epochs=EPOCHS, seed=9, progress=False)
    return out, time.monotonic() - t0


class Death(BaseException):
    """The process dies here: nothing after it runs, no cleanup (rmtree is disabled)."""


#: the points of a commit: before each file is written, before the swap, before the old set is
#: removed
POINTS = ("model.safetensors", "model.json", "optimizer.safetensors", "swap", "cleanup")


@pytest.mark.parametrize("point", POINTS)
def test_death_at_each_point_of_a_commit_then_resume(point, straight, tmp_path, monkeypatch):
    geo, train = GEO, TRAIN
    out = tmp_path / "run"
    model = model_class("gan3d")(geo, CONFIG)
    commits = []
    real_commit = checkpoint.commit_set

    def dying_commit(directory, writers):
        commits.append(directory)
        if len(commits) < 2:  # epoch 1 commits normally; the process dies in epoch 2's commit
            return real_commit(directory, writers)

        def die_before(name, write):
            def wrapped(path):
                if name == point:
                    raise Death
                return write(path)

            return wrapped

        monkeypatch.setattr(checkpoint.shutil, "rmtree", lambda *a, **k: None)
        if point == "swap":
            monkeypatch.setattr(checkpoint, "_exchange", lambda a, b: _raise(Death))
        if point == "cleanup":
            monkeypatch.setattr(checkpoint.shutil, "rmtree", lambda *a, **k: _raise(Death))
        return real_commit(directory, {n: die_before(n, w) for n, w in writers.items()})

    monkeypatch.setattr("caloforge.models.base.commit_set", dying_commit)
    with pytest.raises(Death):
        model.fit(train, out_dir=out, epochs=EPOCHS, seed=9, progress=False)
    monkeypatch.undo()
    # what is on disk is one whole set: epoch 1, or epoch 2 when death came after the swap
    on_disk = json.loads((out / "model.json").read_text())["state"]["epoch"]
    assert on_disk == (2 if point == "cleanup" else 1)
    # the dead process could not clean up; its temporary set carries its pid, which (the
    # process being really dead) no longer runs: give it the pid of a finished process
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".run.ckpt-")]
    assert len(leftovers) == 1
    finished = subprocess.Popen(["true"])
    finished.wait()
    suffix = leftovers[0].name.split("-", 2)[2]
    leftovers[0].rename(tmp_path / f".run.ckpt-{finished.pid}-{suffix}")
    model_class("gan3d")(geo, CONFIG).fit(
        train, out_dir=out, epochs=EPOCHS, resume=True, progress=False
    )
    assert_same_sets(straight[0], out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # removed by a commit


def _raise(exc: type[BaseException]) -> None:
    raise exc


CHILD = """
import json, sys, numpy as np, torch
from pathlib import Path
torch.set_num_threads(int(sys.argv[4]))  # CPU results depend on the thread count: the parent's
from caloforge.geometry import get_geometry
from caloforge.models import model_class
from caloforge.testing import toy_showers
config, epochs, out = json.loads(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
geo = get_geometry("grid:8x4x4")
train = toy_showers(geo, np.geomspace(1e3, 1e5, 16), seed=1)
model = model_class("gan3d")(geo, config)
print("ready", flush=True)
model.fit(train, out_dir=out, epochs=epochs, seed=9, resume=(out / "model.json").exists(),
          progress=False)
"""


def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_weights(straight, tmp_path):
    span = straight[1]  # the kills are spread over a training's duration
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    rng = np.random.default_rng(0)  # the kill moments: fixed, spread over the training
    kills = 0
    for attempt in range(8):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                json.dumps(CONFIG),
                str(EPOCHS),
                str(out),
                str(torch.get_num_threads()),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        if attempt < 2:
            time.sleep(rng.uniform(0.1, 0.7) * span)
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, err
        kills += 1
        if (out / "model.json").exists():  # whatever was left must be one whole set
            epoch = json.loads((out / "model.json").read_text())["state"]["epoch"]
            assert 1 <= epoch <= EPOCHS
    assert proc.returncode == 0 and kills >= 1

    assert_same_sets(straight[0], out)
    # the killed processes' temporary sets were removed by the later commits
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
