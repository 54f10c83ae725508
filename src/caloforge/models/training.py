"""The one training engine every model trains through.

A model hands the engine a :class:`TrainingPlan` -- its optimizers, a step function over a
batch of training indices, optionally a validation function -- and :func:`train_model` does
the rest, the same way for every model:

* **epochs or a wall-clock budget** -- ``epochs`` is the total to reach; with ``max_minutes`` the
  run stops after the first step that ends past the budget, finishing that (partial) epoch with
  its history record and checkpoint;
* **seeding** -- one user seed; the initial weights come from
  :func:`~caloforge.seeding.derive_seed` (seed, ``"init"``), epoch k's shuffling, noise and
  dropout from (seed, ``"epoch"``, k) (a ``torch.Generator`` handed to the step, and the global
  torch RNG, which the engine saves and restores around the run);
* **checkpoints** -- after every epoch the weights, ``model.json`` (config, geometry, state,
  format version) and ``optimizer.safetensors`` are committed as one set
  (:func:`~caloforge.models.checkpoint.commit_set`);
* **resume** -- ``resume=True`` continues from the checkpoint in ``out_dir`` after checking it
  belongs to this model (model name, configuration, format version, the epoch recorded in all
  three files); anything missing or mismatched is a :class:`~caloforge.errors.CheckpointError`
  in one sentence, never a silent restart. The stored seed is used, so an interrupted and
  resumed run repeats the uninterrupted one step for step (see docs/architecture.md for the
  exceptions);
* **history** -- ``dict[str, list[float]]``, one entry per epoch in every list: ``epoch``,
  ``steps``, ``seconds``, the mean of every loss the step reported (NaN in an epoch where it
  reported none) and the validation metrics;
* **progress** -- one rich progress bar (:func:`progress_bar`);
* **device** -- the model is moved to ``device`` (``model.to_device``) after its weights are
  made or loaded and before its plan is made; the plan's tensors follow ``model.device``.
  Random numbers still come from the CPU generators above, so a seed draws the same numbers
  on every device. Checkpoints are always written from CPU copies.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from caloforge.errors import CheckpointError, ConfigError
from caloforge.models.checkpoint import (
    FORMAT_VERSION,
    META_FILE,
    OPTIMIZER_FILE,
    WEIGHTS_FILE,
    read_meta,
)
from caloforge.models.config import ModelConfig
from caloforge.seeding import check_seed, derive_seed

if TYPE_CHECKING:
    from caloforge.io import Showers

#: per-epoch lists: ``epoch``, ``steps``, ``seconds``, losses and validation metrics
History = dict[str, list[float]]


class Trainable(Protocol):
    """What the engine needs of a model (:class:`caloforge.models.base.Generator` has it all)."""

    model_name: ClassVar[str]
    config_class: ClassVar[type[ModelConfig] | None]
    config: dict[str, Any]
    state: dict[str, Any]

    def modules(self) -> dict[str, torch.nn.Module]: ...

    def initialize(self, seed: int) -> None: ...

    def to_device(self, device: str | torch.device) -> Any: ...

    def training_plan(
        self, train: Showers, val: Showers | None, *, seed: int, fresh: bool
    ) -> TrainingPlan: ...

    def load_weights(self, directory: str | os.PathLike) -> None: ...

    def save_checkpoint(
        self,
        directory: str | os.PathLike,
        optimizers: dict[str, torch.optim.Optimizer],
        extra: dict[str, torch.Tensor] | None = None,
    ) -> Path: ...


# --------------------------------------------------------------------------- options
@dataclass(frozen=True)
class TrainOptions:
    """How long and where to train; checked on construction (:class:`ConfigError`).

    Attributes:
        epochs: total number of epochs to reach (>= 1); a resumed run continues up to it.
        seed: the run's seed (>= 0); a resumed run uses the seed stored in its checkpoint.
        out_dir: run directory for the checkpoint set, or None for no checkpoints.
        resume: continue from the checkpoint in ``out_dir`` (which must hold one).
        progress: show a progress bar.
        max_minutes: wall-clock budget in minutes (>= 0), or None for none.
        device: where to train: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto``
            (:func:`caloforge.devices.resolve_device`; checked on construction).
    """

    epochs: int
    seed: int = 0
    out_dir: Path | None = None
    resume: bool = False
    progress: bool = True
    max_minutes: float | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        from caloforge.devices import resolve_device

        resolve_device(self.device)
        e = self.epochs
        if isinstance(e, bool) or not isinstance(e, int | np.integer) or e < 1:
            raise ConfigError(f"epochs must be a positive integer, got {e!r}")
        object.__setattr__(self, "epochs", int(e))
        object.__setattr__(self, "seed", check_seed(self.seed))
        if self.max_minutes is not None:
            m = self.max_minutes
            if isinstance(m, bool) or not isinstance(m, int | float) or not m >= 0 or m == math.inf:
                raise ConfigError(f"max_minutes must be a finite number >= 0, got {m!r}")
        if self.out_dir is not None:
            object.__setattr__(self, "out_dir", Path(self.out_dir))
        if self.resume and self.out_dir is None:
            raise ConfigError("resume needs the run directory (out_dir) to continue from")


# --------------------------------------------------------------------------- the plan
@dataclass
class StepContext:
    """What a step function knows about where it is in the run.

    Attributes:
        epoch: 0-based epoch index.
        step: 0-based index of this step in the whole run (continues across resume).
        steps_per_epoch: planned steps of a full epoch.
        total_steps: planned steps of the whole run (``epochs * steps_per_epoch``).
        fraction: training progress in [0, 1] for schedules: ``step / total_steps``, or the
            elapsed fraction of ``max_minutes`` when that is further.
        rng: this epoch's torch generator (shuffling used it first).
        epoch_seed: the seed the epoch's generators were made from.
    """

    epoch: int
    step: int
    steps_per_epoch: int
    total_steps: int
    fraction: float
    rng: torch.Generator
    epoch_seed: int


StepFn = Callable[[torch.Tensor, StepContext], Mapping[str, float]]


@dataclass
class TrainingPlan:
    """What a model hands the engine.

    Attributes:
        n_items: number of training items (showers, or images) the batches index.
        batch_size: items per step.
        step: ``step(indices (B,) int64, ctx) -> {loss name: value}``; one optimisation step.
        optimizers: named optimizers, saved and restored with the checkpoint.
        steps_per_epoch: None for one shuffled pass over the items (batches smaller than
            ``min_batch`` skipped); an int for that many batches, the shuffled order repeated
            cyclically.
        min_batch: smallest batch a step accepts (e.g. 2 for batch statistics).
        loss_names: losses recorded every epoch (NaN where a step did not report them).
        validate: ``validate(epoch_seed) -> {metric: value}``, run after each epoch.
        begin_epoch: called with the epoch's seed before its first step.
        resume_tensors: tensors beyond the optimizers needed to resume exactly (e.g.
            persistent Gibbs chains), and ``load_resume_tensors`` to put them back.
        summary: formats a step's losses for the progress bar.
    """

    n_items: int
    batch_size: int
    step: StepFn
    optimizers: dict[str, torch.optim.Optimizer]
    steps_per_epoch: int | None = None
    min_batch: int = 1
    loss_names: tuple[str, ...] = ()
    validate: Callable[[int], Mapping[str, float]] | None = None
    begin_epoch: Callable[[int], None] | None = None
    resume_tensors: Callable[[], dict[str, torch.Tensor]] | None = None
    load_resume_tensors: Callable[[dict[str, torch.Tensor]], None] | None = None
    summary: Callable[[Mapping[str, float]], str] | None = None
    _planned: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.batch_size = max(1, min(int(self.batch_size), int(self.n_items)))
        if self.steps_per_epoch is not None:
            self._planned = int(self.steps_per_epoch)
        else:
            n, bs = self.n_items, self.batch_size
            self._planned = sum(1 for i in range(0, n, bs) if min(bs, n - i) >= self.min_batch)
        if self._planned < 1:
            raise ConfigError(
                f"{self.n_items} training items make no batch of at least {self.min_batch}"
            )

    @property
    def planned_steps(self) -> int:
        """Steps of one full epoch."""
        return self._planned

    def batches(self, rng: torch.Generator) -> Iterator[torch.Tensor]:
        """The epoch's index batches, shuffled with ``rng``."""
        n, bs = self.n_items, self.batch_size
        perm = torch.randperm(n, generator=rng)
        if self.steps_per_epoch is not None:
            for s in range(self.steps_per_epoch):
                yield perm[(s * bs + torch.arange(bs)) % n]
            return
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            if len(idx) >= self.min_batch:
                yield idx


