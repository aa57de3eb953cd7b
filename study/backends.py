"""CPU runtimes for an encoder's forward pass: `--backend onnx` (onnxruntime, `--int8`: weights quantized to int8 by
onnxruntime's dynamic quantization) or `--backend openvino` (OpenVINO reading the same ONNX file).

The whole forward pass the study runs in torch, transformer + pooling + normalisation (`Encoder.forward`), is
exported once with torch.onnx.export from the loaded local model (offline; attention exported as eager matmul +
softmax, which onnxruntime's transformer optimizer fuses for `--backend onnx`, fp32 and before int8) and kept under
`<embeddings_dir>/runtimes/` (`paths.runtime_model`), named by a digest of what made it (model folder, revision,
pooling, normalisation, int8, the torch and exporter versions); a later run loads the file. The encode loop is
unchanged: the same tokens, the same length-sorted batches; only `Encoder.forward` runs in the other runtime.
The backend goes into the embedding cache's fingerprint (a change rebuilds the cache) and so into each probe's
recorded embeddings and its Stage 1 bundle; score_articles.py embeds with the backend the probe's embeddings were
made with unless told otherwise.
"""
from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from study.errors import StudyError

BACKENDS = ("torch", "onnx", "openvino")
EXPORT_VERSION = 2   # bump when the export changes: older files are then made again (2: eager attention, fusable)


def backend_name(backend: str, int8: bool) -> str:
    """What the fingerprint and the recipe record: torch, onnx, onnx-int8, openvino."""
    if int8 and backend != "onnx":
        raise StudyError(f"--int8 quantizes with onnxruntime: it goes with --backend onnx, not {backend}")
    return f"{backend}-int8" if int8 else backend


def parse_backend(name: str) -> tuple[str, bool]:
    """(backend, int8) of a recorded backend name."""
    if name not in ("torch", "onnx", "onnx-int8", "openvino"):
        raise StudyError(f"unknown backend '{name}' (known: torch, onnx, onnx-int8, openvino)")
    return name.removesuffix("-int8"), name.endswith("-int8")


class _Forward(torch.nn.Module):
    """Encoder.forward as a module: (input_ids, attention_mask) -> pooled (normalised) embeddings."""

    def __init__(self, encoder):
        super().__init__()
        self.model, self.encoder = encoder.model, encoder

    def forward(self, input_ids, attention_mask):
        return self.encoder.forward(input_ids, attention_mask)


def export_key(encoder, location: str, revision: str | None, int8: bool) -> str:
    from study.provenance import versions   # noqa: PLC0415

    what = {"location": str(location), "revision": revision, "pooling": encoder.pooling, "normalize": encoder.normalize,
            "int8": int8, "export": EXPORT_VERSION, "versions": {k: v for k, v in versions().items()
                                                                  if k in ("torch", "transformers", "onnx")}}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def export_onnx(encoder, path: Path) -> None:
    """Write the encoder's forward pass as ONNX (fp32, CPU), batch and sequence dynamic; atomically."""
    import onnx  # noqa: F401,PLC0415 (the exporter needs it; a clear error below when absent)

    path.parent.mkdir(parents=True, exist_ok=True)
    ids = torch.ones((2, 8), dtype=torch.long)
    mask = torch.ones((2, 8), dtype=torch.long)
    mask[1, 5:] = 0
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with torch.inference_mode(False), torch.no_grad(), _eager_attention(encoder):
        torch.onnx.export(_Forward(encoder).eval(), (ids, mask), str(tmp), input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}})
    os.replace(tmp, path)


@contextmanager
def _eager_attention(encoder):
    """The model's attention as plain matmul + softmax while exporting: the SDPA path exports as a graph that neither
    onnxruntime's transformer optimizer can fuse nor OpenVINO runs as fast (e5-small, 300 articles: OpenVINO 29.3 ->
    34.6 articles/s, onnxruntime int8 26.9 -> 35.5 once fused); the torch path keeps its own setting afterwards."""
    from study.embedders import inner_model   # noqa: PLC0415

    model = inner_model(encoder)
    before = getattr(model.config, "_attn_implementation", None)
    switch = before not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(before)


