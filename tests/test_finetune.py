"""The fine-tuned encoder arm (finetune_encoder.py, study/finetune.py) on the tiny model: it learns, the epoch is
chosen on validation, a killed run resumes to the same weights, and phase 3 scores it beside the frozen probes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import call, write_config

from study import decision, paths
from study.config import load_config
from study.data import load_split, resolve_dataset
from study.embedders import load_model
from study.finetune import Options, Regressor, predict, token_ids, train
from study.tasks import ARM
from study.results import read_evaluation
from study.demo import write_demo_dataset

FAST = {"epochs": 6, "learning_rate": 0.003, "head_learning_rate": 0.03, "batch_size": 16, "patience": 2,
        "weight_decay": 0.0, "lora_r": 4}


@pytest.fixture(scope="module")
def arm(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("finetune")
    demo = write_demo_dataset(root / "demo_ds", n_train=120, n_val=40, n_test=60, seed=7)
    cfg_path = write_config(root, {"tiny": {"source": "sentence-transformers", "model_name": str(tiny_model),
                                            "dimensions": 32, "max_tokens": 64, "batch_size": 16,
                                            "languages": "multilingual"}}, finetune=FAST)
    assert call("embed_articles", "--config", cfg_path, "--data-dir", demo) == 0
    assert call("train_probes", "--config", cfg_path, "--data-dir", demo, "--probes", "ridge") == 0
    assert call("finetune_encoder", "--config", cfg_path, "--data-dir", demo, "--models", "tiny", "--device", "cpu") == 0
    assert call("evaluate", "--config", cfg_path, "--data-dir", demo, "--baseline-mae", "1.0") == 0
    cfg = load_config(cfg_path)
    return cfg, cfg_path, demo, read_evaluation(cfg, "demo_ds")


def test_the_arm_learns_and_its_epoch_is_the_validation_best(arm):
    cfg, _, demo, ev = arm
    folder = paths.finetuned(cfg, "demo_ds", "tiny")
    recipe = json.loads((folder / "recipe.json").read_text())
    curve = recipe["training"]["curve"]
    assert curve[-1]["train_loss"] < curve[0]["train_loss"]   # the training loss falls
    best = min(curve, key=lambda c: c["val_mae"])
    assert recipe["training"]["best_epoch"] == best["epoch"] and recipe["training"]["val_mae"] == best["val_mae"]
    assert not (folder / "checkpoint.pt").exists() and (folder / "model.safetensors").is_file()
    # the saved weights give the recorded predictions, and their validation MAE is the chosen epoch's
    from safetensors.torch import load_file
    dataset = resolve_dataset(cfg, None, str(demo))
    spec = cfg.model("tiny")
    encoder = load_model(spec, cfg.model_location("tiny"), torch.device("cpu"), "float32", "tiny", 64)
    val = load_split(dataset, "val", cfg.score_range)
    model = Regressor(encoder, val.labels.shape[1], cfg.random_seed)
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    P = predict(model, token_ids(encoder, val.texts, spec.prefix, 64), 16, cfg.score_range, "cpu")
    assert float(np.abs(P - val.labels).mean()) == pytest.approx(best["val_mae"], abs=1e-5)
    m = ev.models["tiny"].probes[ARM]
    assert m.val_mae == pytest.approx(best["val_mae"]) and m.vs_mean_predictor.verdict == "better"


def test_phase_3_scores_the_arm_beside_the_frozen_probes_and_never_chooses_it(arm):
    cfg, _, _, ev = arm
    entry = ev.models["tiny"]
    assert set(entry.probes) == {"ridge", ARM} and entry.chosen_probe == "ridge"
    assert ev.best.verdicts.candidates == 1   # the frozen probes only
    m = entry.probes[ARM]
    assert m.vs_chosen.chosen == "ridge" and m.vs_best is not None and m.by_language
    assert m.screening.thresholds   # screened like a probe, from its validation predictions
    rows = {r.question: r for r in decision.score_rows(ev, None)}
    row = rows["Does a fine-tuned small encoder close the gap?"]
    assert row.answer.endswith(f"against the best frozen probe: {m.vs_best.verdict}")
    pred = np.load(cfg.results_path / "predictions" / "demo_ds_tiny_finetuned_test.npz")   # the probes' format
    assert float(np.abs(pred["y_pred"] - pred["y_true"]).mean()) == pytest.approx(m.overall_mae, abs=1e-6)


def test_score_articles_serves_the_arm_as_stage_1_with_phase_3s_predictions(arm, tmp_path):
    """The bundle phase 3 writes for the arm (its head, its encoder's weights, its thresholds) gives, through
    score_articles.py, the test predictions phase 3 scored (parity 1e-5) and routes by the threshold it recorded."""
    cfg, cfg_path, demo, ev = arm
    bundle = paths.stage1(cfg, "demo_ds", "tiny", ARM)
    assert (bundle / "encoder.safetensors").is_file() and "encoder.safetensors" in (bundle / "SHA256SUMS").read_text()
    out = tmp_path / "scored.jsonl"
    assert call("score_articles", "--config", cfg_path, "--stage1", bundle, "--input", demo / "test.jsonl",
                "--output", out, "--rule", "plug-in") == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    from study.artifacts import read_npz
    pred = read_npz(cfg.results_path / "predictions" / "demo_ds_tiny_finetuned_test.npz", "predictions", "")
    by_id = dict(zip(pred["ids"].tolist(), pred["y_pred"]))
    names = ev.dimension_names
    served = np.array([[r["scores"][d] for d in names] for r in lines])
    recorded = np.array([by_id[r["id"]] for r in lines])
    assert len(lines) == len(pred["ids"]) and np.abs(served - recorded).max() < 1e-5
    threshold = next(t.threshold for t in ev.models["tiny"].probes[ARM].screening.thresholds
                     if t.target_recall == max(cfg.screening_recall))
    weights = np.array([ev.screening_setup.weights[d] for d in names])
    expected = np.where(recorded.astype(np.float64) @ weights >= threshold, "fine-tuned", "final")
    assert [r["route"] for r in lines] == expected.tolist()
    # the fine-tuned folder itself is not a bundle: named as such, nothing written
    assert call("score_articles", "--config", cfg_path, "--probe", paths.finetuned(cfg, "demo_ds", "tiny"),
                "--input", demo / "test.jsonl", "--output", tmp_path / "x.jsonl") == 2
    assert not (tmp_path / "x.jsonl").exists()


def test_the_arm_served_through_onnx_exports_its_tuned_weights(arm, tmp_path):
    """--backend onnx exports the encoder with the arm's weights over the base model's (not the base model's own):
    phase 3's predictions again, to the runtime's rounding."""
    pytest.importorskip("onnxruntime")
    cfg, cfg_path, demo, ev = arm
    out = tmp_path / "scored.jsonl"
    assert call("score_articles", "--config", cfg_path, "--stage1", paths.stage1(cfg, "demo_ds", "tiny", ARM), "--input",
                demo / "test.jsonl", "--output", out, "--rule", "plug-in", "--backend", "onnx") == 0
    from study.artifacts import read_npz
    pred = read_npz(cfg.results_path / "predictions" / "demo_ds_tiny_finetuned_test.npz", "predictions", "")
    by_id = dict(zip(pred["ids"].tolist(), pred["y_pred"]))
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    served = np.array([[r["scores"][d] for d in ev.dimension_names] for r in lines])
    assert np.abs(served - np.array([by_id[r["id"]] for r in lines])).max() < 1e-3


def test_a_killed_run_resumes_to_the_same_weights(arm, tmp_path):
    cfg, _, demo, _ = arm
    dataset = resolve_dataset(cfg, None, str(demo))
    spec = cfg.model("tiny")
    splits = {s: load_split(dataset, s, cfg.score_range) for s in ("train", "val")}
    options = Options(epochs=3, learning_rate=1e-3, head_learning_rate=1e-2, batch_size=16, patience=5,
                      weight_decay=0.0, lora=False, lora_r=4, seed=3, score_range=tuple(cfg.score_range))

    def run(checkpoint, stop_after=None):
        encoder = load_model(spec, cfg.model_location("tiny"), torch.device("cpu"), "float32", "tiny", 64)
        ids = {s: token_ids(encoder, x.texts, spec.prefix, 64) for s, x in splits.items()}
        model = Regressor(encoder, splits["train"].labels.shape[1], options.seed)

        def log(line):
            if stop_after is not None and line.startswith(f"epoch {stop_after + 1}:"):
                raise KeyboardInterrupt   # killed during the epoch after `stop_after` (its checkpoint not written)
        record = train(model, ids["train"], splits["train"].labels, ids["val"], splits["val"].labels, options, "cpu",
                       checkpoint, "key", log=log)
        return model, record

    whole, record = run(tmp_path / "a.pt")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b.pt", stop_after=1)
    resumed, again = run(tmp_path / "b.pt")
    assert again["resumed_from"] == 1 and record["resumed_from"] is None
    assert [c["val_mae"] for c in again["curve"]] == [c["val_mae"] for c in record["curve"]]
    for (k, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k


def test_lora_trains_the_adapters_and_the_head_only(arm, tmp_path):
    cfg, _, demo, _ = arm
    from study.finetune import add_lora
    dataset = resolve_dataset(cfg, None, str(demo))
    spec = cfg.model("tiny")
    encoder = load_model(spec, cfg.model_location("tiny"), torch.device("cpu"), "float32", "tiny", 64)
    splits = {s: load_split(dataset, s, cfg.score_range) for s in ("train", "val")}
    ids = {s: token_ids(encoder, x.texts, spec.prefix, 64) for s, x in splits.items()}
    model = Regressor(encoder, splits["train"].labels.shape[1], 0)
    trainable = add_lora(model, 4, 0)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if "lora_" not in k and not k.startswith("head.")}
    assert 0 < trainable < sum(p.numel() for p in model.parameters()) / 2
    options = Options(epochs=1, learning_rate=1e-2, head_learning_rate=1e-2, batch_size=16, patience=1,
                      weight_decay=0.0, lora=True, lora_r=4, seed=0, score_range=tuple(cfg.score_range))
    train(model, ids["train"], splits["train"].labels, ids["val"], splits["val"].labels, options, "cpu",
          tmp_path / "c.pt", "k", log=lambda s: None)
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in frozen.items())   # the encoder's own weights did not move
    assert any("lora_" in k for k in after)
    # served as Stage 1: the adapters merged into the plain encoder give the adapted model's scores
    from study.finetune import load_finetuned, save_model, served_weights
    from safetensors.torch import save
    save_model(model, tmp_path / "arm", {"lora": {"r": 4, "alpha": 8}})
    weights, W, b = served_weights(tmp_path / "arm", {"lora": {"r": 4, "alpha": 8}})
    assert not any("lora_" in k for k in weights)
    plain = load_finetuned(load_model(spec, cfg.model_location("tiny"), torch.device("cpu"), "float32", "tiny", 64),
                           save(weights), "test")
    with torch.no_grad():
        x, mask = torch.tensor([ids["val"][0]]), torch.ones((1, len(ids["val"][0])), dtype=torch.long)
        adapted = model.eval()(x, mask).numpy()
        merged = plain.forward(x, mask).numpy() @ W.T + b
    assert np.abs(adapted - merged).max() < 1e-5 and np.abs(adapted).max() > 0.1
