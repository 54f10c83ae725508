"""The generator interface every model answers, and its checkpoint format.

A model is a subclass of :class:`Generator` registered under a short name::

    @register_model("qvae")
    class QVAE(Generator): ...

and answers four calls:

* ``fit(train, val=None, *, out_dir=None, epochs=..., seed=0, resume=False)`` -- trains on
  :class:`~caloforge.io.Showers`, with a progress bar and a checkpoint each epoch in ``out_dir``;
* ``sample(incident_energies, *, seed)`` -> voxel energies in MeV, shape (N, V);
  by default it is ``inference_module()(*latent_inputs(e, seed=seed))``: the stochastic part
  (noise, or prior samples from a Boltzmann machine) is drawn by :meth:`latent_inputs` and the
  deterministic part is one torch module, which is what export and quantization work on;
  by default it is ``inference_module()(*latent_inputs(e, seed=seed))``: the stochastic part
  (noise, or prior samples from a Boltzmann machine) is drawn by :meth:`latent_inputs` and the
  deterministic part is one torch module, which is what export and quantization work on;
* ``save(dir)`` / :func:`load_generator` ``(dir)`` -- weights in ``model.safetensors``, the model
  name, its config and geometry in ``model.json`` beside them. No pickle: loading a stranger's
  checkpoint cannot run code.

The CLI, the evaluation, the benchmark and the export talk to this interface only.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from caloforge import __version__
from caloforge.errors import CheckpointError, ConfigError
from caloforge.geometry import Geometry
from caloforge.io import Showers
from caloforge.ioutil import atomic_path

WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"

_REGISTRY: dict[str, type[Generator]] = {}


def register_model(name: str):
    """Class decorator: make a :class:`Generator` subclass available under ``name``."""

    def wrap(cls: type[Generator]) -> type[Generator]:
        cls.model_name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def _import_builtin_models() -> None:
    # Importing the model modules registers them; kept lazy so `import caloforge` stays light.
    import importlib

    for module in ("qvae", "gan3d", "wgan", "qgan"):
        try:
            importlib.import_module(f"caloforge.models.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"caloforge.models.{module}":
                raise


def available_models() -> list[str]:
    """Names of the registered models."""
    _import_builtin_models()
    return sorted(_REGISTRY)


def model_class(name: str) -> type[Generator]:
    """The :class:`Generator` subclass registered as ``name``."""
    _import_builtin_models()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


class Generator(ABC):
    """A conditional shower generator for one geometry.

    Subclasses hold their torch modules as attributes and list them in :meth:`modules`;
    :meth:`save` and :func:`load_generator` store every tensor of those modules' state dicts.

    Attributes:
        geometry: the readout geometry the model generates for.
        config: plain-JSON hyper-parameters; ``type(self)(geometry, config)`` rebuilds the
            architecture, and the weights are then loaded from the checkpoint.
    """

    model_name: ClassVar[str] = "generator"

    def __init__(self, geometry: Geometry, config: dict[str, Any] | None = None) -> None:
        self.geometry = geometry
        self.config = {**self.default_config(), **(config or {})}
        unknown = set(self.config) - set(self.default_config())
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(sorted(unknown))} for model {self.model_name!r}; "
                f"known: {', '.join(sorted(self.default_config()))}"
            )
        self.state: dict[str, Any] = {}  # JSON-able training state (epoch, history ...)

    # ----------------------------------------------------------------- to implement
    @classmethod
    def default_config(cls) -> dict[str, Any]:
        """Hyper-parameters and their defaults."""
        return {}

    @abstractmethod
    def modules(self) -> dict[str, torch.nn.Module]:
        """The named torch modules whose weights make up the model."""

    @abstractmethod
    def fit(self, train: Showers, val: Showers | None = None, **kwargs: Any) -> dict[str, Any]:
        """Train on ``train``; returns a history dict of losses."""

    @abstractmethod
    def latent_inputs(
        self, incident_energies: np.ndarray, *, seed: int = 0
    ) -> tuple[torch.Tensor, ...]:
        """The random inputs of :meth:`inference_module` for (N,) incident energies in MeV.

        The first tensors are the model's latent draws, the last is the conditioning (usually
        the incident energies as an (N, 1) float32 tensor in MeV); e.g. a GAN returns
        ``(noise (N, d), e_inc (N, 1))`` and the QVAE ``(prior samples, uniforms, e_inc)``.
        """

    @abstractmethod
    def inference_module(self) -> torch.nn.Module:
        """A deterministic module: ``module(*latent_inputs(e))`` -> (N, V) voxel energies in MeV.

        Everything after the random draws (decoder, inverse transforms, thresholds) lives
        inside it, so TorchScript/ONNX export and quantization need nothing else.
        """

    def sample(
        self, incident_energies: np.ndarray, *, seed: int = 0, batch_size: int = 1024
    ) -> np.ndarray:
        """Generate showers: (N,) incident energies in MeV -> (N, V) voxel energies in MeV."""
        e = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
        if len(e) == 0 or not np.all(np.isfinite(e)) or np.any(e <= 0):
            raise ConfigError(
                "incident energies must be a non-empty array of finite values > 0 MeV"
            )
        module = self.inference_module().eval()
        out = []
        with torch.no_grad():
            for i, start in enumerate(range(0, len(e), batch_size)):
                inputs = self.latent_inputs(e[start : start + batch_size], seed=seed + 7919 * i)
                out.append(module(*inputs).float().cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    def describe(self) -> str:
        """A human-readable description of the architecture (``caloforge describe``)."""
        lines = [
            f"{self.model_name} for geometry {self.geometry.name} ({self.geometry.n_voxels} voxels)"
        ]
        lines += [f"  {k} = {v}" for k, v in sorted(self.config.items())]
        for name, module in self.modules().items():
            n = sum(p.numel() for p in module.parameters())
            lines.append(f"  module {name}: {n} parameters")
        lines.append(f"  total parameters: {self.n_parameters()}")
        return "\n".join(lines)

    # ----------------------------------------------------------------- checkpoints
    def extra_tensors(self) -> dict[str, torch.Tensor]:
        """Tensors outside the modules to store (buffers, fitted transforms); override."""
        return {}

    def load_extra_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`extra_tensors` stored; override together with it."""

    def n_parameters(self) -> int:
        return sum(p.numel() for m in self.modules().values() for p in m.parameters())

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``model.safetensors`` and ``model.json`` into ``directory`` (atomically each)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {
            f"{name}.{key}": t.detach().cpu().contiguous()
            for name, module in self.modules().items()
            for key, t in module.state_dict().items()
        }
        tensors.update(
            {f"extra.{k}": v.detach().cpu().contiguous() for k, v in self.extra_tensors().items()}
        )
        meta = {
            "model": self.model_name,
            "config": self.config,
            "geometry": self.geometry.to_dict(),
            "state": self.state,
            "caloforge_version": __version__,
        }
        with atomic_path(directory / WEIGHTS_FILE) as tmp:
            save_file(tensors, str(tmp))
        with atomic_path(directory / META_FILE) as tmp:
            tmp.write_text(json.dumps(meta, indent=2, default=_json_default))
        return directory

    def load_weights(self, directory: str | os.PathLike) -> None:
        """Load weights saved by :meth:`save` into this (already built) model."""
        path = Path(directory) / WEIGHTS_FILE
        try:
            tensors = load_file(str(path))
        except FileNotFoundError:
            raise CheckpointError(f"{path}: no weights file") from None
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: corrupt weights file ({exc})") from None
        for name, module in self.modules().items():
            prefix = f"{name}."
            sd = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            try:
                module.load_state_dict(sd)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0]
                raise CheckpointError(
                    f"{path}: weights of module {name!r} do not fit the model built from "
                    f"{META_FILE} ({first})"
                ) from None
        self.load_extra_tensors({k[6:]: v for k, v in tensors.items() if k.startswith("extra.")})


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot store {type(obj).__name__} in {META_FILE}")


def read_meta(directory: str | os.PathLike) -> dict[str, Any]:
    """The ``model.json`` of a checkpoint directory, checked for the keys every model writes."""
    path = Path(directory) / META_FILE
    if not Path(directory).is_dir():
        raise CheckpointError(
            f"{directory}: not a model directory (expected {META_FILE} and {WEIGHTS_FILE})"
        )
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: missing; is {directory} a trained model directory?"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt model description ({exc})") from None
    missing = {"model", "config", "geometry"} - set(meta)
    if missing:
        raise CheckpointError(f"{path}: missing field(s) {', '.join(sorted(missing))}")
    return meta


def load_generator(directory: str | os.PathLike) -> Generator:
    """Rebuild a model from a directory written by :meth:`Generator.save`."""
    meta = read_meta(directory)
    cls = model_class(meta["model"])
    model = cls(Geometry.from_dict(meta["geometry"]), meta["config"])
    model.state = dict(meta.get("state", {}))
    model.load_weights(directory)
    return model
