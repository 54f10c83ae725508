"""``export_model``: a trained model directory -> a checked, standalone artifact directory."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from caloforge.errors import CaloforgeError, ConfigError
from caloforge.export.artifact import (
    ARTIFACT_FILE,
    MODEL_FILES,
    PRECISIONS,
    Artifact,
    load_artifact,
    write_artifact,
)
from caloforge.export.onnx_export import convert_onnx_fp16, save_onnx
from caloforge.export.quantize import (
    calibration_feeds,
    half_precision_torch,
    quantize_onnx_dynamic,
    quantize_onnx_static,
    quantize_torch_dynamic,
)
from caloforge.export.source import (
    declared_roles,
    default_energies,
    describe_inputs,
    draw_latents,
    generator_parts,
    input_names,
)
from caloforge.export.torchscript import save_torchscript
from caloforge.export.verify import compare_showers, tolerance_for
from caloforge.outputs import atomic_dir

FORMATS = tuple(MODEL_FILES)


def export_model(
    model,
    out_dir: str | os.PathLike,
    *,
    fmt: str = "onnx",
    precision: str = "fp32",
    calibration: str | os.PathLike | None = None,
    n_calibration: int = 512,
    n_check: int = 64,
    tolerance: float | None = None,
    seed: int = 0,
) -> Artifact:
    """Export a generator's inference module and check it against the original.

    Args:
        model: a :class:`~caloforge.models.base.Generator` or a trained model directory.
        out_dir: the artifact directory to write (created; its model file and artifact.json
            are replaced).
        fmt: ``onnx`` or ``torchscript``.
        precision: ``fp32``, ``fp16`` or ``int8``. int8 is static post-training quantization
            when ``calibration`` is given (ONNX only), dynamic otherwise.
        calibration: a shower file of the model's geometry; the latent inputs drawn for its
            first ``n_calibration`` incident energies calibrate static int8, and its first
            ``n_check`` energies are used for the check.
        n_check: showers compared between the export and the original.
        tolerance: replaces every checked error fraction of the default tolerance of the
            precision (:data:`caloforge.export.verify.TOLERANCES`).
        seed: seeds the latent inputs of the check and of the calibration.

    Returns:
        The loaded artifact; ``artifact.check`` holds the comparison (``passed`` may be False:
        the artifact is still written so that it can be inspected).
    """
    from caloforge.models.base import Generator, load_generator

    run_dir = None
    if not isinstance(model, Generator):
        run_dir = str(model)
        model = load_generator(model)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if n_check < 1:
        raise ConfigError(f"n_check must be >= 1, got {n_check}")
    tol = tolerance_for(precision, tolerance)
    quantization = None
    if precision == "int8":
        quantization = "static" if calibration is not None else "dynamic"
    elif calibration is not None:
        raise ConfigError(f"--calibration applies to int8 only, not to {precision}")
    if fmt == "torchscript" and quantization == "static":
        raise ConfigError("static int8 quantization is available for --format onnx only")

    module, _ = generator_parts(model)
    cal_energies = None
    if calibration is not None:
        from caloforge.io import read_showers

        cal = read_showers(calibration, geometry=model.geometry, max_showers=n_calibration)
        cal_energies = cal.incident_energies
        check_energies = np.resize(cal_energies, n_check)
    else:
        check_energies = default_energies(model.geometry, n_check, seed)

    latents = draw_latents(model, check_energies, seed)
    # traced on other inputs, and another batch size, than the check runs on: a trace that
    # baked in values or the batch size fails the check
    n_example = max(1, min(16, n_check // 2))
    example = draw_latents(model, np.resize(check_energies[::-1], n_example), seed + 1)
    specs = describe_inputs(
        latents,
        check_energies,
        input_names(model, len(latents)),
        declared_roles(model, len(latents)),
    )
    names = [s.name for s in specs]
    with torch.no_grad():
        original = module(*latents).float().numpy()
    if original.shape != (n_check, model.geometry.n_voxels):
        raise ConfigError(
            f"model {model.model_name!r}: inference module returns shape {original.shape}, "
            f"expected ({n_check}, {model.geometry.n_voxels}) for geometry {model.geometry.name!r}"
        )

    final_dir = Path(out_dir)
    # everything is written into a temporary sibling that replaces the old artifact only when
    # complete: an interrupted or failed export leaves the previous artifact as it was
    with atomic_dir(
        final_dir, inputs=[run_dir, calibration], marker=ARTIFACT_FILE, what="artifact directory"
    ) as staging:
        _write_export(
            staging, model, module, fmt, precision, quantization, calibration, cal_energies,
            example, latents, names, specs, original, tol, seed, run_dir,
        )  # fmt: skip
    artifact = load_artifact(final_dir)
    return artifact


def _write_export(
    out_dir, model, module, fmt, precision, quantization, calibration, cal_energies, example,
    latents, names, specs, original, tol, seed, run_dir,
) -> None:  # fmt: skip
    """Export into the (staging) directory ``out_dir``: model file, inputs, voxels, check."""
    model_path = out_dir / MODEL_FILES[fmt]
    extra: dict = {}
    try:
        if fmt == "onnx":
            extra.update(
                _export_onnx(
                    model,
                    module,
                    example,
                    latents,
                    names,
                    model_path,
                    precision,
                    quantization,
                    cal_energies,
                    seed,
                )
            )
            if calibration is not None:
                extra["calibration"] = {"file": str(calibration), "n_showers": len(cal_energies)}
        else:
            extra.update(_export_torchscript(module, example, latents, model_path, precision))
    except CaloforgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - tracer/exporter/quantizer errors of any kind
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(
            f"model {model.model_name!r} could not be exported to {fmt} {precision}: {first}"
        ) from exc

    source = {
        "model": model.model_name,
        "run_dir": run_dir,
        "config": model.config,
        "n_parameters": model.n_parameters(),
        "prior": getattr(model, "prior_description", None),
    }
    common = dict(
        fmt=fmt,
        precision=precision,
        quantization=quantization,
        inputs=specs,
        geometry=model.geometry,
        source=source,
        extra=extra,
    )
    write_artifact(out_dir, check=None, **common)
    artifact = load_artifact(out_dir)
    try:
        exported = artifact.run(*latents)
    except Exception as exc:  # noqa: BLE001 - runtime errors of the traced graph
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:200]
        raise ConfigError(
            f"the {fmt} export of model {model.model_name!r} fails on inputs other than those "
            f"it was traced with (does it depend on the batch size or on values?): {first}"
        ) from exc
    result = compare_showers(original, exported, tol, model.geometry)
    write_artifact(out_dir, check=result, **common)


def _export_onnx(
    model, module, example, latents, names, path, precision, quantization, cal_energies, seed
):
    """Write the ONNX file: traced on ``example``; fp16 value ranges taken on ``latents``."""
    if precision == "fp32":
        save_onnx(module, example, path, names)
        return {}
    with tempfile.TemporaryDirectory() as work:
        fp32 = save_onnx(module, example, Path(work) / "fp32.onnx", names)
        if precision == "fp16":
            feed = {n: t.numpy() for n, t in zip(names, latents, strict=True)}
            kept = convert_onnx_fp16(fp32, path, [feed])
            return {"fp32_nodes": kept}
        if quantization == "dynamic":
            quantize_onnx_dynamic(fp32, path)
            return {}
        feeds = calibration_feeds(model, cal_energies, names, seed=seed + 1)
        kept = quantize_onnx_static(fp32, path, feeds)
        return {"fp32_nodes": kept}


def _export_torchscript(module, example, latents, path, precision):
    """Write the TorchScript file: traced on ``example``; fp16 ranges taken on ``latents``."""
    if precision == "fp32":
        save_torchscript(module, example, path)
        return {}
    if precision == "fp16":
        half, kept = half_precision_torch(module, latents)
        save_torchscript(half, example, path)
        return {"fp32_layers": kept}
    save_torchscript(quantize_torch_dynamic(module), example, path)
    return {}
