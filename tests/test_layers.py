"""Layer variants (<model>-L<k>: transformers' hidden_states[k] pooled as the model pools): one forward pass for
every requested layer, each layer a variant through the phases, Stage 1 embedding by the recorded layer."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from conftest import TINY, call, sample_texts, write_config
from study.artifacts import read_npz
from study.config import load_config
from study.embedders import embed_texts, enable_packing, split_layers, with_layers
from study.errors import StudyError



def _reference(tiny_model, texts, max_tokens, normalize=False):
    """Independently: transformers' BertModel on the tokenizer's padded batch, output_hidden_states, mean pool."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    model = AutoModel.from_pretrained(str(tiny_model)).eval()
    batch = tok(texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch, output_hidden_states=True).hidden_states
    m = batch["attention_mask"].unsqueeze(-1).float()
    pooled = [((h * m).sum(1) / m.sum(1).clamp(min=1)).numpy() for h in states]
    if normalize:
        pooled = [p / np.linalg.norm(p, axis=1, keepdims=True) for p in pooled]
    return pooled


def test_a_layer_is_the_mean_pool_of_its_hidden_states_and_one_pass_serves_every_layer(tiny, tiny_model):
    texts = sample_texts()
    calls = []
    inner = next(m for m in tiny.model.modules() if hasattr(m, "embeddings"))
    handle = inner.register_forward_hook(lambda *a: calls.append(1))
    try:
        enc = with_layers(tiny, [0, 1, 2])
        emb, counts, stats = embed_texts(enc, texts, max_tokens=20, batch_size=64)
    finally:
        handle.remove()
    assert len(calls) == stats.n_batches == 1   # one forward pass of the model for all three layers
    assert emb.shape == (len(texts), 3 * 32)
    ref = _reference(tiny_model, texts, 20)
    for k, got in split_layers(emb, [0, 1, 2]).items():
        np.testing.assert_allclose(got, ref[k], atol=1e-5)
    # the last layer is the model's own output (mean pool of the last hidden layer)
    own, _, _ = embed_texts(tiny, texts, max_tokens=20, batch_size=64)
    np.testing.assert_allclose(split_layers(emb, [0, 1, 2])[2], own, atol=1e-5)
    assert not np.allclose(ref[1], ref[2], atol=1e-3)   # the layers do differ
    packed, _, _ = embed_texts(with_layers(enable_packing(tiny), [0, 1, 2]), texts, max_tokens=20, batch_size=64)
    np.testing.assert_allclose(packed, emb, atol=1e-5)   # padding-free batches pool the same layers
    unit, _, _ = embed_texts(with_layers(dataclasses.replace(tiny, normalize=True), [1]), texts, max_tokens=20,
                             batch_size=64)
    np.testing.assert_allclose(unit, _reference(tiny_model, texts, 20, normalize=True)[1], atol=1e-5)
    with pytest.raises(StudyError, match="2 hidden layers"):
        with_layers(tiny, [3])


def test_variant_names_of_layers(tmp_path, tiny_model):
    cfg = load_config(write_config(tmp_path, {"tiny": {**TINY, "model_name": str(tiny_model)}}))
    v = cfg.parse_variant("tiny-t16-L1")
    assert (v.model, v.max_tokens, v.layer, v.name) == ("tiny", 16, 1, "tiny-t16-L1")
    assert cfg.parse_variant("tiny-L0").max_tokens == 64 and cfg.describe(v)["layer"] == 1
    assert [x.name for x in cfg.select_variants(["tiny"], [16, 64], layers=[0, 2])] == \
        ["tiny-t16-L0", "tiny-t16-L2", "tiny-L0", "tiny-L2"]
    assert [x.name for x in cfg.select_variants(["tiny-L1"], [16])] == ["tiny-t16-L1"]
    with pytest.raises(StudyError, match="chunked"):
        cfg.parse_variant("tiny-c16-L1")


