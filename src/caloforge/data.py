"""Torch datasets over shower files, and invertible preprocessing transforms shared by models.

A transform maps showers (N, V) in MeV, given incident energies (N,) in MeV, to a model space
and back. Fitted parameters (means, scales) are tensors in :meth:`Transform.state`, so models
can store them in their safetensors checkpoint.

======================  ==================================================================
transform               forward
======================  ==================================================================
:class:`EnergyFraction`  x / (scale * E_inc): the voxel energy as a fraction of the incident
:class:`Logit`           logit(eps + (1 - 2 eps) x) on fractions in [0, 1] (the QVAE's space)
:class:`Log`             log(x + eps)
:class:`Standardize`     (x - mean) / std per voxel, fitted on training data
:class:`Compose`         several of the above in order
======================  ==================================================================
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from caloforge.errors import ConfigError
from caloforge.io import Showers


class Transform:
    """An invertible map of showers given their incident energies (both torch tensors)."""

    def fit(self, x: torch.Tensor, e_inc: torch.Tensor) -> Transform:
        """Fit parameters on training data (x: (N, V) in this transform's input space)."""
        return self

    def forward(self, x: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def inverse(self, y: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def state(self) -> dict[str, torch.Tensor]:
        """Fitted tensors, to be saved with a model."""
        return {}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state` returned."""


class EnergyFraction(Transform):
    """x -> x / (scale * E_inc). ``scale`` > 1 keeps fractions below 1 when the sum exceeds E_inc
    (dataset 1 files, divided by the sampling fraction, can exceed it)."""

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ConfigError(f"EnergyFraction scale must be > 0, got {scale}")
        self.scale = float(scale)

    def forward(self, x, e_inc):
        return x / (self.scale * e_inc.reshape(-1, 1))

    def inverse(self, y, e_inc):
        return y * (self.scale * e_inc.reshape(-1, 1))


class Logit(Transform):
    """u -> logit(eps + (1 - 2 eps) u) for u in [0, 1]; the inverse clamps to [0, 1]."""

    def __init__(self, eps: float = 1e-6) -> None:
        if not 0 < eps < 0.5:
            raise ConfigError(f"Logit eps must be in (0, 0.5), got {eps}")
        self.eps = float(eps)

    def forward(self, x, e_inc):
        u = self.eps + (1 - 2 * self.eps) * x.clamp(0.0, 1.0)
        return torch.log(u) - torch.log1p(-u)

    def inverse(self, y, e_inc):
        return ((torch.sigmoid(y) - self.eps) / (1 - 2 * self.eps)).clamp(0.0, 1.0)


class Log(Transform):
    """x -> log(x + eps); the inverse clamps at 0."""

    def __init__(self, eps: float = 1e-6) -> None:
        if eps <= 0:
            raise ConfigError(f"Log eps must be > 0, got {eps}")
        self.eps = float(eps)

    def forward(self, x, e_inc):
        return torch.log(x.clamp_min(0.0) + self.eps)

    def inverse(self, y, e_inc):
        return (torch.exp(y) - self.eps).clamp_min(0.0)


class Standardize(Transform):
    """Per-voxel (x - mean) / std, with std floored at ``min_std``."""

    def __init__(self, min_std: float = 1e-6) -> None:
        self.min_std = float(min_std)
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None

    def fit(self, x, e_inc):
        self.mean = x.mean(dim=0)
        # one shower has no sample spread (N - 1 = 0 would give NaN): its std is 0, then floored
        self.std = x.std(dim=0, correction=1 if len(x) > 1 else 0).clamp_min(self.min_std)
        return self

    def _check(self) -> None:
        if self.mean is None or self.std is None:
            raise ConfigError("Standardize must be fitted (or loaded) before use")

    def forward(self, x, e_inc):
        self._check()
        return (x - self.mean) / self.std

    def inverse(self, y, e_inc):
        self._check()
        return y * self.std + self.mean

    def state(self):
        self._check()
        return {"mean": self.mean, "std": self.std}

    def load_state(self, state):
        self.mean, self.std = state["mean"], state["std"]


class Compose(Transform):
    """Apply transforms in order; invert in reverse order. Fitting fits each on the output of
    the ones before it."""

    def __init__(self, *transforms: Transform) -> None:
        self.transforms = list(transforms)

    def fit(self, x, e_inc):
        for t in self.transforms:
            t.fit(x, e_inc)
            x = t.forward(x, e_inc)
        return self

    def forward(self, x, e_inc):
        for t in self.transforms:
            x = t.forward(x, e_inc)
        return x

    def inverse(self, y, e_inc):
        for t in reversed(self.transforms):
            y = t.inverse(y, e_inc)
        return y

    def state(self):
        return {f"{i}.{k}": v for i, t in enumerate(self.transforms) for k, v in t.state().items()}

    def load_state(self, state):
        for i, t in enumerate(self.transforms):
            prefix = f"{i}."
            sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if sub:
                t.load_state(sub)


class ShowerDataset(Dataset):
    """In-memory torch dataset of (transformed showers (V,), incident energy (1,)) pairs.

    Args:
        showers: a :class:`~caloforge.io.Showers` block (read it with ``read_showers``).
        transform: applied once at construction (fit it beforehand if it needs fitting).
    """

    def __init__(self, showers: Showers, transform: Transform | None = None) -> None:
        self.e_inc = torch.as_tensor(showers.incident_energies, dtype=torch.float32).reshape(-1, 1)
        x = torch.as_tensor(np.asarray(showers.showers, dtype=np.float32))
        self.x = transform.forward(x, self.e_inc) if transform is not None else x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.e_inc[i]
