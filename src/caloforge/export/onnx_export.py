"""ONNX export and ONNX Runtime sessions.

:func:`save_onnx` writes the inference module as an ONNX graph with a free batch dimension
``N`` on every input and on the output ``showers`` (N, V) in MeV; :func:`convert_onnx_fp16`
turns it into a mixed fp16/fp32 graph; :func:`onnx_session` opens any of them.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from caloforge._optional import require
from caloforge.errors import ConfigError
from caloforge.ioutil import atomic_path

if TYPE_CHECKING:
    import onnx
    import onnxruntime as ort
else:
    onnx = require("onnx", extra="export", purpose="ONNX export")
    ort = require("onnxruntime", extra="export", purpose="ONNX export and inference")

#: ONNX opset written by :func:`save_onnx` (ONNX Runtime >= 1.14 runs it)
OPSET = 17
OUTPUT_NAME = "showers"
#: largest |value| a tensor may reach in the fp32 graph for its nodes to be computed in fp16
#: (fp16 overflows at 65504; the margin covers incident energies beyond the checked ones)
FP16_MAX_ABS = 1e4


def save_onnx(
    module: torch.nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    path: str | os.PathLike,
    input_names: list[str],
    *,
    opset: int = OPSET,
) -> Path:
    """Export ``module`` to ONNX at ``path`` (atomically), batch dimension ``N`` left free."""
    dynamic = {name: {0: "N"} for name in [*input_names, OUTPUT_NAME]}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            tuple(example_inputs),
            str(tmp),
            input_names=list(input_names),
            output_names=[OUTPUT_NAME],
            dynamic_axes=dynamic,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,  # the dynamo exporter needs onnxscript, which caloforge does not require
        )
    return Path(path)


def onnx_session(
    path: str | os.PathLike, *, threads: int | None = None, device: str = "cpu"
) -> ort.InferenceSession:
    """An ONNX Runtime session on ``device`` (``cpu`` or ``cuda``) with ``threads`` intra-op threads.

    Raises the exceptions of ONNX Runtime on an invalid file; :mod:`caloforge.export.artifact`
    turns them into one sentence.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ConfigError(
                "device 'cuda' needs onnxruntime with the CUDA execution provider "
                "(pip install onnxruntime-gpu); this one has "
                + ", ".join(ort.get_available_providers())
            )
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    elif device == "cpu":
        providers = ["CPUExecutionProvider"]
    else:
        raise ConfigError(f"unknown device {device!r}; use cpu or cuda")
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)


def run_session(session: ort.InferenceSession, inputs) -> np.ndarray:
    """Run a session on inputs given in graph-input order; (N, V) float32 numpy out."""
    feed = {
        node.name: np.ascontiguousarray(np.asarray(x))
        for node, x in zip(session.get_inputs(), inputs, strict=True)
    }
    return np.asarray(session.run([OUTPUT_NAME], feed)[0], dtype=np.float32)


def tensor_ranges(model: onnx.ModelProto, feeds: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Largest |value| of every float tensor (inputs, intermediates, outputs) over ``feeds``."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    inferred = onnx.shape_inference.infer_shapes(probe)
    known = {o.name for o in probe.graph.output}
    for info in inferred.graph.value_info:
        if info.name not in known and info.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
            probe.graph.output.append(info)
            known.add(info.name)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(
        probe.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    ranges: dict[str, float] = {}
    for feed in feeds:
        for name, value in [*feed.items(), *zip(names, session.run(names, feed), strict=True)]:
            value = np.asarray(value)
            if value.dtype.kind == "f" and value.size:
                ranges[name] = max(ranges.get(name, 0.0), float(np.nanmax(np.abs(value))))
    return ranges


#: operators computed in fp16 by :func:`convert_onnx_fp16` (the heavy linear algebra)
FP16_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose")


def convert_onnx_fp16(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    feeds: list[dict[str, np.ndarray]],
    *,
    max_abs: float = FP16_MAX_ABS,
) -> list[str]:
    """Write a mixed-precision copy of ``src``: MatMul/Gemm/Conv in fp16 where values allow.

    Each such node gets fp16 weights, a Cast to fp16 on its activations and a Cast back to
    fp32 on its output; everything else stays fp32. A node stays entirely fp32 when one of
    its float inputs or outputs reached ``max_abs`` on ``feeds`` (incident and voxel energies
    in MeV exceed fp16's 65504). Inputs and output of the graph stay float32.

    Returns:
        The names of the MatMul/Gemm/Conv nodes kept in fp32.
    """
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    for i, node in enumerate(graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    ranges = tensor_ranges(model, feeds)
    initializers = {t.name: t for t in graph.initializer}
    kept, new_nodes, casted = [], [], {}
    for node in graph.node:
        if node.op_type not in FP16_OPS:
            continue
        if any(ranges.get(t, 0.0) >= max_abs for t in [*node.input, *node.output]):
            kept.append(node.name)
            continue
        for k, name in enumerate(node.input):
            if not name:
                continue
            if name not in casted:
                if name in initializers:
                    half = numpy_helper.to_array(initializers[name]).astype(np.float16)
                    graph.initializer.append(numpy_helper.from_array(half, f"{name}__fp16"))
                else:
                    new_nodes.append(
                        helper.make_node(
                            "Cast",
                            [name],
                            [f"{name}__fp16"],
                            name=f"{name}__to_fp16",
                            to=TensorProto.FLOAT16,
                        )
                    )
                casted[name] = f"{name}__fp16"
            node.input[k] = casted[name]
        for k, name in enumerate(node.output):
            node.output[k] = f"{name}__fp16_out"
            new_nodes.append(
                helper.make_node(
                    "Cast", [node.output[k]], [name], name=f"{name}__to_fp32", to=TensorProto.FLOAT
                )
            )
    graph.node.extend(new_nodes)
    used = {i for n in graph.node for i in n.input}
    unused = [t for t in graph.initializer if t.name not in used]
    for t in unused:
        graph.initializer.remove(t)
    _sort_topologically(graph)
    onnx.checker.check_model(model)
    with atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))
    return kept


def _sort_topologically(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` so every node comes after the producers of its inputs.

    The fp16 converter appends the casts it inserts at the end of the node list; ONNX requires
    topological order. Stable: nodes already in order keep it.
    """
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError("the graph has a cycle or an input nobody produces")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if not any(n is r for r in ready)]
    copies = [onnx.NodeProto() for _ in ordered]
    for copy, node in zip(copies, ordered, strict=True):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)
