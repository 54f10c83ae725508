"""The exported artifact: a directory holding one model file and ``artifact.json``.

::

    OUT/
      model.onnx | model.pt    the inference module (ONNX graph or TorchScript)
      artifact.json            format, precision, inputs, output, geometry, source model,
                               SHA-256 of the model file, the export check
      inputs.txt               one line per input: name, values per shower, role (for C++)
      voxels.txt               one line per output voxel: layer position, layer id, x, y (mm)

``artifact.json`` is written last, so an interrupted export leaves no loadable artifact.
:func:`load_artifact` checks that the pieces belong together: a corrupt or replaced model
file, a description that does not match the graph, or a missing field each give one
:class:`~caloforge.errors.CheckpointError` sentence.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from caloforge import __version__
from caloforge.errors import CheckpointError, ConfigError, GeometryError
from caloforge.export.source import InputSpec
from caloforge.export.verify import CheckResult
from caloforge.geometry import Geometry
from caloforge.ioutil import atomic_path

ARTIFACT_FILE = "artifact.json"
INPUTS_FILE = "inputs.txt"
VOXELS_FILE = "voxels.txt"
MODEL_FILES = {"onnx": "model.onnx", "torchscript": "model.pt"}
PRECISIONS = ("fp32", "fp16", "int8")
_REQUIRED = ("format", "precision", "model_file", "sha256", "inputs", "output", "geometry")


def sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Artifact:
    """A loaded export, ready to run.

    Attributes:
        directory: where it was loaded from.
        format: ``onnx`` or ``torchscript``.
        precision: ``fp32``, ``fp16`` or ``int8``.
        quantization: ``dynamic`` or ``static`` for int8, else ``None``.
        inputs: the inputs in call order.
        geometry: the readout geometry of the output voxels.
        meta: the whole ``artifact.json``.
    """

    directory: Path
    format: str
    precision: str
    quantization: str | None
    inputs: list[InputSpec]
    geometry: Geometry
    meta: dict[str, Any] = field(repr=False)
    _runner: Any = field(repr=False, default=None)
    device: str = "cpu"

    @property
    def model_path(self) -> Path:
        return self.directory / self.meta["model_file"]

    @property
    def file_size(self) -> int:
        """Size of the model file in bytes."""
        return self.model_path.stat().st_size

    @property
    def check(self) -> CheckResult | None:
        """The export-time comparison with the original model, if recorded."""
        c = self.meta.get("check")
        return CheckResult.from_dict(c) if c else None

    @property
    def label(self) -> str:
        q = f" ({self.quantization})" if self.quantization else ""
        return f"{self.format} {self.precision}{q}"

    def run(self, *inputs) -> np.ndarray:
        """Generate: one array or tensor per input (first dim N) -> (N, V) float32, MeV."""
        if len(inputs) != len(self.inputs):
            raise ConfigError(
                f"{self.directory}: the model takes {len(self.inputs)} inputs "
                f"({', '.join(s.name for s in self.inputs)}), got {len(inputs)}"
            )
        if self.format == "onnx":
            from caloforge.export.onnx_export import run_session

            arrays = [
                np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=spec.dtype)
                for x, spec in zip(inputs, self.inputs, strict=True)
            ]
            return run_session(self._runner, arrays)
        from caloforge.export.torchscript import run_torch

        return run_torch(self._runner, inputs, self.device)


def write_artifact(
    directory: Path,
    *,
    fmt: str,
    precision: str,
    quantization: str | None,
    inputs: list[InputSpec],
    geometry: Geometry,
    source: dict[str, Any],
    check: CheckResult | None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``inputs.txt``, ``voxels.txt`` and last ``artifact.json`` beside the model file."""
    model_file = MODEL_FILES[fmt]
    meta = {
        "format": fmt,
        "precision": precision,
        "quantization": quantization,
        "model_file": model_file,
        "sha256": sha256(directory / model_file),
        "inputs": [s.to_dict() for s in inputs],
        "output": {"name": "showers", "shape": ["N", geometry.n_voxels], "unit": "MeV"},
        "geometry": geometry.to_dict(),
        "source": source,
        "check": check.to_dict() if check else None,
        "caloforge_version": __version__,
        **(extra or {}),
    }
    lines = ["# name  values_per_shower  role  (caloforge export; roles: see docs/deployment.md)"]
    lines += [f"{s.name} {int(np.prod(s.shape, dtype=int))} {s.role}" for s in inputs]
    with atomic_path(directory / INPUTS_FILE) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    xy = geometry.voxel_centres
    layer = geometry.voxel_layer
    ids = np.asarray(geometry.layer_ids)[layer]
    with atomic_path(directory / VOXELS_FILE) as tmp:
        with open(tmp, "w") as f:
            f.write("# layer_position layer_id x_mm y_mm  (voxel centres in the layer plane)\n")
            np.savetxt(f, np.column_stack([layer, ids, xy]), fmt=["%d", "%d", "%.4f", "%.4f"])
    with atomic_path(directory / ARTIFACT_FILE) as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    return directory / ARTIFACT_FILE


