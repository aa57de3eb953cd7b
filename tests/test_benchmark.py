"""Phase 4: benchmark_speed.py on tiny models: JSON layout, consistent figures, FLOP count, probes, quality."""
import json
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, in_process, write_config
from study.benchmark import (architecture_dir, benchmark_articles, end_to_end, format_table, forward_flops, hf_model,
                             non_embedding_params, peak_tflops, run_benchmark, Options)
from study.config import load_config
from study.data import load_split, load_splits, resolve_dataset
from study.embedders import Encoder, random_weight_encoder, tokenize
from study.errors import StudyError

MODEL_KEYS = {"random_weights", "dtype", "batch_size", "token_budget", "max_tokens", "n_articles",
              "load_seconds_cold", "load_seconds_warm", "articles_per_s", "tokens_per_s", "run_seconds", "tflops",
              "share_of_peak", "peak_memory_mb", "memory_kind", "tokenize_seconds", "padding_overhead",
              "reference", "speedup_vs_reference"}
# A 2-layer encoder of hidden size 32 and feed-forward size 64, counted by hand, per layer:
# Q, K, V, O: 4 * (32*32 + 32); two LayerNorms: 2 * 64; FFN: 32*64 + 64 + 64*32 + 32.
# Plus the embeddings' LayerNorm (64); the embedding tables and the pooler are not counted.
TINY_LAYER = 4 * (32 * 32 + 32) + 2 * 64 + (32 * 64 + 64 + 64 * 32 + 32)
TINY_NON_EMBEDDING = 2 * TINY_LAYER + 64


def _tiny_arch(folder: Path, kind: str = "xlm-roberta") -> Path:
    from transformers import BertConfig, XLMRobertaConfig

    cls = XLMRobertaConfig if kind == "xlm-roberta" else BertConfig
    cls(vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=130).save_pretrained(str(folder))
    return folder


def test_flop_formula_against_a_hand_count():
    from transformers import BertConfig, BertModel

    model = BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=64))
    assert TINY_LAYER == 8544
    assert non_embedding_params(model) == TINY_NON_EMBEDDING == 17152
    enc = Encoder(model=model, tokenizer=None, device=torch.device("cpu"), dtype=torch.float32,
                  source="transformers", pooling="mean", dim=32)
    assert hf_model(enc) is model
    # two articles of 10 and 20 real tokens: 2*N*T per article plus 4*L*T^2*H attention
    expected = (2 * 17152 * 10 + 4 * 2 * 10 ** 2 * 32) + (2 * 17152 * 20 + 4 * 2 * 20 ** 2 * 32)
    assert forward_flops([10, 20], 17152, 2, 32) == expected == 1_157_120


def test_peak_table_by_device_name():
    assert peak_tflops("NVIDIA H100 80GB HBM3", "bfloat16") == (989.0, "H100 SXM")
    assert peak_tflops("NVIDIA H100 PCIe", "bfloat16")[0] == 756.0
    assert peak_tflops("NVIDIA H200", "bfloat16")[0] == 989.0
    assert peak_tflops("NVIDIA A100-SXM4-80GB", "float16")[0] == 312.0
    assert peak_tflops("NVIDIA L4", "bfloat16")[0] == 121.0
    assert peak_tflops("NVIDIA L40S", "bfloat16")[0] == 362.0
    assert peak_tflops("NVIDIA H100 80GB HBM3", "float32")[0] == 67.0     # fp32 peak kept apart
    assert peak_tflops("Some Future GPU", "bfloat16") == (None, None)
    assert peak_tflops("NVIDIA H100 80GB HBM3", "bfloat16", "cpu") == (None, None)


