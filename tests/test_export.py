"""Export round trips (TorchScript, ONNX; fp32, fp16, int8) and clear errors on bad artifacts.

Tolerances checked here are the library defaults (caloforge.export.verify.TOLERANCES):
worst per-shower max |exported - original| / peak voxel energy <= 1e-4 (fp32), 2e-2 (fp16);
worst per-shower total-energy error and mean-profile error <= 1e-4 (fp32), 1e-2 (fp16),
5e-2 (int8); for int8 the peak error is only reported (here also asserted < 0.1).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from caloforge.errors import CheckpointError, ConfigError
from caloforge.export import (
    TOLERANCES,
    compare_showers,
    export_model,
    load_artifact,
)
from caloforge.geometry import get_geometry
from caloforge.io import write_showers
from caloforge.models.base import Generator, register_model


class _TinyNet(torch.nn.Module):
    """(z (N, latent), E (N, 1) MeV) -> (N, V) MeV: an MLP giving energy fractions times E."""

    def __init__(self, latent_dim: int, hidden: int, n_voxels: int, fixed_batch=False) -> None:
        super().__init__()
        self.fixed_batch = fixed_batch
        self.body = torch.nn.Sequential(
            torch.nn.Linear(latent_dim + 1, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, n_voxels),
        )

    def forward(self, z: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        cond = torch.log(e_inc / 1000.0) / 7.0
        logits = self.body(torch.cat([z, cond], dim=1))
        if self.fixed_batch:  # a Python int: tracing bakes the batch size into the graph
            logits = logits + torch.zeros(int(z.shape[0]), 1)
        return torch.softmax(logits, dim=1) * e_inc


@register_model("tiny-mlp")
class TinyMLP(Generator):
    """A test-only generator with Linear layers, so that quantization has work to do."""

    @classmethod
    def default_config(cls):
        return {
            "latent_dim": 8,
            "hidden": 32,
            "init_seed": 0,
            "sharpness": 1.0,
            "fixed_batch": False,
        }

    def __init__(self, geometry, config=None):
        super().__init__(geometry, config)
        torch.manual_seed(self.config["init_seed"])
        c = self.config
        self.net = _TinyNet(c["latent_dim"], c["hidden"], geometry.n_voxels, c["fixed_batch"])
        with torch.no_grad():  # > 1: more peaked energy fractions (int8 errors grow with it)
            self.net.body[-1].weight.mul_(self.config["sharpness"])

    def modules(self):
        return {"net": self.net}

    def fit(self, train, val=None, **kwargs):
        return {}

    def latent_inputs(self, incident_energies, *, seed=0):
        e = torch.as_tensor(np.asarray(incident_energies), dtype=torch.float32).reshape(-1, 1)
        g = torch.Generator().manual_seed(seed)
        return torch.randn(len(e), self.config["latent_dim"], generator=g), e

    def inference_module(self):
        return self.net

    def sample(self, incident_energies, *, seed=0, batch_size=1024):
        with torch.no_grad():
            return self.net(*self.latent_inputs(incident_energies, seed=seed)).numpy()


def make_run(tmp_path: Path, geometry: str = "calogan") -> Path:
    """Save an (untrained) tiny model as a run directory."""
    return TinyMLP(get_geometry(geometry)).save(tmp_path / "run")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def onnx_fp32(run_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx32") / "art"
    export_model(run_dir, out, fmt="onnx", precision="fp32", n_check=32)
    return out


def _fresh_outputs(run_dir: Path, artifact_dir: Path, seed: int = 5):
    """Original and exported showers on the same new latent inputs (not the check's)."""
    from caloforge.models import load_generator

    model = load_generator(run_dir)
    energies = np.geomspace(1e3, 1e6, 40)
    inputs = model.latent_inputs(energies, seed=seed)
    with torch.no_grad():
        original = model.inference_module()(*inputs).numpy()
    return original, load_artifact(artifact_dir).run(*inputs)


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_fp32_round_trip_agrees_within_fp32_tolerance(run_dir, tmp_path, fmt, onnx_fp32):
    out = onnx_fp32 if fmt == "onnx" else tmp_path / "art"
    if fmt == "torchscript":
        export_model(run_dir, out, fmt=fmt, precision="fp32", n_check=32)
    artifact = load_artifact(out)
    assert artifact.check.passed and artifact.check.peak_error <= 1e-4
    original, exported = _fresh_outputs(run_dir, out)
    assert exported.shape == (40, 504)
    result = compare_showers(original, exported, TOLERANCES["fp32"])
    assert result.passed, result.summary()
    # and the showers are the model's: a different seed's inputs do not reproduce them
    other = compare_showers(original, _fresh_outputs(run_dir, out, seed=6)[1], TOLERANCES["fp32"])
    assert not other.passed


def test_artifact_json_describes_model(onnx_fp32):
    meta = json.loads((onnx_fp32 / "artifact.json").read_text())
    assert meta["format"] == "onnx" and meta["precision"] == "fp32"
    assert [i["name"] for i in meta["inputs"]] == ["latent_0", "incident_energy"]
    assert [i["role"] for i in meta["inputs"]] == ["normal", "incident_energy"]
    assert meta["output"]["shape"] == ["N", 504] and meta["geometry"]["name"] == "calogan"
    assert (onnx_fp32 / "inputs.txt").read_text().splitlines()[1:] == [
        "latent_0 8 normal",
        "incident_energy 1 incident_energy",
    ]
    voxels = np.loadtxt(onnx_fp32 / "voxels.txt")
    assert voxels.shape == (504, 4) and np.array_equal(np.unique(voxels[:, 0]), [0, 1, 2])


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_int8_dynamic_runs_and_agrees_within_int8_tolerance(run_dir, tmp_path, fmt):
    out = tmp_path / "int8"
    artifact = export_model(run_dir, out, fmt=fmt, precision="int8", n_check=32)
    assert artifact.quantization == "dynamic"
    assert artifact.check.passed, artifact.check.summary()
    original, exported = _fresh_outputs(run_dir, out)
    result = compare_showers(original, exported, TOLERANCES["int8"], get_geometry("calogan"))
    assert result.passed, result.summary()
    assert result.profile_error < 5e-2 and result.total_energy_error < 5e-2
    assert result.peak_error < 0.1  # on this smooth toy model even the worst voxel is close
    assert result.peak_error > 1e-6  # it really is quantized, not the fp32 graph
    if fmt == "onnx":
        ops = {n.op_type for n in __import__("onnx").load(str(out / "model.onnx")).graph.node}
        assert "DynamicQuantizeLinear" in ops or "MatMulInteger" in ops


def test_int8_static_with_calibration_file(run_dir, tmp_path):
    rng = np.random.default_rng(0)
    energies = np.exp(rng.uniform(np.log(1e3), np.log(1e6), 64))
    ref = tmp_path / "ref.h5"
    write_showers(ref, energies, rng.random((64, 504)).astype(np.float32), geometry="calogan")
    out = tmp_path / "static"
    artifact = export_model(run_dir, out, precision="int8", calibration=ref, n_check=32)
    assert artifact.quantization == "static" and artifact.meta["calibration"]["n_showers"] == 64
    assert artifact.meta["fp32_nodes"]  # the output layer stays fp32
    assert artifact.check.passed, artifact.check.summary()


def test_onnx_fp16_round_trip(run_dir, tmp_path):
    artifact = export_model(run_dir, tmp_path / "fp16", precision="fp16", n_check=32)
    assert artifact.check.passed, artifact.check.summary()
    graph = __import__("onnx").load(str(tmp_path / "fp16" / "model.onnx")).graph
    assert sum(t.data_type == 10 for t in graph.initializer) >= 3  # fp16 weights of 3 Gemms
    original, exported = _fresh_outputs(run_dir, tmp_path / "fp16")
    assert compare_showers(original, exported, TOLERANCES["fp16"]).passed


def test_torchscript_fp16_round_trip(run_dir, tmp_path):
    artifact = export_model(run_dir, tmp_path / "ts16", fmt="torchscript", precision="fp16")
    assert artifact.check.passed and artifact.meta["fp32_layers"] == []
    original, exported = _fresh_outputs(run_dir, tmp_path / "ts16")
    result = compare_showers(original, exported, TOLERANCES["fp16"], get_geometry("calogan"))
    assert result.passed and result.peak_error > 1e-6, result.summary()


def test_fp16_keeps_nodes_seeing_mev_values_in_fp32(tmp_path):
    from caloforge.export.onnx_export import convert_onnx_fp16, onnx_session, save_onnx

    class RawEnergy(torch.nn.Module):  # the first layer sees the energy in MeV (up to 1e6)
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)

        def forward(self, z, e):
            return self.b(torch.tanh(self.a(torch.cat([z, e], 1)) * 1e-6))

    module = RawEnergy()
    z, e = torch.randn(5, 2), torch.tensor([[1e3], [1e4], [1e5], [5e5], [1e6]])
    save_onnx(module, (z, e), tmp_path / "f.onnx", ["z", "e"])
    kept = convert_onnx_fp16(
        tmp_path / "f.onnx", tmp_path / "h.onnx", [{"z": z.numpy(), "e": e.numpy()}]
    )
    assert len(kept) == 1  # the first Gemm; the second runs in fp16
    out = onnx_session(tmp_path / "h.onnx").run(None, {"z": z.numpy(), "e": e.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(out, module(z, e).numpy(), atol=2e-3)


# --------------------------------------------------------------------------- bad input
def test_corrupt_onnx_file_gives_one_sentence(onnx_fp32, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    meta = json.loads((onnx_fp32 / "artifact.json").read_text())
    (bad / "model.onnx").write_bytes((onnx_fp32 / "model.onnx").read_bytes()[:300])
    (bad / "artifact.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"model\.onnx: contents do not match the SHA-256"):
        load_artifact(bad)
    # with a matching checksum the file itself is judged
    from caloforge.export.artifact import sha256

    meta["sha256"] = sha256(bad / "model.onnx")
    (bad / "artifact.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"model\.onnx: not a valid ONNX model \(") as info:
        load_artifact(bad)
    assert "\n" not in str(info.value)


def _copy_with(src: Path, dst: Path, **changes) -> Path:
    dst.mkdir()
    (dst / "model.onnx").write_bytes((src / "model.onnx").read_bytes())
    meta = {**json.loads((src / "artifact.json").read_text()), **changes}
    (dst / "artifact.json").write_text(json.dumps(meta))
    return dst


def test_mismatched_artifact_json_gives_one_sentence(onnx_fp32, tmp_path):
    ds2 = get_geometry("ds2")
    wrong_geo = _copy_with(
        onnx_fp32, tmp_path / "g", geometry=ds2.to_dict(), output={"shape": ["N", 6480]}
    )
    with pytest.raises(
        CheckpointError,
        match=r"geometry 'ds2' with 6480 voxels but model\.onnx "
        r"outputs 504 voxels per shower",
    ):
        load_artifact(wrong_geo)
    meta = json.loads((onnx_fp32 / "artifact.json").read_text())
    meta["inputs"][1]["name"] = "energy"
    wrong_inputs = _copy_with(onnx_fp32, tmp_path / "i", inputs=meta["inputs"])
    with pytest.raises(
        CheckpointError,
        match=r"declares inputs \['latent_0', 'energy'\] but "
        r"model\.onnx takes \['latent_0', 'incident_energy'\]",
    ):
        load_artifact(wrong_inputs)
    no_fmt = _copy_with(onnx_fp32, tmp_path / "f", format="tflite")
    with pytest.raises(CheckpointError, match=r"format 'tflite' is not one of onnx, torchscript"):
        load_artifact(no_fmt)


def test_missing_or_corrupt_description(onnx_fp32, tmp_path):
    with pytest.raises(CheckpointError, match="not an exported model directory"):
        load_artifact(tmp_path / "nowhere")
    d = tmp_path / "d"
    d.mkdir()
    with pytest.raises(CheckpointError, match=r"artifact\.json: missing; is .* caloforge export"):
        load_artifact(d)
    (d / "artifact.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"artifact\.json: corrupt artifact description"):
        load_artifact(d)


def test_torchscript_mismatched_geometry(run_dir, tmp_path):
    out = tmp_path / "ts"
    export_model(run_dir, out, fmt="torchscript", n_check=8)
    meta = json.loads((out / "artifact.json").read_text())
    meta.update(geometry=get_geometry("ds1-photons").to_dict(), output={"shape": ["N", 368]})
    (out / "artifact.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"368 voxels but model\.pt outputs 504"):
        load_artifact(out)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_trace_that_bakes_in_the_batch_size_is_caught(tmp_path, fmt):
    model = TinyMLP(get_geometry("calogan"), {"fixed_batch": True})
    with pytest.raises(
        ConfigError,
        match=f"the {fmt} export of model 'tiny-mlp' fails on inputs "
        "other than those it was traced with",
    ):
        export_model(model, tmp_path / "x", fmt=fmt, n_check=8)


def test_bad_options_are_rejected(run_dir, tmp_path):
    with pytest.raises(ConfigError, match="unknown export format 'tflite'"):
        export_model(run_dir, tmp_path / "x", fmt="tflite")
    with pytest.raises(ConfigError, match="unknown precision 'int4'"):
        export_model(run_dir, tmp_path / "x", precision="int4")
    with pytest.raises(
        ConfigError, match="static int8 quantization is available for --format onnx"
    ):
        export_model(
            run_dir,
            tmp_path / "x",
            fmt="torchscript",
            precision="int8",
            calibration=tmp_path / "ref.h5",
        )
    with pytest.raises(CheckpointError, match="not a model directory"):
        export_model(tmp_path / "no-run", tmp_path / "x")


# --------------------------------------------------------------------------- declared roles
def test_declared_roles_name_inputs_too_small_to_tell_by_their_values():
    from caloforge.export.source import describe_inputs

    e = np.geomspace(1e3, 1e5, 16)
    g = torch.Generator().manual_seed(0)
    normal = torch.randn(16, 1, generator=g)  # 16 values: too few to test as normal(0, 1)
    inputs = (normal, torch.rand(16, 1, generator=g) * 3.0, torch.as_tensor(e).reshape(-1, 1))
    names = ["response_normal", "odd", "incident_energy"]
    undeclared = describe_inputs(inputs, e, names)
    assert [s.role for s in undeclared] == ["other", "other", "incident_energy"]
    # declared roles are taken where the values agree; a "uniform" outside [0, 1] is not one
    declared = describe_inputs(inputs, e, names, ["normal", "uniform", None])
    assert [s.role for s in declared] == ["normal", "other", "incident_energy"]


@pytest.mark.parametrize("layer_head", [False, True])
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_qvae_export_names_every_input_by_its_role(tmp_path, fmt, layer_head):
    from caloforge.models.qvae import QVAE
    from caloforge.refsim import simulate

    showers = simulate("ds1-photons", "photon", "loguniform:1e3:1e5", n=64, seed=3)
    config = {
        "units_per_partition": 4, "hidden": 8, "batch_size": 16, "diagnose_prior": False,
        "layer_head": layer_head,
    }  # fmt: skip
    QVAE(get_geometry("ds1-photons"), config).fit(
        showers, out_dir=tmp_path / "run", epochs=1, seed=0, progress=False
    )
    export_model(tmp_path / "run", tmp_path / "art", fmt=fmt, n_check=16)
    artifact = load_artifact(tmp_path / "art")
    assert artifact.check.passed  # the exported decoder, response (and layer) head included
    roles = {s.name: s.role for s in artifact.inputs}
    assert roles == {
        "prior_z": "binary",
        "hit_uniform": "uniform",
        "energy_normal": "normal",
        "response_normal": "normal",
        **({"layer_normal": "normal"} if layer_head else {}),
        "incident_energy": "incident_energy",
    }