# --------------------------------------------------------------------------- progress
def progress_bar(enabled: bool = True) -> Progress:
    """A rich progress bar with a free-text field ``info`` for losses."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        disable=not enabled,
        transient=False,
    )


def _summary(losses: Mapping[str, float]) -> str:
    return " ".join(f"{k}={v:.3g}" for k, v in losses.items())


# --------------------------------------------------------------------------- optimizer file
def optimizer_tensors(optimizers: Mapping[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
    """The per-parameter state (moments, step counts) of optimizers as named CPU tensors."""
    tensors: dict[str, torch.Tensor] = {}
    for name, opt in optimizers.items():
        for idx, state in opt.state_dict()["state"].items():
            for key, value in state.items():
                t = value if torch.is_tensor(value) else torch.tensor(value)
                tensors[f"opt.{name}.{idx}.{key}"] = t.detach().cpu().contiguous()
    return tensors


def load_optimizer_tensors(
    path: Path, tensors: Mapping[str, torch.Tensor], optimizers: Mapping[str, torch.optim.Optimizer]
) -> None:
    """Put what :func:`optimizer_tensors` stored back into ``optimizers``."""
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, t in tensors.items():
            if not key.startswith("opt."):
                continue
            try:
                owner, idx, what = key[4:].split(".", 2)
                index = int(idx)
            except ValueError:
                raise CheckpointError(f"{path}: unexpected tensor {key!r}") from None
            if owner == name:
                state.setdefault(index, {})[what] = t
        sd["state"] = state
        try:
            opt.load_state_dict(sd)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(
                f"{path}: the optimizer state of {name!r} does not fit this model ({exc})"
            ) from None


def _file_epoch(path: Path) -> int | None:
    """The epoch a safetensors file of a checkpoint set records in its metadata (None: none)."""
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint file ({exc})") from None
    value = meta.get("epoch")
    return int(value) if value is not None and value.isdigit() else None


# --------------------------------------------------------------------------- resume
def _check_state(path: Path, state: Any) -> dict[str, Any]:
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: 'state' must be an object, got {type(state).__name__}")
    for key in ("epoch", "seed"):
        v = state.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise CheckpointError(
                f"{path}: state.{key} must be a non-negative integer, got {v!r}; "
                "the checkpoint cannot be resumed"
            )
    history = state.get("history", {})
    if not isinstance(history, dict) or not all(isinstance(v, list) for v in history.values()):
        raise CheckpointError(
            f"{path}: state.history must map names to per-epoch lists; "
            "the checkpoint was not written by this version of caloforge"
        )
    return state


def load_for_resume(model: Trainable, out_dir: Path) -> dict[str, torch.Tensor]:
    """Load the checkpoint in ``out_dir`` into ``model`` (weights, state) after checking it
    belongs to it; returns the tensors of ``optimizer.safetensors``."""
    meta_path = out_dir / META_FILE
    if not meta_path.is_file():
        raise CheckpointError(
            f"{out_dir}: no {META_FILE} to resume from; train without resume to start a new run"
        )
    meta = read_meta(out_dir)
    if meta.get("format", 1) < FORMAT_VERSION:
        raise CheckpointError(
            f"{out_dir}: written before caloforge's training engine (format "
            f"{meta.get('format', 1)}); it loads and generates, but training cannot resume from it"
        )
    if meta["model"] != model.model_name:
        raise CheckpointError(
            f"{out_dir}: holds a {meta['model']!r} checkpoint, cannot resume model "
            f"{model.model_name!r}"
        )
    try:
        stored = (
            model.config_class.from_stored(meta["config"]).to_dict() if model.config_class else None
        )
    except ConfigError as exc:
        raise CheckpointError(f"{meta_path}: {exc}") from None
    if (stored if stored is not None else meta["config"]) != model.config:
        diff = sorted(
            k for k in model.config if (stored or meta["config"]).get(k) != model.config[k]
        )
        raise CheckpointError(
            f"{out_dir}: the checkpoint was trained with different options "
            f"({', '.join(diff) or 'keys'}); resume with its configuration or use a new directory"
        )
    if "state" not in meta:
        raise CheckpointError(f"{meta_path}: no training state; the run cannot be resumed")
    state = _check_state(meta_path, meta["state"])
    opt_path = out_dir / OPTIMIZER_FILE
    if not opt_path.is_file():
        raise CheckpointError(
            f"{opt_path}: missing; without the optimizer state the run cannot be resumed exactly "
            "(train again into a new directory)"
        )
    epochs = {
        WEIGHTS_FILE: _file_epoch(out_dir / WEIGHTS_FILE),
        OPTIMIZER_FILE: _file_epoch(opt_path),
    }
    mixed = {k: v for k, v in epochs.items() if v is not None and v != state["epoch"]}
    if mixed:
        name, epoch = next(iter(mixed.items()))
        raise CheckpointError(
            f"{out_dir}: {name} is from epoch {epoch} but {META_FILE} from epoch "
            f"{state['epoch']}; the checkpoint set is mixed and cannot be resumed"
        )
    model.load_weights(out_dir)
    model.state = dict(state)
    try:
        return load_file(str(opt_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{opt_path}: corrupt optimizer state ({exc})") from None


# --------------------------------------------------------------------------- the engine
def _append(history: History, record: Mapping[str, float], names: tuple[str, ...]) -> None:
    done = len(history.get("epoch", []))
    for k in dict.fromkeys([*names, *history, *record]):
        history.setdefault(k, [math.nan] * done).append(float(record.get(k, math.nan)))


def train_model(
    model: Trainable,
    train: Showers,
    val: Showers | None,
    options: TrainOptions,
) -> History:
    """Train ``model`` as described in the module docstring; returns the history.

    The model supplies two hooks: ``model.initialize(seed)`` (fresh weights from a seed) and
    ``model.training_plan(train, val, seed=..., fresh=...)`` (a :class:`TrainingPlan`; with
    ``fresh`` it also fits preprocessing and runs one-off pre-training).
    """
    with torch.random.fork_rng(devices=[]):
        return _train(model, train, val, options)


def _train(model: Trainable, train: Showers, val: Showers | None, o: TrainOptions) -> History:
    started = time.monotonic()
    resume_tensors: dict[str, torch.Tensor] = {}
    if o.resume:
        assert o.out_dir is not None
        resume_tensors = load_for_resume(model, o.out_dir)
        seed = int(model.state["seed"])
        fresh = False
    else:
        seed = o.seed
        torch.manual_seed(derive_seed(seed, "init"))
        model.initialize(derive_seed(seed, "init"))
        model.state = {"epoch": 0, "seed": seed, "step": 0, "history": {}}
        fresh = True
    model.to_device(o.device)
    with progress_bar(o.progress) as bar:
        # preparation (fitting preprocessing, pre-training) can take a while: say so
        prep = bar.add_task(f"prepare {model.model_name}", total=None, info="")
        torch.manual_seed(derive_seed(seed, "prepare"))
        plan = model.training_plan(train, val, seed=seed, fresh=fresh)
        bar.update(prep, total=1, completed=1)
        if o.resume:
            assert o.out_dir is not None
            load_optimizer_tensors(o.out_dir / OPTIMIZER_FILE, resume_tensors, plan.optimizers)
            extra = {k[6:]: v for k, v in resume_tensors.items() if k.startswith("train.")}
            if plan.load_resume_tensors is not None:
                plan.load_resume_tensors(extra)
        history: History = {k: [float(x) for x in v] for k, v in model.state["history"].items()}
        start = int(model.state["epoch"])
        step_no = int(model.state.get("step", 0))
        per_epoch = plan.planned_steps
        total = o.epochs * per_epoch
        budget = None if o.max_minutes is None else 60.0 * o.max_minutes
        summary = plan.summary or _summary
        out_of_time = False
        task = bar.add_task(
            f"train {model.model_name}", total=max(0, o.epochs - start) * per_epoch, info=""
        )
        for epoch in range(start, o.epochs):
            t0 = time.perf_counter()
            es = derive_seed(seed, "epoch", epoch)
            rng = torch.Generator().manual_seed(es)
            torch.manual_seed(es)
            for m in model.modules().values():
                m.train()
            if plan.begin_epoch is not None:
                plan.begin_epoch(es)
            sums: dict[str, float] = {}
            counts: dict[str, int] = {}
            n_steps = 0
            for i, idx in enumerate(plan.batches(rng)):
                fraction = step_no / total
                if budget is not None:
                    fraction = max(fraction, (time.monotonic() - started) / max(budget, 1e-9))
                ctx = StepContext(epoch, step_no, per_epoch, total, min(1.0, fraction), rng, es)
                losses = plan.step(idx, ctx)
                step_no += 1
                n_steps = i + 1
                model.state["step"] = step_no
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                    counts[k] = counts.get(k, 0) + 1
                bar.update(task, advance=1, info=f"epoch {epoch + 1}/{o.epochs} {summary(losses)}")
                if budget is not None and time.monotonic() - started > budget:
                    out_of_time = True
                    break
            record = {k: sums[k] / counts[k] for k in sums}
            if plan.validate is not None and val is not None and len(val) > 0:
                record.update(plan.validate(es))
            record.update(
                epoch=float(epoch + 1), steps=float(n_steps), seconds=time.perf_counter() - t0
            )
            _append(history, record, ("epoch", "steps", "seconds", *plan.loss_names))
            model.state["epoch"] = epoch + 1
            model.state["history"] = history
            if o.out_dir is not None:
                extra = plan.resume_tensors() if plan.resume_tensors is not None else {}
                model.save_checkpoint(o.out_dir, plan.optimizers, extra)
            if out_of_time:
                break
    return history


def save_optimizer_file(
    path: Path,
    optimizers: Mapping[str, torch.optim.Optimizer],
    extra: Mapping[str, torch.Tensor],
    epoch: int,
) -> None:
    """Write ``optimizer.safetensors``: optimizer state and ``train.*`` resume tensors."""
    tensors = optimizer_tensors(optimizers)
    tensors.update({f"train.{k}": v.detach().cpu().contiguous() for k, v in extra.items()})
    if not tensors:  # safetensors cannot write an empty file meaningfully; keep a marker
        tensors["train.empty"] = torch.zeros(1)
    save_file(tensors, str(path), metadata={"epoch": str(int(epoch))})


def default_epochs(config: Mapping[str, Any], epochs: int | None) -> int:
    """``epochs`` if given, else the config's ``epochs`` (1 when it has none)."""
    return int(config.get("epochs", 1)) if epochs is None else epochs


__all__ = [
    "History",
    "StepContext",
    "TrainOptions",
    "TrainingPlan",
    "default_epochs",
    "load_for_resume",
    "progress_bar",
    "train_model",
]
