"""Reduced precision: int8 post-training quantization (dynamic and static) and fp16.

==============  =========================================================================
variant         what happens
==============  =========================================================================
int8 dynamic    weights of MatMul/Gemm (ONNX) or ``nn.Linear`` (torch) stored as int8;
                activations quantized on the fly per batch. Needs no data.
int8 static     weights *and* activations of MatMul/Gemm/Conv as int8 (ONNX QDQ format),
                activation ranges fixed beforehand on a calibration set: latent inputs
                drawn for the incident energies of real showers. The layer that writes the
                output stays fp32 by default: voxel energies span orders of magnitude and
                one int8 scale for all of them loses the low-energy voxels.
fp16            nodes (ONNX) or layers (torch) in fp16 wherever their values stay below
                :data:`~caloforge.export.onnx_export.FP16_MAX_ABS`; the rest (incident
                energies and voxel energies in MeV) stays fp32.
==============  =========================================================================
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from caloforge._optional import require
from caloforge.export.onnx_export import FP16_MAX_ABS
from caloforge.export.source import draw_latents
from caloforge.ioutil import atomic_path

if TYPE_CHECKING:
    import onnx
else:
    onnx = require("onnx", extra="export", purpose="ONNX quantization")

#: ONNX operators that static quantization acts on
STATIC_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose")


# --------------------------------------------------------------------------- ONNX
def _preprocess(src: Path, workdir: Path) -> Path:
    """ONNX Runtime's recommended pre-processing (shape inference, graph optimisation)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = workdir / "pre.onnx"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quant_pre_process(str(src), str(out), skip_symbolic_shape=True)
    except Exception:  # noqa: BLE001 - pre-processing is an optimisation; fall back to the raw graph
        return src
    return out


def quantize_onnx_dynamic(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Write an int8 dynamically quantized copy of the ONNX model ``src`` to ``dst``.

    Weights are int8 per output channel with a 7-bit range (``reduce_range``): on x86 CPUs
    without VNNI, ONNX Runtime multiplies uint8 activations by int8 weights with 16-bit
    intermediate sums that saturate for full-range weights; on a test MLP the default settings
    gave a 58 % peak error, these 4 % (see docs/deployment.md).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as work, atomic_path(dst) as tmp:
        pre = _preprocess(Path(src), Path(work))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                str(pre),
                str(tmp),
                weight_type=QuantType.QInt8,
                per_channel=True,
                reduce_range=True,
            )


class _FeedReader:
    """An ONNX Runtime ``CalibrationDataReader`` over a list of input feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = feeds
        self._iter: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = iter(self._feeds)


def _output_layer(model: onnx.ModelProto) -> list[str]:
    """Name of the last MatMul/Gemm/Conv node in graph order (the layer writing the output)."""
    nodes = [n for n in model.graph.node if n.op_type in STATIC_OPS]
    return [nodes[-1].name] if nodes else []


def quantize_onnx_static(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    feeds: list[dict[str, np.ndarray]],
    *,
    keep_output_layer_fp32: bool = True,
    per_channel: bool = True,
) -> list[str]:
    """Write an int8 statically quantized copy of ``src`` calibrated on ``feeds``.

    Args:
        feeds: calibration batches, each ``{input name: array}`` (see :func:`calibration_feeds`).
        keep_output_layer_fp32: leave the last MatMul/Gemm/Conv in fp32 (see the module doc).
        per_channel: one weight scale per output channel instead of one per tensor.

    Returns:
        The names of the nodes left in fp32 on purpose.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    reader = type("CaloforgeCalibration", (_FeedReader, CalibrationDataReader), {})(feeds)
    with tempfile.TemporaryDirectory() as work, atomic_path(dst) as tmp:
        pre = _preprocess(Path(src), Path(work))
        model = onnx.load(str(pre))
        for i, node in enumerate(model.graph.node):
            if not node.name:
                node.name = f"{node.op_type}_{i}"
        named = Path(work) / "named.onnx"
        onnx.save(model, str(named))
        excluded = _output_layer(model) if keep_output_layer_fp32 else []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_static(
                str(named),
                str(tmp),
                reader,
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(STATIC_OPS),
                per_channel=per_channel,
                reduce_range=True,  # 7-bit weights: no saturation on x86 without VNNI
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=excluded,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
            )
    return excluded


def calibration_feeds(
    model,
    incident_energies: np.ndarray,
    input_names: list[str],
    *,
    batch_size: int = 128,
    seed: int = 0,
) -> list[dict[str, np.ndarray]]:
    """Calibration batches: latent inputs drawn for the given incident energies (MeV, (N,))."""
    energies = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
    feeds = []
    for k, start in enumerate(range(0, len(energies), batch_size)):
        inputs = draw_latents(model, energies[start : start + batch_size], seed + k)
        feeds.append({n: t.numpy() for n, t in zip(input_names, inputs, strict=True)})
    return feeds


# --------------------------------------------------------------------------- torch
def quantize_torch_dynamic(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` with every ``nn.Linear`` dynamically quantized to int8.

    PyTorch's dynamic quantization covers linear (and recurrent) layers only; convolutions
    stay fp32 (use ONNX for quantized convolutions).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(module).eval(), {torch.nn.Linear}, dtype=torch.qint8
        )


class _Half(torch.nn.Module):
    """Run one layer in fp16, with fp32 in and out."""

    def __init__(self, layer: torch.nn.Module) -> None:
        super().__init__()
        self.layer = layer.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.half()).float()


_HALF_TYPES = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


def half_precision_torch(
    module: torch.nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    *,
    max_abs: float = FP16_MAX_ABS,
) -> tuple[torch.nn.Module, list[str]]:
    """A copy of ``module`` whose linear and convolution layers run in fp16 where safe.

    A layer stays fp32 if its input or output reached ``max_abs`` on ``example_inputs``.
    Returns the copy and the names of the layers kept in fp32.
    """
    module = copy.deepcopy(module).eval()
    peaks: dict[str, float] = {}
    hooks = []
    for name, layer in module.named_modules():
        if isinstance(layer, _HALF_TYPES):

            def record(_m, args, out, name=name):
                peaks[name] = max(float(args[0].abs().max()), float(out.abs().max()))

            hooks.append(layer.register_forward_hook(record))
    with torch.no_grad():
        module(*example_inputs)
    for h in hooks:
        h.remove()
    kept = sorted(n for n, p in peaks.items() if not p < max_abs)
    for name in sorted(set(peaks) - set(kept)):
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, _Half(getattr(parent, child)))
    return module, kept
