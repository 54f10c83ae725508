"""What export takes from a model: its deterministic module and its latent-input sampler.

Every :class:`~caloforge.models.base.Generator` splits generation in two::

    inputs = model.latent_inputs(incident_energies, seed=seed)   # tuple of tensors, first dim N
    showers = model.inference_module()(*inputs)                   # (N, V) voxel energies, MeV

Export, quantization and the timing table work on the second part only; the first (Gaussian
noise, Boltzmann-machine prior samples, the incident energy itself) stays with the model and is
described input by input in the artifact (:class:`InputSpec`), so that a C++ caller knows what
to feed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from caloforge.energies import parse_energies
from caloforge.errors import CheckpointError, ConfigError
from caloforge.geometry import Geometry

#: roles an input can play, found from the values the model draws (see :func:`describe_inputs`)
ROLES = ("incident_energy", "normal", "uniform", "binary", "other")


@dataclass(frozen=True)
class InputSpec:
    """One input of the exported module.

    Attributes:
        name: the input name in the exported graph.
        shape: the shape of one shower's slice (the batch dimension N is left out).
        dtype: numpy dtype name, e.g. ``"float32"``.
        role: ``incident_energy`` (the incident energy in MeV, as given), ``normal`` (looks like
            standard-normal noise), ``uniform`` (looks uniform in [0, 1)), ``binary`` (only 0/1 or -1/+1 values: Boltzmann prior
            samples) or ``other``.
        mean, std, min, max: statistics of the values drawn for the export check.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    role: str
    mean: float
    std: float
    min: float
    max: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> InputSpec:
        return cls(
            str(d["name"]),
            tuple(int(x) for x in d["shape"]),
            str(d["dtype"]),
            str(d["role"]),
            float(d["mean"]),
            float(d["std"]),
            float(d["min"]),
            float(d["max"]),
        )


def generator_parts(model) -> tuple[torch.nn.Module, Callable[..., tuple[torch.Tensor, ...]]]:
    """The model's inference module (in eval mode) and its ``latent_inputs`` method.

    Raises:
        ConfigError: when the model does not expose ``inference_module`` and ``latent_inputs``.
    """
    name = getattr(model, "model_name", type(model).__name__)
    module_fn = getattr(model, "inference_module", None)
    latent_fn = getattr(model, "latent_inputs", None)
    if not callable(module_fn) or not callable(latent_fn):
        raise ConfigError(
            f"model {name!r} cannot be exported: it does not provide inference_module() and "
            "latent_inputs(), which export, quantization and the timing table need"
        )
    module = module_fn()
    if not isinstance(module, torch.nn.Module):
        raise ConfigError(
            f"model {name!r}: inference_module() returned {type(module).__name__}, "
            "expected a torch.nn.Module"
        )
    return module.eval(), latent_fn


def draw_latents(model, energies: np.ndarray, seed: int) -> tuple[torch.Tensor, ...]:
    """``model.latent_inputs(energies, seed=seed)`` checked: a tuple of CPU tensors, first dim N.

    Args:
        energies: incident energies in MeV, shape (N,).
    """
    _, latent_fn = generator_parts(model)
    energies = np.asarray(energies, dtype=np.float64).reshape(-1)
    inputs = latent_fn(energies, seed=seed)
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    name = getattr(model, "model_name", type(model).__name__)
    for i, t in enumerate(inputs):
        if not isinstance(t, torch.Tensor) or t.ndim < 1 or t.shape[0] != len(energies):
            raise ConfigError(
                f"model {name!r}: latent input {i} must be a tensor with first dimension "
                f"{len(energies)} (one row per shower), got "
                f"{getattr(t, 'shape', type(t).__name__)}"
            )
    return tuple(t.detach().cpu() for t in inputs)


#: a model's declared distribution (``LatentInput.distribution``) -> the role it plays
DECLARED_ROLES = {"normal(0, 1)": "normal", "uniform(0, 1)": "uniform"}


def describe_inputs(
    inputs: tuple[torch.Tensor, ...],
    energies: np.ndarray,
    names: list[str] | None = None,
    declared: list[str | None] | None = None,
) -> list[InputSpec]:
    """An :class:`InputSpec` per input, its role read off the values that were drawn.

    ``declared`` (one entry per input, from :func:`declared_roles`) names the role a model says
    an input has; it is used when the drawn values agree with it (normal: finite; uniform: in
    [0, 1]), which also covers inputs with too few values to tell by their statistics (such as
    one normal number per shower)."""
    energies = np.asarray(energies, dtype=np.float64).reshape(-1)
    specs, used = [], set()
    for i, t in enumerate(inputs):
        values = t.double().numpy().reshape(len(t), -1)
        said = declared[i] if declared is not None else None
        if values.shape[1] == 1 and np.allclose(values[:, 0], energies, rtol=1e-6):
            role = "incident_energy"
        elif np.all(np.isin(values, (0.0, 1.0))) or np.all(np.isin(values, (-1.0, 1.0))):
            role = "binary"
        elif said == "normal" and np.all(np.isfinite(values)):
            role = "normal"
        elif said == "uniform" and values.min() >= 0 and values.max() <= 1:
            role = "uniform"
        elif values.size >= 64 and abs(values.mean()) < 0.2 and abs(values.std() - 1) < 0.2:
            role = "normal"
        elif (
            values.size >= 64
            and values.min() >= 0
            and values.max() <= 1
            and abs(values.mean() - 0.5) < 0.1
            and abs(values.std() - 12**-0.5) < 0.05
        ):
            role = "uniform"
        else:
            role = "other"
        if names is not None:
            name = names[i]
        elif role == "incident_energy" and "incident_energy" not in used:
            name = "incident_energy"
        else:
            name = f"latent_{i}"
        used.add(name)
        specs.append(
            InputSpec(
                name,
                tuple(int(x) for x in t.shape[1:]),
                str(t.numpy().dtype),
                role,
                float(values.mean()),
                float(values.std()),
                float(values.min()),
                float(values.max()),
            )
        )
    return specs


def input_names(model, n_inputs: int) -> list[str] | None:
    """The model's own names for its latent inputs (``latent_input_names``), if it has them."""
    names = getattr(model, "latent_input_names", None)
    if names is None:
        return None
    names = [str(n) for n in (names() if callable(names) else names)]
    if len(names) != n_inputs or len(set(names)) != n_inputs:
        raise CheckpointError(
            f"model {model.model_name!r}: latent_input_names lists {len(names)} names but "
            f"latent_inputs() returns {n_inputs} tensors"
        )
    return names


def declared_roles(model, n_inputs: int) -> list[str | None] | None:
    """The roles the model's :meth:`latent_spec` declares (None where it declares none that
    :data:`DECLARED_ROLES` knows), or None without a spec of ``n_inputs`` entries."""
    spec_fn = getattr(model, "latent_spec", None)
    spec = spec_fn() if callable(spec_fn) else None
    if spec is None or len(spec) != n_inputs:
        return None
    return [DECLARED_ROLES.get(item.distribution) for item in spec]


def default_energies(geometry: Geometry, n: int, seed: int = 0) -> np.ndarray:
    """Incident energies (MeV, shape (n,)) typical for the geometry's data set.

    Dataset-1 geometries get the 15 dataset-1 energies (256 MeV to 4.2 TeV), everything else
    log-uniform in 1 GeV to 1 TeV (datasets 2 and 3, grids, CaloGAN).
    """
    spec = "ds1" if geometry.name.startswith("ds1") else "loguniform:1e3:1e6"
    return parse_energies(spec, n, seed=seed)
