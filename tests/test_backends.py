"""--backend onnx / openvino (study/backends.py): the exported forward pass gives torch's embeddings, the backend is
in the cache's fingerprint (a change rebuilds), and Stage 1 scores through it as phase 3 did."""
import json

import numpy as np
import pytest
import torch

from conftest import call, in_process, sample_texts
from study import backends, paths
from study.artifacts import read_npz
from study.cache import read_fingerprint
from study.config import load_config
from study.embedders import embed_texts, inner_model

pytest.importorskip("onnxruntime")


def _cosine(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.slow   # exports and optimises a graph per backend
@pytest.mark.parametrize("backend,int8", [("onnx", False), ("onnx", True), ("openvino", False)])
def test_the_exported_forward_pass_gives_torchs_embeddings(tiny, tmp_path, backend, int8):
    if backend == "openvino":
        pytest.importorskip("openvino")
    texts = sample_texts()
    want, counts, _ = embed_texts(tiny, texts, max_tokens=64, batch_size=4)
    attention = inner_model(tiny).config._attn_implementation
    enc = backends.with_backend(tiny, backend, int8, tmp_path, "tiny-folder", None, say=lambda s: None)
    assert enc.backend == backends.backend_name(backend, int8) and tiny.runtime is None   # the torch encoder is kept
    assert inner_model(tiny).config._attn_implementation == attention   # exported as eager, then set back
    got, got_counts, _ = embed_texts(enc, texts, max_tokens=64, batch_size=4)   # batches of several lengths
    np.testing.assert_array_equal(counts, got_counts)
    cos = _cosine(want.astype(np.float64), got.astype(np.float64))
    if int8:   # int8 weights: close, not equal
        assert cos.min() > 0.95 and np.abs(got - want).max() > 1e-5
    else:
        assert cos.min() > 0.9999 and np.abs(got - want).max() < 1e-3   # OpenVINO fuses kernels: ~1e-4 of values ~1
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 1 + (backend == "onnx") + int8 and all(f.endswith(".onnx") for f in files)   # reused below
    if backend == "onnx":   # onnxruntime runs the fused graph: attention and LayerNorms as single ops
        import onnx

        ops = {n.op_type for n in onnx.load(str(tmp_path / next(f for f in files if f.endswith(".opt.onnx")))).graph.node}
        assert {"Attention", "SkipLayerNormalization"} <= ops, ops
    again = backends.with_backend(tiny, backend, int8, tmp_path, "tiny-folder", None,
                                  say=lambda s: pytest.fail(f"exported again: {s}"))
    np.testing.assert_array_equal(embed_texts(again, texts, max_tokens=64, batch_size=4)[0], got)


def test_the_backend_refuses_what_it_cannot_run(tiny, tmp_path):
    from study.errors import StudyError

    with pytest.raises(StudyError, match="goes with --backend onnx"):
        backends.backend_name("openvino", True)
    half = type(tiny)(**{**tiny.__dict__, "dtype": torch.bfloat16})
    with pytest.raises(StudyError, match="runs on the CPU in float32"):
        backends.with_backend(half, "onnx", False, tmp_path, "x", None)
    assert backends.with_backend(tiny, "torch", False, tmp_path, "x", None) is tiny and not any(tmp_path.iterdir())


@pytest.mark.slow
def test_the_backend_is_in_the_fingerprint_and_stage1_scores_through_it(score_study_copy, tmp_path):
    cfg, demo, root = score_study_copy
    common = ["--config", cfg, "--data-dir", demo, "--models", "tiny"]
    torch_test = read_npz(root / "embeddings" / "demo_ds_tiny_test.npz", "embeddings", "")["embeddings"]
    assert call("embed_articles", *common, "--backend", "onnx") == 0   # the torch caches are out of date: rebuilt
    cache = root / "embeddings" / "demo_ds_tiny_test.npz"
    assert read_fingerprint(cache)["backend"] == "onnx"
    onnx_test = read_npz(cache, "embeddings", "")["embeddings"]
    assert _cosine(torch_test, onnx_test).min() > 0.9999
    assert len(list((root / "embeddings" / "runtimes").glob("*.onnx"))) == 2   # the export and its fused graph
    mtime = cache.stat().st_mtime_ns
    assert call("embed_articles", *common, "--backend", "onnx") == 0 and cache.stat().st_mtime_ns == mtime   # valid
    assert call("train_probes", *common, "--probes", "ridge") == 0   # phase 2 reads caches of another backend
    assert call("embed_articles", *common) == 0 and "backend" not in read_fingerprint(cache)   # torch again: rebuilt
    # Stage 1: a probe trained on torch embeddings (phase 3's bundle) scored with the ONNX runtime
    bundle = root / "results" / "demo_ds_stage1_tiny_ridge"
    outs = {}
    for backend in ("torch", "onnx"):
        outs[backend] = tmp_path / f"{backend}.jsonl"
        assert call("score_articles", "--config", cfg, "--stage1", bundle, "--input", demo / "test.jsonl",
                    "--output", outs[backend], "--backend", backend, "--rule", "plug-in") == 0
    scores = {b: np.array([list(json.loads(line)["scores"].values()) for line in p.read_text().splitlines()])
              for b, p in outs.items()}
    assert np.abs(scores["onnx"] - scores["torch"]).max() < 1e-3
    assert paths.runtime_models(load_config(cfg)).is_dir()


@pytest.mark.slow
def test_the_benchmark_times_the_runtime_and_its_quality_check_costs_int8(workspace):
    cfg, demo = workspace   # the demo embedded by the tiny model in torch
    proc = in_process("benchmark_speed.py", "--config", cfg, "--data-dir", demo, "--n", 20, "--runs", 1, "--device",
                      "cpu", "--probes", "ridge", "--quality-check", "--backend", "onnx", "--int8")
    doc = json.loads(paths.benchmark(load_config(cfg), "demo_ds").read_text())
    m = doc["models"]["tiny"]
    assert m["backend"] == "onnx-int8" and doc["settings"]["backend"] == "onnx-int8"
    q = m["quality_check"]
    assert q["half_dtype"] == "onnx-int8" and q["n_articles"] == 220 and q["target"]["cosine_min"] == 0.99
    assert 0.95 < q["cosine_min"] <= q["cosine_mean"] < 1.0   # int8 weights: close to torch, not equal
    assert q["delta_mae"] == pytest.approx(q["ridge_test_mae_half"] - q["ridge_test_mae_float32"])
    # the reference setting stays torch fp32 (batch 32): the speed-up is the runtime's and the batching's
    assert m["reference"]["articles_per_s"] > 0
    assert m["speedup_vs_reference"] == pytest.approx(m["articles_per_s"] / m["reference"]["articles_per_s"])
    assert "onnx-int8 vs torch float32" in proc.stdout
