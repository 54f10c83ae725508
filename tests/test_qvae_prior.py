"""QVAE prior diagnostics: the library call, the sweep count training stores and generation uses,
``caloforge describe RUN --prior``, and checkpoints without a stored count."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from caloforge.cli import main
from caloforge.errors import ConfigError
from caloforge.geometry import get_geometry
from caloforge.io import Showers
from caloforge.models.base import load_generator
from caloforge.models.qvae import (
    PRIOR_SWEEPS_KEY,
    QVAE,
    GaussianVAE,
    energy_feature,
    thermometer_code,
)
from caloforge.refsim import simulate

TINY = {
    "units_per_partition": 8,
    "hidden": 32,
    "batch_size": 32,
    "lr": 3e-3,
    "gibbs_sweeps_sample": 7,
    # a small end-of-training measurement keeps these tests at seconds
    "diagnose_chains": 16,
    "diagnose_sweeps": 32,
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matrices: torch's thread pool only adds contention on a loaded machine (the
    diagnostics here ran ~40x slower with 2 threads under load 6 on 2 cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def photons() -> Showers:
    return simulate("ds1-photons", "photon", "loguniform:1e3:1e5", n=128, seed=4)


@pytest.fixture(scope="module")
def trained(photons, tmp_path_factory):
    out = tmp_path_factory.mktemp("qvae-prior")
    model = QVAE(get_geometry("ds1-photons"), TINY)
    model.fit(photons, out_dir=out, epochs=1, seed=0, progress=False)
    return model, out


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["caloforge", *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (0 if code is None else int(code)), captured.out, captured.err


def test_training_stores_the_measured_sweeps_and_generation_uses_them(trained):
    model, out = trained
    sweeps = model.state[PRIOR_SWEEPS_KEY]
    assert isinstance(sweeps, int) and sweeps >= 1
    summary = model.state["prior_diagnostics"]
    assert summary["recommended_sweeps"] == sweeps
    assert np.isfinite(summary["kl_product_nats"]) and "decoder_total_energy" in summary["tau"]
    meta = json.loads((out / "model.json").read_text())
    assert meta["state"][PRIOR_SWEEPS_KEY] == sweeps
    loaded = load_generator(out)
    assert loaded.generation_sweeps == sweeps
    loaded.set_sampler("gibbs")
    assert loaded.prior_description["sampler"]["n_sweeps"] == sweeps
    # an explicit count still wins
    loaded.set_sampler("gibbs", n_sweeps=3)
    assert loaded.prior_description["sampler"]["n_sweeps"] == 3
    # the re-committed set keeps the optimizer file, so the run can resume
    assert (out / "optimizer.safetensors").exists()


def test_checkpoint_without_a_measured_count_keeps_the_config_default(trained, tmp_path):
    _, out = trained
    for name in ("model.json", "model.safetensors", "optimizer.safetensors"):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    meta = json.loads((tmp_path / "model.json").read_text())
    del meta["state"][PRIOR_SWEEPS_KEY], meta["state"]["prior_diagnostics"]
    (tmp_path / "model.json").write_text(json.dumps(meta))
    old = load_generator(tmp_path)
    assert old.generation_sweeps == TINY["gibbs_sweeps_sample"]
    assert old.prior_description["sampler"]["n_sweeps"] == TINY["gibbs_sweeps_sample"]


def test_resume_after_the_measurement_continues(trained, photons, tmp_path):
    _, out = trained
    for name in ("model.json", "model.safetensors", "optimizer.safetensors"):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    model = load_generator(tmp_path)
    model.fit(photons, out_dir=tmp_path, epochs=2, seed=0, resume=True, progress=False)
    assert model.state["epoch"] == 2 and model.state[PRIOR_SWEEPS_KEY] >= 1


def test_prior_diagnostics_are_seeded_and_name_every_observable(trained):
    model, _ = trained
    e = np.array([2e3, 3e4])
    a = model.prior_diagnostics(seed=5, energies=e)
    b = model.prior_diagnostics(seed=5, energies=e)
    assert a.to_dict() == b.to_dict()
    assert a.clamped_partitions == [0] and a.n_clamp_rows == 2
    assert {"energy", "magnetisation[1]", "decoder_total_energy"} <= set(a.mixing.tau)
    assert a.couplings.n_couplers > 0 and np.isfinite(a.kl.kl)
    text = "\n".join(a.summary_lines())
    assert "KL(prior || product of marginals)" in text and "recommended Gibbs sweeps" in text


@pytest.mark.parametrize("response_head", [True, False])
def test_decoder_observable_is_the_decoders_expected_energy_fraction(photons, response_head):
    """With the response head: the response of the head's mean logit; without it: the sum over
    voxels of P(hit) times the energy of the mean logit; each over E_inc read from the code."""
    model = QVAE(get_geometry("ds1-photons"), {**TINY, "response_head": response_head})
    model.fit(photons, epochs=1, seed=0, progress=False)
    e = np.array([2e3, 3e4])
    obs = model.decoder_energy_observable(e)
    bm = model.prior
    gen = torch.Generator().manual_seed(0)
    z = torch.bernoulli(torch.full((2, bm.n_units), 0.5), generator=gen)
    sl = bm.partition_slices[0]
    codes = thermometer_code(torch.tensor([[2e3], [3e4]]), len(bm.partitions[0]))
    z[:, sl] = codes
    got = obs(z)
    e_inc = torch.tensor([[2e3], [3e4]])
    with torch.no_grad():
        if response_head:
            r_mean = model.decoder.with_response(z, energy_feature(e_inc))[3]
            eps = model.codec.eps
            want = (torch.sigmoid(r_mean) - eps) / (1 - 2 * eps) * model.codec.scale
        else:
            hit, mean, _ = model.decoder(z, energy_feature(e_inc))
            want = model.codec.decode(torch.sigmoid(hit), mean, e_inc).sum(1) / e_inc.reshape(-1)
    torch.testing.assert_close(got, want)


def test_the_gaussian_baseline_has_no_prior_to_diagnose():
    with pytest.raises(ConfigError, match="Gaussian prior"):
        GaussianVAE(get_geometry("ds1-photons"), TINY).prior_diagnostics(seed=0)


def test_cli_describe_prior(trained, monkeypatch, capsys):
    _, out = trained
    code, text, _ = run_cli(monkeypatch, capsys, "describe", str(out), "--prior", "--seed", "2")
    assert code == 0
    assert "KL(prior || product of marginals)" in text
    assert "measured at the end of training" in text


def test_cli_describe_prior_refuses_the_gaussian_vae(photons, tmp_path, monkeypatch, capsys):
    vae = GaussianVAE(get_geometry("ds1-photons"), TINY)
    vae.save(tmp_path / "vae")
    code, _, err = run_cli(monkeypatch, capsys, "describe", str(tmp_path / "vae"), "--prior")
    assert code == 2
    assert err.strip().startswith("error:") and "no Boltzmann prior" in err
    assert "Traceback" not in err


def test_prior_lr_scale_gives_the_prior_its_own_rate(photons):
    geo = get_geometry("ds1-photons")
    plain = QVAE(geo, TINY).training_plan(photons, None, seed=0, fresh=True)
    assert [g["lr"] for g in plain.optimizers["adam"].param_groups] == [TINY["lr"]]
    model = QVAE(geo, {**TINY, "prior_lr_scale": 10.0})
    groups = model.training_plan(photons, None, seed=0, fresh=True).optimizers["adam"].param_groups
    assert [g["lr"] for g in groups] == [TINY["lr"], 10.0 * TINY["lr"]]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.prior.parameters()}


@pytest.mark.parametrize("weight", [1.0, 0.25])
def test_kl_weight_scales_the_kl_term_after_the_warm_up(photons, weight):
    from caloforge.models.training import StepContext

    model = QVAE(get_geometry("ds1-photons"), {**TINY, "kl_weight": weight, "kl_warmup": 0.5})
    plan = model.training_plan(photons, None, seed=0, fresh=True)
    # at fraction 0.25 the warm-up is half way: weight / 2; from 0.5 on: weight
    for fraction, expected in ((0.25, 0.5 * weight), (0.75, weight)):
        ctx = StepContext(0, 0, 4, 4, fraction, torch.Generator().manual_seed(3), 3)
        parts = plan.step(torch.arange(32), ctx)
        total = parts["bce"] + parts["nll"] + expected * parts["kl"]
        # float32 sums of O(100)-nat terms: a relative 1e-5 is ~100 ulps, and a wrong weight
        # (off by >= 25 % of |kl| ~ tens of nats) misses by orders of magnitude more
        assert parts["loss"] == pytest.approx(total, rel=1e-5, abs=1e-3)
