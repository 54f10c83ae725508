"""What the QVAE prior benchmarks share (``qvae_prior_ablation.py``, ``qvae_prior_scan.py``):
training or reusing a model, identical decoder noise, decoding latent draws, and the low-level
classifier AUC over several classifier seeds. Not a benchmark itself."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch


def train_or_load(
    name: str, config: dict, train, detector: str, run: Path, seed: int, minutes: float
) -> tuple[object, float | None]:
    """Model ``name`` trained on ``train`` for ``minutes`` of wall time into ``run`` (epochs
    capped at 1000), or the one already there; returns it and the training seconds (None when
    it was reused).

    A run is reused only if ``<run>.request.json`` (written beside it after training) records
    the same model, config, detector, seed, budget, training-set size and refsim version: a run
    left by another request would otherwise be measured under this request's name."""
    from caloforge.geometry import get_geometry
    from caloforge.models import model_class
    from caloforge.models.base import load_generator
    from caloforge.refsim.version import REFSIM_VERSION

    request = {
        "model": name, "config": config, "detector": detector, "seed": seed,
        "minutes": minutes, "n_train": len(train), "refsim_version": REFSIM_VERSION,
    }  # fmt: skip
    request_file = run.with_name(run.name + ".request.json")
    if (run / "model.json").exists():
        stored = json.loads(request_file.read_text()) if request_file.exists() else None
        if stored != json.loads(json.dumps(request)):
            raise SystemExit(
                f"{run} holds a run of another request ({request_file.name} "
                f"{'differs' if stored else 'is missing'}); remove it or choose another --out"
            )
        return load_generator(run), None
    t0 = time.perf_counter()
    model = model_class(name)(get_geometry(detector), {"epochs": 1000, **config})
    model.fit(train, out_dir=run, seed=seed, max_minutes=minutes, progress=False)
    write_json(request_file, request)
    return model, time.perf_counter() - t0


def decoder_noise(n: int, n_voxels: int, seed: int, n_layers: int = 0) -> tuple[torch.Tensor, ...]:
    """The hit uniforms and energy normals, each (n, n_voxels), the response normals (n, 1) of a
    model with the response head and the layer normals (n, n_layers) of one with the layer head,
    shared by every latent draw."""
    gen = torch.Generator().manual_seed(seed)
    uniform, normal = (
        torch.rand(n, n_voxels, generator=gen),
        torch.randn(n, n_voxels, generator=gen),
    )
    return (
        uniform,
        normal,
        torch.randn(n, 1, generator=gen),
        torch.randn(n, n_layers, generator=gen),
    )


def decode(model, z: torch.Tensor, noise: tuple[torch.Tensor, ...], e: np.ndarray):
    """Showers (N, V) MeV of latent draws z (N, n_latent) at energies e (N,) MeV, with ``noise``."""
    e_t = torch.as_tensor(np.asarray(e, dtype=np.float32).reshape(-1, 1))
    extra = (noise[2],) if model.options.response_head else ()
    if model.options.layer_head:
        extra = (*extra, noise[3])
    with torch.no_grad():
        return model.inference_module()(z, noise[0], noise[1], *extra, e_t).numpy()


def classifier_aucs(ref_in, x: np.ndarray, e: np.ndarray, seeds: list[int]) -> dict:
    """Low-level classifier (protocol ``fast``) AUC of showers x (N, V) at energies e against the
    reference inputs ``ref_in``, once per classifier seed: per-seed AUCs, mean, spread, and the
    analytic null AUC sigma of this test size."""
    from caloforge.evaluate.classifier import classifier_inputs, classifier_test

    gen_in = classifier_inputs("low", incident_energies=e, showers=x)
    res = [classifier_test(ref_in, gen_in, protocol="fast", seed=s) for s in seeds]
    aucs = np.array([r.auc for r in res])
    return {
        "auc": aucs.tolist(),
        "auc_mean": float(aucs.mean()),
        "auc_seed_std": float(aucs.std(ddof=1)) if len(aucs) > 1 else None,
        "auc_null_sigma": float(np.mean([r.auc_null_sigma for r in res])),
    }


def null_sigma(null_row: dict) -> float:
    """The null spread of an AUC: the larger of the analytic AUC sigma of a null classifier on
    this test size and the null AUC's spread over classifier seeds."""
    return max(null_row["auc_null_sigma"], float(np.std(null_row["auc"], ddof=1)))


def write_json(path: Path, result: dict) -> None:
    """Write ``result`` to ``path`` atomically (a reader never sees a half-written file)."""
    from caloforge.ioutil import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=2))