@pytest.mark.slow
def test_a_layer_sweep_runs_through_the_phases_and_stage1_reproduces_it(workspace, tmp_path, monkeypatch, capsys):
    import study.embedders as embedders

    cfg, demo = workspace
    common = ["--config", cfg, "--data-dir", demo]
    passes = []
    real = embedders.embed_texts
    monkeypatch.setattr("study.embedding.embed_texts", lambda enc, *a, **k: passes.append(enc.layers) or real(enc, *a, **k))
    assert call("embed_articles", *common, "--models", "tiny", "--layers", "1", "2") == 0
    assert passes == [(1, 2)] * 3   # one forward pass per split serves both layers
    root = tmp_path
    cache = {v: read_npz(root / "embeddings" / f"demo_ds_{v}_test.npz", "cache", "") for v in ("tiny", "tiny-L1", "tiny-L2")}
    assert json.loads(str(cache["tiny-L1"]["fingerprint"]))["layer"] == 1
    np.testing.assert_allclose(cache["tiny-L2"]["embeddings"], cache["tiny"]["embeddings"], atol=1e-5)   # the last
    assert call("embed_articles", *common, "--models", "tiny-L1", "tiny-L2") == 0
    assert capsys.readouterr().out.count("cache is valid, skipped") == 6
    models = ["tiny-L1", "tiny-L2"]
    assert call("train_probes", *common, "--models", *models, "--probes", "ridge") == 0
    assert call("evaluate", *common, "--models", *models, "--probes", "ridge") == 0
    ev = json.loads((root / "results" / "demo_ds_evaluation_results.json").read_text())
    err = {}
    for v in models:
        pred = np.load(root / "results" / "predictions" / f"demo_ds_{v}_ridge_test.npz", allow_pickle=False)
        err[v] = np.abs(pred["y_pred"].astype(float) - pred["y_true"]).mean(axis=1)
    vs = ev["models"]["tiny-L1"]["probes"]["ridge"]["vs_last"]
    assert vs["last"] == "tiny-L2" and vs["layer"] == 2 and ev["models"]["tiny-L1"]["layer"] == 1
    assert vs["mae_difference"] == pytest.approx((err["tiny-L1"] - err["tiny-L2"]).mean(), abs=1e-6)
    assert "vs_last" not in ev["models"]["tiny-L2"]["probes"]["ridge"] and "vs_longest" not in str(ev["models"])
    from records import as_model
    from study import decision, findings
    curve = findings.layer_curves(as_model(ev))["tiny"]
    val = {v: ev["models"][v]["probes"]["ridge"]["val_mae"] for v in models}
    assert curve["chosen"]["variant"] == min(models, key=val.get) and curve["last"]["variant"] == "tiny-L2"
    row = next(r for r in decision.score_rows(as_model(ev), None) if r.question == "Does a middle layer beat the last?")
    assert ("the last layer is chosen" in row.answer) == (curve["chosen"]["variant"] == "tiny-L2")
    # Stage 1: score_articles embeds by the recorded layer and reproduces phase 3's predictions
    pred = read_npz(root / "results" / "predictions" / "demo_ds_tiny-L1_ridge_test.npz", "predictions", "")
    out = tmp_path / "scored.jsonl"
    assert call("score_articles", "--config", cfg, "--stage1", root / "results" / "demo_ds_stage1_tiny-L1_ridge",
                "--input", demo / "test.jsonl", "--output", out, "--rule", "plug-in") == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    names = [str(d) for d in pred["dimension_names"]]
    P = np.array([[x["scores"][d] for d in names] for x in lines])
    assert np.abs(P - pred["y_pred"]).max() <= 1e-5
    assert call("generate_report", *common, "--output", tmp_path / "r.docx") == 0
    import docx
    doc = docx.Document(tmp_path / "r.docx")
    tables = [[[c.text for c in r.cells] for r in t.rows] for t in doc.tables]
    curve = next(t for t in tables if t[0][:3] == ["Layer", "Probe", "Validation MAE"])
    chosen_first = val["tiny-L1"] <= val["tiny-L2"]
    assert [r[0] for r in curve[1:]] == (["1 (chosen)", "2 (last)"] if chosen_first else ["1", "2 (chosen) (last)"])
    assert any(r[0] == "Does a middle layer beat the last?" for t in tables for r in t)
