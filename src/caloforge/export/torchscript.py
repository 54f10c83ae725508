"""TorchScript export: trace the inference module into a self-contained ``model.pt``.

TorchScript is deprecated upstream in favour of ``torch.export``, but it is still the format
LibTorch (C++) loads directly; its deprecation warnings are silenced here. Loading a TorchScript
file runs the TorchScript code inside it: only load files you trust (ONNX has no such code).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from caloforge.ioutil import atomic_path


def _quiet():
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", UserWarning)
    return ctx


def save_torchscript(
    module: torch.nn.Module, example_inputs: tuple[torch.Tensor, ...], path: str | os.PathLike
) -> Path:
    """Trace ``module`` on ``example_inputs`` and save it to ``path`` (atomically).

    Tracing records the operations run on the example, so the module must not branch on
    values; shapes may change (the batch size is free).
    """
    ctx = _quiet()
    try:
        with torch.inference_mode(False), torch.no_grad():
            traced = torch.jit.trace(module.eval(), example_inputs, check_trace=False)
        with atomic_path(path) as tmp:
            torch.jit.save(traced, str(tmp))
    finally:
        ctx.__exit__(None, None, None)
    return Path(path)


def load_torchscript(path: str | os.PathLike) -> torch.jit.ScriptModule:
    """Load a file written by :func:`save_torchscript` onto the CPU (raises on a corrupt file)."""
    ctx = _quiet()
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    finally:
        ctx.__exit__(None, None, None)


def n_forward_inputs(module: torch.jit.ScriptModule) -> int:
    """Number of tensor arguments of the scripted ``forward`` (``self`` not counted)."""
    schema = module.forward.schema  # type: ignore[attr-defined]  # TorchScript methods carry one
    return len(schema.arguments) - 1


def run_torch(module: torch.nn.Module, inputs, device: str = "cpu") -> np.ndarray:
    """Run a torch or TorchScript module on numpy/torch inputs; (N, V) float32 numpy out."""
    tensors = tuple(torch.as_tensor(np.asarray(x)).to(device) for x in inputs)
    with torch.inference_mode():
        out = module(*tensors)
    return out.float().cpu().numpy()