def test_architecture_folder_lookup(tmp_path, tiny_config):
    cfg = load_config(REPO / "config.yaml")
    shapes = tmp_path / "shapes"
    _tiny_arch(shapes / "multilingual-MiniLM-L12-v2")
    assert architecture_dir(cfg, "multilingual-MiniLM-L12-v2", shapes) == shapes / "multilingual-MiniLM-L12-v2"
    with pytest.raises(StudyError, match="no architecture config for model 'bge-m3'"):
        architecture_dir(cfg, "bge-m3", shapes)
    # a config name that differs from the folder: matched through the HF id without "paraphrase-"
    tiny = load_config(write_config(tmp_path, {
        "mini": cfg.model("multilingual-MiniLM-L12-v2").model_dump(),
        **{k: v.model_dump() for k, v in load_config(tiny_config).embedding_models.items()}}))
    assert architecture_dir(tiny, "mini", shapes) == shapes / "multilingual-MiniLM-L12-v2"
    # no folder under shapes: the local model's own config.json
    assert architecture_dir(tiny, "tiny", shapes) == Path(tiny.model_location("tiny"))
    # the shapes shipped inside the project (a GPU server has no ../shared) cover every study model
    shipped = REPO / "study" / "model_shapes"
    for model in cfg.default_models:
        assert architecture_dir(cfg, model, shipped) == shipped / model


def test_benchmark_articles_come_from_test_then_train(demo_dir):
    cfg = load_config(REPO / "config.yaml")
    splits = load_splits(resolve_dataset(cfg, None, str(demo_dir)), cfg.score_range)
    texts, source = benchmark_articles(splits, 25)
    assert texts == splits["test"].texts[:25] and source == "test[:25]"
    texts, source = benchmark_articles(splits, 70)
    assert texts == splits["test"].texts + splits["train"].texts[:10] and source == "test[:60] + train[:10]"


def test_end_to_end_adds_embedding_and_probe_cost():
    models = {"m": {"articles_per_s": 500.0}}
    probes = {"m": {"ridge": {"predict_ms_per_1000": 3.0}}, "other": {"ridge": {"predict_ms_per_1000": 1.0}}}
    e2e = end_to_end(models, probes, (20, 50))
    assert set(e2e) == {"m"}
    assert e2e["m"]["ridge"]["ms_per_article"] == pytest.approx(2.003)
    assert e2e["m"]["ridge"]["speedup_vs_fine_tuned"] == pytest.approx([20 / 2.003, 50 / 2.003])


def test_quality_check_refuses_random_weights(tiny_config, demo_dir):
    cfg = load_config(tiny_config)
    dataset = resolve_dataset(cfg, None, str(demo_dir))
    with pytest.raises(StudyError, match="needs real weights"):
        run_benchmark(cfg, dataset, cfg.select_variants(["tiny"], None), {}, torch.device("cpu"), "float32",
                      Options(random_weights=True, quality_check=True), say=lambda s: None)


def _check_common(m: dict, n: int, runs: int, mean_tokens: float, flops_per_run: float):
    assert MODEL_KEYS <= set(m)
    assert m["n_articles"] == n and len(m["run_seconds"]) == runs
    median = statistics.median(m["run_seconds"])
    assert m["articles_per_s"] == pytest.approx(n / median) and m["articles_per_s"] > 0
    assert m["mean_tokens"] == pytest.approx(mean_tokens)
    assert m["tokens_per_s"] == pytest.approx(m["articles_per_s"] * mean_tokens, rel=1e-6)
    assert m["tflops"] == pytest.approx(flops_per_run / median / 1e12, rel=1e-6)
    assert m["share_of_peak"] is None                      # CPU: no peak known
    assert m["memory_kind"] == "rss" and m["peak_memory_mb"] > 0
    assert m["n_batches"] >= 1 and m["padding_overhead"] >= 0 and m["tokenize_seconds"] >= 0
    assert m["dtype"] == "float32"


