"""The QVAE's prior refit phase (option ``prior_refit_steps``): it changes only the prior, is
seeded, is stored in the checkpoint, and a resumed run continues from the trained prior, so
that it ends bit-identical to the uninterrupted run."""

from __future__ import annotations

import pytest
import torch

from caloforge.errors import ConfigError
from caloforge.geometry import get_geometry
from caloforge.io import Showers
from caloforge.models.base import load_generator
from caloforge.models.qvae import PRIOR_REFIT_KEY, QVAE
from caloforge.models.qvae_prior_refit import RefitSettings, refit_prior
from caloforge.refsim import simulate

TINY = {
    "units_per_partition": 8,
    "hidden": 32,
    "batch_size": 32,
    "lr": 3e-3,
    "diagnose_chains": 16,
    "diagnose_sweeps": 32,
}
REFIT = {**TINY, "prior_refit_steps": 12, "prior_refit_batch": 64, "prior_refit_sweeps": 4}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def photons() -> Showers:
    return simulate("ds1-photons", "photon", "loguniform:1e3:1e5", n=96, seed=4)


def weights(model: QVAE) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.weight_tensors().items()}


def test_refit_changes_only_the_prior_and_is_seeded(photons):
    model = QVAE(get_geometry("ds1-photons"), TINY)
    model.fit(photons, epochs=1, seed=0, progress=False)
    before = weights(model)
    assert model.prior is not None
    snapshot = {k: v.clone() for k, v in model.prior.state_dict().items()}
    settings = RefitSettings(steps=10, sweeps=4, batch=64)
    summary = refit_prior(model, photons, settings, seed=3)
    after = weights(model)
    prior_keys = {k for k in before if k.startswith("prior.")}
    assert prior_keys, "the prior's parameters are saved under prior."
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= prior_keys
    assert summary["steps"] == 10 and len(summary["max_coupler_moment_mismatch_first_last"]) == 2
    # the same seed from the same start gives the same prior, bit for bit
    model.prior.load_state_dict(snapshot)
    refit_prior(model, photons, settings, seed=3)
    assert all(torch.equal(after[k], v) for k, v in weights(model).items())


def test_training_with_a_refit_stores_it_and_generation_uses_the_refitted_prior(photons, tmp_path):
    plain = QVAE(get_geometry("ds1-photons"), TINY)
    plain.fit(photons, epochs=1, seed=0, progress=False)
    model = QVAE(get_geometry("ds1-photons"), REFIT)
    model.fit(photons, out_dir=tmp_path, epochs=1, seed=0, progress=False)
    assert model.state[PRIOR_REFIT_KEY]["steps"] == 12
    # everything but the prior is what training without the refit gives
    a, b = weights(plain), weights(model)
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("prior."))
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("prior."))
    loaded = load_generator(tmp_path)
    assert all(torch.equal(v, b[k]) for k, v in weights(loaded).items())
    assert loaded.state[PRIOR_REFIT_KEY] == model.state[PRIOR_REFIT_KEY]


def test_an_interrupted_and_resumed_run_with_a_refit_equals_the_uninterrupted_one(
    photons, tmp_path
):
    whole = QVAE(get_geometry("ds1-photons"), REFIT)
    whole.fit(photons, out_dir=tmp_path / "whole", epochs=2, seed=0, progress=False)
    cut = QVAE(get_geometry("ds1-photons"), REFIT)
    save = cut.save_checkpoint

    def save_then_stop(*args, **kwargs):  # Ctrl-C right after the first checkpoint
        save(*args, **kwargs)
        raise KeyboardInterrupt

    cut.save_checkpoint = save_then_stop  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        cut.fit(photons, out_dir=tmp_path / "cut", epochs=2, seed=0, progress=False)
    resumed = load_generator(tmp_path / "cut")
    assert PRIOR_REFIT_KEY not in resumed.state  # the refit runs once, at the end
    resumed.fit(photons, out_dir=tmp_path / "cut", epochs=2, seed=0, resume=True, progress=False)
    a, b = weights(whole), weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.state[PRIOR_REFIT_KEY] == whole.state[PRIOR_REFIT_KEY]


def test_continuing_a_finished_run_trains_on_from_the_trained_prior(photons, tmp_path):
    """The optimizer file keeps the prior as training left it: continued to more epochs, the
    run with a refit trains its encoder and decoder exactly as the run without one."""
    runs = {}
    for name, config in (("plain", TINY), ("refit", REFIT)):
        model = QVAE(get_geometry("ds1-photons"), config)
        model.fit(photons, out_dir=tmp_path / name, epochs=1, seed=0, progress=False)
        more = load_generator(tmp_path / name)
        more.fit(photons, out_dir=tmp_path / name, epochs=2, seed=0, resume=True, progress=False)
        runs[name] = weights(more)
    a, b = runs["plain"], runs["refit"]
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("prior."))
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("prior."))


@pytest.mark.parametrize(
    ("option", "value"),
    [("prior_refit_steps", -1), ("prior_refit_sweeps", 0), ("prior_refit_lr", 0.0)],
)
def test_bad_refit_options_are_one_sentence(option, value):
    with pytest.raises(ConfigError, match=option):
        QVAE(get_geometry("ds1-photons"), {**TINY, option: value})
