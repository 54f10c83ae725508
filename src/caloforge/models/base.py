"""The generator interface every model answers, and its checkpoint format.

A model is a subclass of :class:`Generator` registered under a short name, with a typed config
(:mod:`caloforge.models.config`) and the tiny configuration its smoke tests train with::

    @register_model("qvae")
    class QVAE(Generator):
        config_class = QVAEConfig
        smoke_config = {"units_per_partition": 4, "hidden": 8, "batch_size": 8}

A built-in model is one file in this package: the ``@register_model("name")`` decorator is
found without importing the file (:mod:`caloforge.discovery`), and the parametrised tests
(engine, configs, capabilities) pick every such model up with its ``smoke_config``.

and answers these calls:

* ``fit(train, val=None, *, out_dir=None, epochs=None, seed=0, resume=False, progress=True,
  max_minutes=None)`` -- trains on :class:`~caloforge.io.Showers` through the one engine,
  :func:`caloforge.models.training.train_model`; the model supplies only
  :meth:`Generator.initialize` (fresh weights from a seed) and :meth:`Generator.training_plan`
  (optimizers and a step function);
* ``sample(incident_energies, *, seed)`` -> voxel energies in MeV, shape (N, V);
  by default it is ``inference_module()(*latent_inputs(e, seed=seed))``: the stochastic part
  (noise, or prior samples from a Boltzmann machine) is drawn by :meth:`latent_inputs` and the
  deterministic part is one torch module, which is what export and quantization work on;
* ``save(dir)`` / :func:`load_generator` ``(dir)`` -- weights in ``model.safetensors``, the model
  name, its config, geometry, training state and format version in ``model.json`` beside them,
  written as one set (:mod:`caloforge.models.checkpoint`). No pickle: loading a stranger's
  checkpoint cannot run code.

The CLI, the evaluation, the benchmark and the export talk to this interface only.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from caloforge import __version__
from caloforge.conditions import Conditions
from caloforge.discovery import Registry
from caloforge.errors import CheckpointError, ConfigError
from caloforge.geometry import Geometry
from caloforge.io import Showers
from caloforge.models.checkpoint import (
    FORMAT_VERSION,
    META_FILE,
    OPTIMIZER_FILE,
    WEIGHTS_FILE,
    commit_set,
    read_meta,
)
from caloforge.models.config import ModelConfig

if TYPE_CHECKING:
    from caloforge.models.training import History, TrainingPlan

#: the models: built-ins found from their files' ``@register_model("name")``, imported on use
MODELS: Registry[type[Generator]] = Registry(
    "model", "caloforge.models", "register_model", ConfigError
)


def register_model(name: str):
    """Class decorator: make a :class:`Generator` subclass available under ``name``."""

    def wrap(cls: type[Generator]) -> type[Generator]:
        cls.model_name = name
        return MODELS.register(name, cls)

    return wrap


def builtin_models() -> list[str]:
    """Names of the models that ship with caloforge (found without importing them, so
    loading a QVAE does not import the quantum-circuit stack of the QGANs)."""
    return sorted(MODELS.builtin())


def available_models() -> list[str]:
    """Names of the registered models (built-in ones without importing them)."""
    return MODELS.names()


def model_class(name: str) -> type[Generator]:
    """The :class:`Generator` subclass registered as ``name``."""
    return MODELS.get(name)


@dataclass(frozen=True)
class LatentInput:
    """One input of a model's :meth:`Generator.inference_module`, as drawn by ``latent_inputs``.

    Attributes:
        name: the input's name (used for exported artifacts' inputs).
        shape: per-shower shape, e.g. ``(64,)``.
        distribution: what it holds: ``"normal(0, 1)"``, ``"uniform(0, 1)"``, ``"binary"``,
            ``"incident energy (MeV)"`` ...
        sampler: what draws it: ``"torch"`` (seeded torch generator), a prior sampler's
            name (``"gibbs"``, ``"sa"`` ...) or ``"given"`` (a condition passed through).
    """

    name: str
    shape: tuple[int, ...]
    distribution: str
    sampler: str = "torch"


class Generator(ABC):
    """A conditional shower generator for one geometry.

    Subclasses hold their torch modules as attributes and list them in :meth:`modules`;
    :meth:`save` and :func:`load_generator` store every tensor of those modules' state dicts.

    Attributes:
        geometry: the readout geometry the model generates for.
        options: the typed, checked configuration (an instance of :attr:`config_class`).
        config: the same as plain JSON (``options.to_dict()``); ``type(self)(geometry,
            config)`` rebuilds the architecture, and the weights are then loaded.
        state: JSON-able training state (``epoch``, ``seed``, ``step``, ``history`` ...).
    """

    model_name: ClassVar[str] = "generator"
    #: the conditions (caloforge.conditions.NAMES) the model generates for; others are refused
    supported_conditions: ClassVar[frozenset[str]] = frozenset({"energy"})
    #: whether inference_module() can be exported to ONNX/TorchScript (caloforge.export)
    exportable: ClassVar[bool] = True
    #: whether the model runs a (simulated) quantum device that with_hardware() can change
    takes_device: ClassVar[bool] = False
    #: the torch device types (caloforge.devices) its training and generation code supports;
    #: a model lists "cuda"/"mps" only when every tensor it makes follows :attr:`device`
    compute_devices: ClassVar[frozenset[str]] = frozenset({"cpu"})
    #: the model's typed options; None only for ad-hoc models configured by
    #: :meth:`default_config` (unknown keys are refused, types are not checked)
    config_class: ClassVar[type[ModelConfig] | None] = None
    #: the smallest options that exercise every part of training and generation (a few
    #: parameters, a batch or two); the parametrised tests of every model train with it
    smoke_config: ClassVar[Mapping[str, Any] | None] = None

    def __init__(
        self, geometry: Geometry, config: ModelConfig | Mapping[str, Any] | None = None
    ) -> None:
        self.geometry = geometry
        if self.config_class is not None:
            self.options = self.config_class.coerce(config)
            self.config: dict[str, Any] = self.options.to_dict()
        else:
            if isinstance(config, ModelConfig):
                config = config.to_dict()
            self.config = {**self.default_config(), **(config or {})}
            unknown = set(self.config) - set(self.default_config())
            if unknown:
                raise ConfigError(
                    f"unknown option(s) {', '.join(sorted(unknown))} for model "
                    f"{self.model_name!r}; known: {', '.join(sorted(self.default_config()))}"
                )
        self.state: dict[str, Any] = {}
        #: where the modules live and new tensors are made (:meth:`to_device`)
        self.device = torch.device("cpu")

    def to_device(self, device: str | torch.device) -> Generator:
        """Move the model to ``device`` (``cpu``, ``cuda``, ``cuda:N``, ``mps``, or ``auto``: the
        best of those this machine has and the model supports);
        one sentence (:class:`ConfigError`) for a device this machine lacks or this model's
        code does not support (:attr:`compute_devices`). Returns the model."""
        from caloforge.devices import resolve_device

        dev = resolve_device(device)
        if str(device) == "auto" and dev.type not in self.compute_devices:
            dev = torch.device("cpu")  # auto: the best device this model supports
        if dev.type not in self.compute_devices:
            raise ConfigError(
                f"model {self.model_name!r} runs on {', '.join(sorted(self.compute_devices))} "
                f"only, not {dev.type} (its code does not move its tensors to other devices yet)"
            )
        for module in self.modules().values():
            module.to(dev)
        self.device = dev
        return self

    # ----------------------------------------------------------------- to implement
    @classmethod
    def default_config(cls) -> dict[str, Any]:
        """Hyper-parameters and their defaults (plain JSON)."""
        return cls.config_class().to_dict() if cls.config_class is not None else {}

    @abstractmethod
    def modules(self) -> dict[str, torch.nn.Module]:
        """The named torch modules whose weights make up the model."""

    def initialize(self, seed: int) -> None:
        """Set fresh weights, drawn from ``seed`` alone (the engine calls it before training)."""
        raise NotImplementedError(f"model {self.model_name!r} cannot be trained")

    def training_plan(
        self, train: Showers, val: Showers | None, *, seed: int, fresh: bool
    ) -> TrainingPlan:
        """Check the data, build optimizers and the step function for the engine.

        With ``fresh`` (a new run, not a resumed one) also fit what is fitted once on the
        training data (preprocessing, a pre-trained part), seeded from ``seed``.
        """
        raise NotImplementedError(f"model {self.model_name!r} cannot be trained")

    def fit(
        self,
        train: Showers,
        val: Showers | None = None,
        *,
        out_dir: str | os.PathLike | None = None,
        epochs: int | None = None,
        seed: int = 0,
        resume: bool = False,
        progress: bool = True,
        max_minutes: float | None = None,
        device: str | torch.device | None = None,
    ) -> History:
        """Train on ``train`` (MeV) through :func:`caloforge.models.training.train_model`.

        Args:
            train: training showers of this geometry.
            val: validation showers; each epoch's history then holds validation metrics.
            out_dir: run directory; the checkpoint set is committed there after every epoch.
            epochs: total epochs to reach (default: the config's ``epochs``).
            seed: seeds everything (initialisation, shuffling, noise); same seed, same weights.
            resume: continue from the checkpoint in ``out_dir`` (an error if there is none).
            progress: show a progress bar.
            max_minutes: stop after the first step that ends past this wall-clock budget.
            device: train on this device (:func:`caloforge.devices.resolve_device`; default:
                where the model is, :attr:`device`).

        Returns:
            The history: per-epoch lists ``epoch``, ``steps``, ``seconds``, losses, metrics.
        """
        from caloforge.models.training import TrainOptions, default_epochs, train_model

        options = TrainOptions(
            epochs=default_epochs(self.config, epochs),
            seed=seed,
            out_dir=Path(out_dir) if out_dir is not None else None,
            resume=resume,
            progress=progress,
            max_minutes=max_minutes,
            device=str(self.device) if device is None else str(device),
        )
        history = train_model(self, train, val, options)
        self.after_training(train, seed=int(self.state.get("seed", seed)), out_dir=options.out_dir)
        return history

    def after_training(self, train: Showers, *, seed: int, out_dir: Path | None) -> None:
        """Called by :meth:`fit` once training has ended (the checkpoint set committed): a model
        that measures something about the trained weights (the QVAE's prior diagnostics) does it
        here and re-commits its checkpoint in ``out_dir``. ``seed`` is the run's seed."""

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

    # ----------------------------------------------------------------- capabilities
    @property
    def takes_prior_sampler(self) -> bool:
        """Whether :meth:`set_sampler` chooses how the model's prior is sampled."""
        return False

    def set_sampler(self, name: str = "gibbs", **options: Any) -> None:
        """Choose the prior sampler used at generation (models with a prior override this)."""
        raise ConfigError(f"model {self.model_name!r} has no prior sampler to choose")

    def with_hardware(self, **changes: Any) -> Generator:
        """The same trained model on another simulated device (quantum-circuit models)."""
        raise ConfigError(
            f"model {self.model_name!r} runs no quantum circuit; --hardware applies to qgan and "
            "qgan-dist"
        )

    def latent_spec(self) -> tuple[LatentInput, ...] | None:
        """The inputs :meth:`latent_inputs` returns, in order (None: not declared)."""
        return None

    @property
    def latent_input_names(self) -> list[str] | None:
        """Names of the :meth:`latent_spec` inputs (what exported artifacts call them)."""
        spec = self.latent_spec()
        return None if spec is None else [s.name for s in spec]

    @property
    def prior_description(self) -> dict[str, Any] | None:
        """The prior and the sampler that draws it, for exported artifacts (None: no prior)."""
        return None

    def check_conditions(self, conditions: Conditions | Any) -> Conditions:
        """``conditions`` (or plain incident energies in MeV) checked against
        :attr:`supported_conditions`: one sentence for a condition the model cannot take.

        Conditions that ask for the head-on, centred shower every model makes (``theta`` = 0,
        entry point at the origin; :attr:`Conditions.effective`) are accepted by any model."""
        c = Conditions.of(conditions)
        extra = sorted(c.effective - self.supported_conditions)
        if extra:
            raise ConfigError(
                f"model {self.model_name!r} is conditioned on "
                f"{', '.join(sorted(self.supported_conditions))} only and cannot take "
                f"{', '.join(extra)}"
            )
        return c

    def sample(
        self, incident_energies: np.ndarray | Conditions, *, seed: int = 0, batch_size: int = 1024
    ) -> np.ndarray:
        """Generate showers: (N,) incident energies in MeV (or :class:`Conditions`) -> (N, V)
        voxel energies in MeV."""
        e = self.check_conditions(incident_energies).energy
        module = self.inference_module().eval()
        out = []
        with torch.no_grad():
            for batch in self.latent_batches(e, seed=seed, batch_size=batch_size):
                inputs = tuple(t.to(self.device) for t in batch)
                out.append(module(*inputs).float().cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    def latent_batches(
        self, incident_energies: np.ndarray, *, seed: int = 0, batch_size: int = 1024
    ) -> Iterator[tuple[torch.Tensor, ...]]:
        """:meth:`latent_inputs` of consecutive batches of ``batch_size`` incident energies
        (MeV), batch i drawn with seed ``seed + 7919 i``: what :meth:`sample` feeds its module,
        so the draws of the first ``batch_size`` showers do not depend on N."""
        for i, start in enumerate(range(0, len(incident_energies), batch_size)):
            yield self.latent_inputs(
                incident_energies[start : start + batch_size], seed=seed + 7919 * i
            )

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

    def weight_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor :meth:`save` stores: module state dicts and :meth:`extra_tensors`."""
        tensors = {
            f"{name}.{key}": t.detach().cpu().contiguous()
            for name, module in self.modules().items()
            for key, t in module.state_dict().items()
        }
        tensors.update(
            {f"extra.{k}": v.detach().cpu().contiguous() for k, v in self.extra_tensors().items()}
        )
        return tensors

    def metadata(self) -> dict[str, Any]:
        """The content of ``model.json``."""
        return {
            "format": FORMAT_VERSION,
            "model": self.model_name,
            "config": self.config,
            "geometry": self.geometry.to_dict(),
            "state": self.state,
            "caloforge_version": __version__,
        }

    def _writers(self) -> dict[str, Any]:
        epoch = str(int(self.state.get("epoch", 0) or 0))
        tensors = self.weight_tensors()
        text = json.dumps(self.metadata(), indent=2, default=_json_default)
        return {
            WEIGHTS_FILE: lambda p: save_file(tensors, str(p), metadata={"epoch": epoch}),
            META_FILE: lambda p: p.write_text(text),
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``model.safetensors`` and ``model.json`` into ``directory`` as one set.

        An ``optimizer.safetensors`` from earlier training is removed with the old set (it would
        not match these weights); training writes it with :meth:`save_checkpoint`.
        """
        return commit_set(directory, self._writers())

    def save_checkpoint(
        self,
        directory: str | os.PathLike,
        optimizers: dict[str, torch.optim.Optimizer],
        extra: dict[str, torch.Tensor] | None = None,
    ) -> Path:
        """Write weights, ``model.json`` and the optimizer state (plus ``extra`` resume tensors)
        into ``directory`` as one set."""
        from caloforge.models.training import save_optimizer_file

        epoch = int(self.state.get("epoch", 0) or 0)
        writers = self._writers()
        writers[OPTIMIZER_FILE] = lambda p: save_optimizer_file(p, optimizers, extra or {}, epoch)
        return commit_set(directory, writers)

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


def load_generator(directory: str | os.PathLike) -> Generator:
    """Rebuild a model from a directory written by :meth:`Generator.save`."""
    meta = read_meta(directory)
    cls = model_class(meta["model"])
    try:
        config = (
            cls.config_class.from_stored(meta["config"]) if cls.config_class else meta["config"]
        )
        model = cls(Geometry.from_dict(meta["geometry"]), config)
    except ConfigError as exc:
        raise CheckpointError(f"{Path(directory) / META_FILE}: {exc}") from None
    state = meta.get("state", {})
    model.state = dict(state) if isinstance(state, dict) else {}
    model.load_weights(directory)
    return model