def optimize_graph(encoder, source: Path, path: Path) -> None:
    """onnxruntime's transformer optimizer (fused attention, embedding + LayerNorm, skip LayerNorm, bias GELU) on the
    exported graph, for onnxruntime only (OpenVINO reads the plain export: no faster on the fused one); atomically."""
    from onnxruntime.transformers.optimizer import optimize_model   # noqa: PLC0415

    from study.embedders import inner_model   # noqa: PLC0415

    config = inner_model(encoder).config
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    optimize_model(str(source), model_type="bert", num_heads=getattr(config, "num_attention_heads", 0),
                   hidden_size=getattr(config, "hidden_size", 0), opt_level=0).save_model_to_file(str(tmp))
    os.replace(tmp, path)


def quantize_int8(source: Path, path: Path) -> None:
    """onnxruntime's dynamic quantization: weights int8 per output channel (per tensor loses more: cosine 0.82 against
    0.987 at the worst article of the stand-in), activations quantized per batch at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic   # noqa: PLC0415

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": 1})   # float: the fused ops' outputs have no inferred type
    os.replace(tmp, path)


def runtime_session(path: Path, backend: str, threads: int):
    """A callable (input_ids, attention_mask as int64 numpy) -> float32 embeddings running the ONNX file."""
    if backend == "onnx":
        import onnxruntime as ort   # noqa: PLC0415

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return lambda ids, mask: session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    import openvino as ov   # noqa: PLC0415

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads})
    request = compiled.create_infer_request()
    return lambda ids, mask: np.array(request.infer({"input_ids": ids, "attention_mask": mask})[0], dtype=np.float32)


def with_backend(encoder, backend: str, int8: bool, folder: Path, location: str, revision: str | None, say=print):
    """`encoder` whose forward pass runs in `backend` (torch: unchanged), exported (and quantized) on first use."""
    if backend == "torch":
        return encoder
    if encoder.device.type != "cpu" or encoder.dtype != torch.float32:
        raise StudyError(f"--backend {backend} runs on the CPU in float32 (found {encoder.device.type}, "
                         f"{str(encoder.dtype).removeprefix('torch.')}): add --device cpu and leave --dtype out")
    if encoder.packed or encoder.layers:
        raise StudyError(f"--backend {backend} runs the model's own output on padded batches: not with --packed or "
                         "--layers")
    missing = [m for m in (["onnx", "onnxruntime"] if backend == "onnx" else ["onnx", "openvino"])
               if not _importable(m)]
    if missing:
        raise StudyError(f"--backend {backend} needs the package(s) {', '.join(missing)}: pip install "
                         + " ".join(missing))
    key = export_key(encoder, location, revision, False)
    fp32 = folder / f"{key}.onnx"
    if not fp32.is_file():
        say(f"exporting {location} to ONNX: {fp32}")
        export_onnx(encoder, fp32)
    path = fp32
    if backend == "onnx":   # onnxruntime runs the fused graph (fp32 and int8)
        path = folder / f"{key}.opt.onnx"
        if not path.is_file():
            say(f"fusing the graph for onnxruntime: {path}")
            optimize_graph(encoder, fp32, path)
    if int8:
        fused, path = path, folder / f"{export_key(encoder, location, revision, True)}.int8.onnx"
        if not path.is_file():
            say(f"quantizing to int8: {path}")
            quantize_int8(fused, path)
    from dataclasses import replace   # noqa: PLC0415

    return replace(encoder, runtime=runtime_session(path, backend, torch.get_num_threads()),
                   backend=backend_name(backend, int8))


def _importable(module: str) -> bool:
    import importlib.util   # noqa: PLC0415

    return importlib.util.find_spec(module) is not None