@pytest.mark.slow
def test_random_weights_run(tmp_path, tiny_config, demo_dir):
    shapes = tmp_path / "shapes"
    _tiny_arch(shapes / "tiny")
    proc = in_process("benchmark_speed.py", "--config", tiny_config, "--data-dir", demo_dir, "--models", "tiny",
                      "--random-weights", "--shapes-dir", shapes, "--n", 40, "--runs", 2, "--device", "cpu",
                      "--threads", 1)   # one thread: fast on shared CI cores
    doc = json.loads((tmp_path / "results" / "benchmarks" / "demo_ds_benchmarks.json").read_text())
    assert {"dataset", "device", "device_name", "versions", "settings", "fine_tuned_ms_per_article", "models",
            "probes", "end_to_end"} <= set(doc)
    assert doc["dataset"] == "demo_ds" and doc["device"] == "cpu" and doc["fine_tuned_ms_per_article"] == [20, 50]
    assert {"torch", "transformers", "sentence-transformers", "lightgbm", "sklearn", "numpy", "python"} <= set(doc["versions"])
    assert doc["settings"]["random_weights"] and doc["settings"]["n"] == 40 and doc["settings"]["cpu_count"] >= 1
    assert doc["settings"]["torch_threads"] == 1 and doc["settings"]["articles"] == "test[:40]"

    m = doc["models"]["tiny"]
    assert m["random_weights"] and m["load_time_meaningful"] is False and m["load_seconds_cold"] is None
    assert m["architecture"] == str(shapes / "tiny" / "config.json")
    assert m["n_params_non_embedding"] == TINY_NON_EMBEDDING and m["layers"] == 2 and m["hidden"] == 32
    # the same twin built here gives the token lengths to check the figures against
    cfg = load_config(tiny_config)
    splits = load_splits(resolve_dataset(cfg, None, str(demo_dir)), cfg.score_range)
    enc = random_weight_encoder(shapes / "tiny", splits["train"].texts, torch.device("cpu"), "float32", seed=42)
    ids, _ = tokenize(enc.tokenizer, splits["test"].texts[:40], 64)
    lengths = np.array([len(x) for x in ids])
    _check_common(m, 40, 2, lengths.mean(), forward_flops(lengths, TINY_NON_EMBEDDING, 2, 32))
    assert m["batch_size"] == 16 and m["max_tokens"] == 64 and m["token_budget"] is None
    ref = m["reference"]
    assert ref["batch_size"] == 32 and ref["dtype"] == "float32" and ref["articles_per_s"] > 0
    assert ref["tokens_per_s"] == pytest.approx(ref["articles_per_s"] * lengths.mean(), rel=1e-6)
    assert m["speedup_vs_reference"] == pytest.approx(m["articles_per_s"] / ref["articles_per_s"])

    assert doc["probes"] == {} and doc["end_to_end"] == {}    # embed_articles.py never ran
    assert "probe timings skipped" in proc.stdout and "embedding cache not found" in proc.stdout
    assert "articles/s" in proc.stdout and "TFLOP/s" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if line.startswith("tiny "))
    assert f"{m['articles_per_s']:.1f}" in row and "random" in row


