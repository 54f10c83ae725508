"""End-to-end workflows behind the CLI verbs ``train``, ``generate`` and ``demo``.

Each is a plain function a user can call from Python; the CLI only parses arguments. The
generation path lives in :mod:`caloforge.generation`; its public names are importable from here.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from caloforge.errors import ConfigError
from caloforge.generation import batch_seed, configure_model, generate, prepare_generation
from caloforge.geometry import Geometry, match_geometry, resolve_geometry
from caloforge.io import inspect_file, read_showers

PathLike = str | os.PathLike

__all__ = [
    "batch_seed",
    "configure_model",
    "data_geometry",
    "demo",
    "generate",
    "load_config",
    "prepare_generation",
    "train",
]


def load_config(path_or_json: str | None) -> dict[str, Any]:
    """A model config from a JSON file path or an inline JSON object string (None -> {})."""
    if not path_or_json:
        return {}
    text = path_or_json
    if not path_or_json.lstrip().startswith("{"):
        p = Path(path_or_json)
        if not p.exists():
            raise ConfigError(
                f"{p}: no such config file (give a JSON file or an inline JSON object)"
            )
        text = p.read_text()
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config {path_or_json!r} is not valid JSON ({exc})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"config {path_or_json!r} must be a JSON object of option: value")
    return cfg


def data_geometry(data: PathLike | list[PathLike], geometry: str | Geometry | None) -> Geometry:
    """The geometry of a shower file: the one given, else its ``geometry`` attribute, else the
    single built-in with its voxel count."""
    first = data[0] if isinstance(data, list) else data
    info = inspect_file(first, geometry)
    if geometry is not None:
        return resolve_geometry(geometry)
    if info.attrs.get("geometry"):
        return resolve_geometry(str(info.attrs["geometry"]))
    matches = match_geometry(info.n_voxels)
    if len(matches) != 1:
        raise ConfigError(
            f"{first}: cannot tell the geometry of {info.n_voxels}-voxel showers; pass --geometry"
        )
    return resolve_geometry(matches[0])


def _claims_run_dir(fn):
    """Check the counts and claim the run directory (check + lock, :mod:`caloforge.outputs`)
    before ``fn`` does any work, so a bad option or a second run on the same directory fails
    at once with one sentence."""

    @functools.wraps(fn)
    def wrapper(model_name, data, out_dir, **kwargs):
        from caloforge.outputs import claim_output
        from caloforge.validate import integer

        integer(kwargs.get("epochs"), "epochs", maximum=1_000_000)
        integer(kwargs.get("max_showers"), "max_showers")
        files = data if isinstance(data, list) else [data]
        inputs = [*files, kwargs.get("val")]
        with claim_output(out_dir, kind="dir", replace=False, inputs=inputs, what="run directory"):
            return fn(model_name, data, out_dir, **kwargs)

    return wrapper


@_claims_run_dir
def train(
    model_name: str,
    data: PathLike | list[PathLike],
    out_dir: PathLike,
    *,
    geometry: str | Geometry | None = None,
    val: PathLike | None = None,
    config: dict[str, Any] | None = None,
    epochs: int | None = None,
    seed: int = 0,
    resume: bool = False,
    max_showers: int | None = None,
    max_minutes: float | None = None,
    progress: bool = True,
    device: str = "cpu",
):
    """Train model ``model_name`` on shower file(s) ``data``; the run directory is ``out_dir``.

    The config and the training options are checked before any data is read. With ``resume``
    training continues from the checkpoint in ``out_dir`` (an error if there is none); a
    ``config`` given then must equal the checkpoint's, otherwise the stored one is used.
    ``device`` (``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``auto``) is where it trains; a device
    this machine lacks or the model does not support is refused before any data is read.
    """
    from caloforge.models.base import load_generator, model_class, read_meta
    from caloforge.models.training import TrainOptions, default_epochs

    cls = model_class(model_name)
    out = Path(out_dir)
    geo = data_geometry(data, geometry)
    if resume and not config:
        read_meta(out)  # a clear error when there is no checkpoint to resume
        model = load_generator(out)
        if model.model_name != model_name:
            raise ConfigError(f"{out} holds a {model.model_name!r} model, not {model_name!r}")
    else:
        model = cls(geo, config)
    TrainOptions(
        epochs=default_epochs(model.config, epochs), seed=seed, out_dir=out, resume=resume,
        max_minutes=max_minutes, device=device,
    )  # fmt: skip
    model.to_device(device)
    if max_showers is not None and (isinstance(max_showers, bool) or max_showers < 1):
        raise ConfigError(f"max_showers must be a positive integer, got {max_showers!r}")
    train_data = read_showers(data, geometry=geo, max_showers=max_showers)
    val_data = read_showers(val, geometry=geo) if val else None
    model.fit(
        train_data, val_data, out_dir=out, epochs=epochs, seed=seed, resume=resume,
        progress=progress, max_minutes=max_minutes, device=device,
    )  # fmt: skip
    return model


def demo(
    out_dir: PathLike = "runs/demo", *, seed: int = 1, minutes: float = 4.0, n_train: int = 8000
) -> Path:
    """The main job end to end on the embedded default: simulate, train the QVAE, generate,
    evaluate, and write the HTML report. Returns the path of the report."""
    from caloforge.evaluate import evaluate
    from caloforge.refsim import simulate_to_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ref_train, ref_test = out / "ref_train.h5", out / "ref_test.h5"
    spec = "loguniform:1e3:1e6"
    print(f"[1/4] simulating {n_train} + 4000 ds2 electron showers with refsim ({spec} MeV)")
    simulate_to_file(ref_train, "ds2", "electron", spec, n=n_train, seed=seed)
    simulate_to_file(ref_test, "ds2", "electron", spec, n=4000, seed=seed + 1)
    print(f"[2/4] training the QVAE for about {minutes:g} minutes")
    run = out / "qvae"
    train("qvae", ref_train, run, config={"epochs": 200}, seed=seed, max_minutes=minutes)
    print("[3/4] generating 4000 showers with block-Gibbs prior sampling")
    gen = out / "gen_qvae.h5"
    generate(run, gen, energies_from=ref_test, seed=seed, sampler="gibbs")
    print("[4/4] evaluating against the held-out reference sample")
    evaluate(gen, ref_test, out_dir=out / "report", seed=seed, protocol="fast")
    report = out / "report" / "index.html"
    print(f"report: {report.resolve()}")
    return report