def read_artifact_meta(directory: str | os.PathLike) -> dict[str, Any]:
    """``artifact.json`` of an export directory, checked for its fields and values."""
    directory = Path(directory)
    path = directory / ARTIFACT_FILE
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not an exported model directory (no {ARTIFACT_FILE})")
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: missing; is {directory} the output of caloforge export "
            "(or was the export interrupted)?"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt artifact description ({exc})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise CheckpointError(f"{path}: missing field(s) {', '.join(missing)}")
    if meta["format"] not in MODEL_FILES:
        raise CheckpointError(
            f"{path}: format {meta['format']!r} is not one of {', '.join(MODEL_FILES)}"
        )
    if meta["precision"] not in PRECISIONS:
        raise CheckpointError(
            f"{path}: precision {meta['precision']!r} is not one of {', '.join(PRECISIONS)}"
        )
    return meta


def load_artifact(
    directory: str | os.PathLike, *, threads: int | None = None, device: str = "cpu"
) -> Artifact:
    """Load and check an export directory written by :func:`caloforge.export.export_model`.

    Raises:
        CheckpointError: missing or corrupt files, a model file that does not match its
            checksum, or an ``artifact.json`` that does not describe the model file.
    """
    directory = Path(directory)
    meta = read_artifact_meta(directory)
    desc = directory / ARTIFACT_FILE
    model_path = directory / str(meta["model_file"])
    if not model_path.is_file():
        raise CheckpointError(f"{model_path}: missing, although {desc} names it")
    if sha256(model_path) != meta["sha256"]:
        raise CheckpointError(
            f"{model_path}: contents do not match the SHA-256 in {desc}; the file is corrupt "
            "or was replaced"
        )
    try:
        inputs = [InputSpec.from_dict(d) for d in meta["inputs"]]
        geometry = Geometry.from_dict(meta["geometry"])
        n_out = int(meta["output"]["shape"][1])
    except (KeyError, TypeError, ValueError, IndexError, GeometryError) as exc:
        raise CheckpointError(f"{desc}: malformed inputs, output or geometry ({exc})") from None
    if n_out != geometry.n_voxels:
        raise CheckpointError(
            f"{desc}: output has {n_out} voxels but geometry {geometry.name!r} has "
            f"{geometry.n_voxels}"
        )
    runner = (_open_onnx if meta["format"] == "onnx" else _open_torchscript)(
        model_path, desc, inputs, geometry, threads=threads, device=device
    )
    return Artifact(
        directory,
        meta["format"],
        meta["precision"],
        meta.get("quantization"),
        inputs,
        geometry,
        meta,
        runner,
        device,
    )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _open_onnx(model_path, desc, inputs, geometry, *, threads, device):
    from caloforge.export.onnx_export import OUTPUT_NAME, onnx, onnx_session

    try:
        onnx.checker.check_model(onnx.load(str(model_path)))
        session = onnx_session(model_path, threads=threads, device=device)
    except Exception as exc:  # noqa: BLE001 - protobuf, checker and runtime errors alike
        if isinstance(exc, CheckpointError | ConfigError):
            raise
        raise CheckpointError(
            f"{model_path}: not a valid ONNX model ({_first_line(exc)})"
        ) from None
    graph_inputs = [i.name for i in session.get_inputs()]
    declared = [s.name for s in inputs]
    if graph_inputs != declared:
        raise CheckpointError(
            f"{desc} declares inputs {declared} but {model_path.name} takes {graph_inputs}; "
            "the description does not belong to this model file"
        )
    outputs = {o.name: o.shape for o in session.get_outputs()}
    shape = outputs.get(OUTPUT_NAME)
    if shape is None:
        raise CheckpointError(f"{model_path}: has no output named {OUTPUT_NAME!r}")
    if isinstance(shape[-1], int) and shape[-1] != geometry.n_voxels:
        raise CheckpointError(
            f"{desc} describes geometry {geometry.name!r} with {geometry.n_voxels} voxels but "
            f"{model_path.name} outputs {shape[-1]} voxels per shower"
        )
    for spec, node in zip(inputs, session.get_inputs(), strict=True):
        dims = tuple(node.shape[1:])
        if all(isinstance(d, int) for d in dims) and dims != spec.shape:
            raise CheckpointError(
                f"{desc} declares input {spec.name!r} with shape (N, "
                f"{', '.join(map(str, spec.shape))}) but {model_path.name} expects {node.shape}"
            )
    return session


def _open_torchscript(model_path, desc, inputs, geometry, *, threads, device):
    import torch

    from caloforge.export.torchscript import load_torchscript, n_forward_inputs

    try:
        module = load_torchscript(model_path)
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError and others
        raise CheckpointError(
            f"{model_path}: not a valid TorchScript model ({_first_line(exc)})"
        ) from None
    n = n_forward_inputs(module)
    if n != len(inputs):
        raise CheckpointError(
            f"{desc} declares {len(inputs)} inputs but {model_path.name} takes {n}; the "
            "description does not belong to this model file"
        )
    probe = tuple(torch.full((1, *s.shape), s.mean, dtype=getattr(torch, s.dtype)) for s in inputs)
    try:
        with torch.inference_mode():
            n_out = module(*probe).shape[-1]
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(
            f"{model_path.name} does not run on the inputs {desc} declares ({_first_line(exc)})"
        ) from None
    if n_out != geometry.n_voxels:
        raise CheckpointError(
            f"{desc} describes geometry {geometry.name!r} with {geometry.n_voxels} voxels but "
            f"{model_path.name} outputs {n_out} voxels per shower"
        )
    if threads:
        torch.set_num_threads(int(threads))
    return module.to(device)