@pytest.mark.slow
def test_real_model_probes_and_quality_guard(tmp_path, tiny_config, tiny_model, demo_dir):
    probe_methods = load_config(tiny_config).probe_methods.model_dump()
    probe_methods["mlp"]["epochs"] = 5            # probe timings, not probe quality, are tested here
    tiny_config = write_config(tmp_path, {"tiny": {"source": "sentence-transformers", "model_name": str(tiny_model),
                                                   "dimensions": 32, "max_tokens": 64, "batch_size": 16}},
                               probe_methods=probe_methods)
    in_process("embed_articles.py", "--config", tiny_config, "--data-dir", demo_dir, "--device", "cpu")
    proc = in_process("benchmark_speed.py", "--config", tiny_config, "--data-dir", demo_dir, "--n", 30,
                      "--runs", 1, "--device", "cpu", "--threads", 1, "--quality-check", "--no-reference")
    doc = json.loads((tmp_path / "results" / "benchmarks" / "demo_ds_benchmarks.json").read_text())
    m = doc["models"]["tiny"]
    assert m["load_time_meaningful"] and m["load_seconds_cold"] > 0 and m["load_seconds_warm"] > 0
    assert m["reference"] is None and m["speedup_vs_reference"] is None
    from transformers import AutoTokenizer

    texts = load_split(resolve_dataset(load_config(tiny_config), None, str(demo_dir)), "test", (0, 10)).texts[:30]
    ids, _ = tokenize(AutoTokenizer.from_pretrained(str(tiny_model)), texts, 64)
    lengths = np.array([len(x) for x in ids])
    _check_common(m, 30, 1, lengths.mean(), forward_flops(lengths, TINY_NON_EMBEDDING, 2, 32))

    q = m["quality_check"]
    assert q["half_dtype"] == "bfloat16" and q["n_articles"] == 220
    assert 0.99 < q["cosine_min"] <= q["cosine_mean"] <= 1.0 + 1e-6
    assert abs(q["delta_mae"]) < 0.05
    assert q["delta_mae"] == pytest.approx(q["ridge_test_mae_half"] - q["ridge_test_mae_float32"])

    assert set(doc["probes"]["tiny"]) == {"ridge", "mlp", "lightgbm"}
    for kind, p in doc["probes"]["tiny"].items():
        assert p["train_seconds"] > 0 and p["predict_ms_per_article"] > 0 and p["predict_ms_per_1000"] > 0
        assert p["n_train"] == 120 and p["embedding_dim"] == 32
        e = doc["end_to_end"]["tiny"][kind]
        assert e["ms_per_article"] == pytest.approx(1000 / m["articles_per_s"] + p["predict_ms_per_1000"] / 1000)
        assert e["speedup_vs_fine_tuned"] == pytest.approx([20 / e["ms_per_article"], 50 / e["ms_per_article"]])
    assert "x fine-tuned" in proc.stdout and "lightgbm" in proc.stdout and "the target" in proc.stdout


@pytest.mark.slow
def test_tokenization_share_packed_run_and_the_sentence_transformers_comparison(tiny_config, demo_dir):
    cfg = load_config(tiny_config)
    dataset = resolve_dataset(cfg, None, str(demo_dir))
    splits = load_splits(dataset, cfg.score_range)
    doc = run_benchmark(cfg, dataset, cfg.select_variants(["tiny"], None), splits, torch.device("cpu"), "float32",
                        Options(n=30, runs=2, probes=(), packed=True, st_compare=True), say=lambda s: None)
    m = doc["models"]["tiny"]
    assert m["packed"] is True and m["padding_overhead"] == 0          # padding-free: no padded token
    assert m["reference"]["padding_overhead"] > 0                      # the reference stays padded
    assert m["tokenize_share"] == pytest.approx(m["tokenize_seconds"] / statistics.median(m["run_seconds"]))
    assert 0 < m["tokenize_share"] < 1 and m["tokenize_seconds_two_pass"] > 0
    st = m["sentence_transformers_encode"]
    assert st["cosine_min"] >= 0.99999 and len(st["run_seconds"]) == 2
    assert m["speedup_vs_sentence_transformers"] == pytest.approx(m["articles_per_s"] / st["articles_per_s"])
    table = format_table(doc)
    assert "SentenceTransformer.encode (batch 32)" in table and "former two-pass tokenization" in table
    assert f"{100 * m['tokenize_share']:.1f}% of the wall time" in table


def test_every_model_gets_a_token_budget_on_a_gpu():
    from study.embedders import GPU_BATCH_TOKENS, batching_for

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert batching_for(cuda, 256, None, 128) == (GPU_BATCH_TOKENS // 128, GPU_BATCH_TOKENS)   # MiniLM: 512 rows
    assert batching_for(cuda, 128, 65536, 512) == (128, 65536)                                 # e5-large as set
    assert batching_for(cuda, 128, 131072, 8192) == (128, 131072)                              # bge-m3 as set
    assert batching_for(cuda, 64, None, 4096) == (64, 64 * 4096)        # never below a full batch of long ones
    assert batching_for(cpu, 256, None, 128) == (16, None)              # CPU: 16 rows, no budget unless set
    assert batching_for(cpu, 128, 131072, 8192) == (16, 131072)
