"""Standalone artifacts of a generator: TorchScript or ONNX, fp32, fp16 or int8, checked.

::

    from caloforge.export import export_model, load_artifact

    artifact = export_model("runs/gan3d", "export/gan3d-int8", fmt="onnx", precision="int8")
    print(artifact.check.summary())
    showers = load_artifact("export/gan3d-int8").run(*model.latent_inputs(energies, seed=1))

See docs/deployment.md for the artifact layout, the tolerances and calling it from C++.
"""

from caloforge.export.artifact import (
    ARTIFACT_FILE,
    MODEL_FILES,
    PRECISIONS,
    Artifact,
    load_artifact,
    read_artifact_meta,
)
from caloforge.export.exporter import FORMATS, export_model
from caloforge.export.source import InputSpec, default_energies, draw_latents, generator_parts
from caloforge.export.verify import TOLERANCES, CheckResult, Tolerance, compare_showers

__all__ = [
    "ARTIFACT_FILE",
    "FORMATS",
    "MODEL_FILES",
    "PRECISIONS",
    "TOLERANCES",
    "Artifact",
    "CheckResult",
    "InputSpec",
    "Tolerance",
    "compare_showers",
    "default_energies",
    "draw_latents",
    "export_model",
    "generator_parts",
    "load_artifact",
    "read_artifact_meta",
]
