"""End-to-end workflows behind the CLI verbs ``train``, ``generate`` and ``demo``.

Each is a plain function a user can call from Python; the CLI only parses arguments.
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from caloforge.errors import ConfigError
from caloforge.geometry import Geometry, match_geometry, resolve_geometry
from caloforge.io import ShowerWriter, inspect_file, read_showers

PathLike = str | os.PathLike


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
):
    """Train model ``model_name`` on shower file(s) ``data``; the run directory is ``out_dir``.

    The config and the training options are checked before any data is read. With ``resume``
    training continues from the checkpoint in ``out_dir`` (an error if there is none); a
    ``config`` given then must equal the checkpoint's, otherwise the stored one is used.
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
        max_minutes=max_minutes,
    )  # fmt: skip
    if max_showers is not None and (isinstance(max_showers, bool) or max_showers < 1):
        raise ConfigError(f"max_showers must be a positive integer, got {max_showers!r}")
    train_data = read_showers(data, geometry=geo, max_showers=max_showers)
    val_data = read_showers(val, geometry=geo) if val else None
    model.fit(
        train_data, val_data, out_dir=out, epochs=epochs, seed=seed, resume=resume,
        progress=progress, max_minutes=max_minutes,
    )  # fmt: skip
    return model


def batch_seed(seed: int, batch: int) -> int:
    """Seed of generation batch ``batch`` (of ``batch_size`` showers) in a run seeded ``seed``."""
    return int(seed) * 1_000_003 + int(batch)


def configure_model(
    model,
    sampler: str | None = None,
    sampler_options: dict[str, Any] | None = None,
    hardware: dict[str, Any] | None = None,
):
    """Apply the generation options to a loaded model: the prior sampler (QVAE) and the
    simulated device (quantum-circuit models). Returns the model to sample from."""
    if sampler_options and sampler is None:
        raise ConfigError("--sampler-options needs --sampler, the sampler they are for")
    if sampler is not None:
        model.set_sampler(sampler, **(sampler_options or {}))  # ConfigError without a prior
    if hardware:
        model = model.with_hardware(**hardware)  # ConfigError without a quantum device
    return model


def prepare_generation(
    run_dir: PathLike,
    *,
    n: int | None = None,
    energies: str | None = None,
    energies_from: PathLike | None = None,
    sampler: str | None = None,
    sampler_options: dict[str, Any] | None = None,
    hardware: dict[str, Any] | None = None,
    seed: int = 0,
) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """Check the arguments of :func:`generate`: (configured model, incident energies (N,) MeV,
    output file attributes)."""
    from caloforge.energies import parse_energies
    from caloforge.validate import showers

    if (energies is None) == (energies_from is None):
        raise ConfigError("give exactly one of --energies SPEC (with --n) or --energies-from FILE")
    showers(n, "the number of showers n")
    if energies_from is not None:
        e = read_showers(energies_from, validate=False, max_showers=n).incident_energies
        parse_energies(e, len(e))  # finite, > 0 and <= the maximum, or one sentence
    else:
        if n is None:
            raise ConfigError("--energies needs --n, the number of showers")
        e = parse_energies(energies, n, seed=seed)
    from caloforge.models.base import load_generator

    model = load_generator(run_dir)
    model = configure_model(model, sampler, sampler_options, hardware)
    attrs = {
        "geometry": model.geometry.name,
        "producer": f"caloforge generate ({model.model_name})",
        "seed": seed,
        "model_dir": str(run_dir),
        "sampler": sampler or "",
        "sampler_options": json.dumps(sampler_options or {}),
        "hardware": json.dumps(hardware or {}),
    }
    return model, e, attrs


def generate(
    run_dir: PathLike,
    output: PathLike,
    *,
    n: int | None = None,
    energies: str | None = None,
    energies_from: PathLike | None = None,
    sampler: str | None = None,
    sampler_options: dict[str, Any] | None = None,
    hardware: dict[str, Any] | None = None,
    seed: int = 0,
    batch_size: int = 1024,
    progress: bool = True,
    workers: int | None = None,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Generate showers with a trained model into ``output`` (CaloChallenge layout, atomic).

    Incident energies come either from a spectrum spec (``energies`` with ``n``) or from the
    ``incident_energies`` of an existing file (``energies_from``, optionally the first ``n``).
    ``hardware`` (quantum-circuit models) runs the trained circuit on a different simulated
    device, e.g. ``{"depolarizing": 0.01, "shots": 1000}``. Batch i of ``batch_size`` showers is
    sampled with seed :func:`batch_seed` (seed, i); with ``workers`` or ``scheduler`` (``threads``,
    ``processes``, or a ``tcp://host:port`` dask.distributed address) the batches run in parallel
    on Dask (:func:`caloforge.scaleout.write_generation`) and the file is the same.
    Returns a dict with the number of showers and the generation wall time in seconds.
    """
    from caloforge.models.training import progress_bar
    from caloforge.validate import batch

    batch(batch_size, "batch_size")
    model, e, attrs = prepare_generation(
        run_dir, n=n, energies=energies, energies_from=energies_from, sampler=sampler,
        sampler_options=sampler_options, hardware=hardware, seed=seed,
    )  # fmt: skip
    t0 = time.perf_counter()
    if workers is not None or scheduler is not None:
        from caloforge.scaleout import DEFAULT_SCHEDULER, ModelSpec, write_generation

        spec = ModelSpec.of(run_dir, sampler, sampler_options, hardware)
        n_voxels = model.geometry.n_voxels
        del model  # every worker loads its own
        write_generation(
            output, spec, e, attrs, n_voxels, seed=seed, batch_size=batch_size, workers=workers,
            scheduler=scheduler or DEFAULT_SCHEDULER, progress=progress,
        )  # fmt: skip
        return {"n": int(len(e)), "seconds": time.perf_counter() - t0, "output": str(output)}
    with (
        ShowerWriter(
            output, model.geometry.n_voxels, attrs=attrs, inputs=[energies_from, run_dir]
        ) as w,
        progress_bar(progress) as bar,
    ):
        task = bar.add_task("generate", total=len(e), info="")
        for i, start in enumerate(range(0, len(e), batch_size)):
            chunk = e[start : start + batch_size]
            showers = model.sample(chunk, seed=batch_seed(seed, i), batch_size=batch_size)
            w.append(chunk, showers)
            bar.update(task, advance=len(chunk))
    return {"n": int(len(e)), "seconds": time.perf_counter() - t0, "output": str(output)}


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
