"""Where models train and generate: ``cpu``, ``cuda`` (``cuda:N``), ``mps`` or ``auto``.

:func:`resolve_device` turns what a user typed into a :class:`torch.device`, or one sentence
saying why it cannot be used here. Models declare the device types their code supports
(:attr:`caloforge.models.base.Generator.supported_devices`); random numbers are always drawn
on the CPU from seeded generators and then moved, so a seed gives the same draws on every
device (results still differ in the last bits between devices: kernels differ).

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
"""

from __future__ import annotations

import re

import torch

from caloforge.errors import ConfigError

#: what ``--device`` accepts (``cuda:N`` too)
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(spec: str | torch.device = "cpu") -> torch.device:
    """``"auto"`` (cuda, else mps, else cpu), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``
    -> a device that exists on this machine; :class:`ConfigError` in one sentence otherwise."""
    text = str(spec).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", text):
        raise ConfigError(
            f"unknown device {str(spec)!r}: use one of {', '.join(DEVICE_CHOICES)} or cuda:N"
        )
    device = torch.device(text)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {text!r} is not available: this torch build or machine has no CUDA GPU"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {text!r} is not available: this machine has "
                f"{torch.cuda.device_count()} CUDA GPU(s)"
            )
    if device.type == "mps" and not _mps_available():
        raise ConfigError("device 'mps' is not available on this machine")
    return device


def on(device: torch.device, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` on ``device`` (the same object when it is already there)."""
    return tensor if tensor.device == device else tensor.to(device)


__all__ = ["DEVICE_CHOICES", "on", "resolve_device"]
