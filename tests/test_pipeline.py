"""Phases 1-3 end to end, caching, reproducibility, and bad input that fails cleanly."""
import importlib
import json
import shutil

import numpy as np
import pytest

from conftest import call, in_process, snapshot, write_config
from study.artifacts import atomic_path


def _eval_numbers(path):
    """The evaluation JSON without its timing fields (inference and fit times, creation times)."""
    data = json.loads(path.read_text())
    data.pop("evaluated_at")
    data["provenance"].pop("created_at")
    for model in data["models"].values():
        for probe in ("ridge", "mlp", "lightgbm"):
            model["probes"][probe].pop("inference_ms_per_article")
            model["probes"][probe].pop("train_seconds")
    return data


@pytest.mark.slow
def test_phases_1_to_3_with_a_real_model(tmp_path, demo_dir, real_model):
    cfg = write_config(tmp_path, {"minilm": {"source": "sentence-transformers", "model_name": str(real_model),
                                             "dimensions": 384, "max_tokens": 256, "batch_size": 32,
                                             "pooling": "mean", "normalize": True}})
    common = ["--config", cfg, "--dataset", "demo", "--data-dir", demo_dir]
    first = in_process("embed_articles.py", *common)
    assert first.stdout.count("articles/s") == 3
    in_process("train_probes.py", *common)
    in_process("evaluate.py", *common, "--baseline-mae", "0.7")
    results = tmp_path / "results"
    ev = json.loads((results / "demo_evaluation_results.json").read_text())
    mean_mae = ev["mean_predictor"]["overall_mae"]
    for probe in ("ridge", "mlp", "lightgbm"):
        m = ev["models"]["minilm"]["probes"][probe]
        assert m["overall_mae"] < 0.85 * mean_mae, (probe, m["overall_mae"], mean_mae)
        assert m["mae_ci95"][0] < m["overall_mae"] < m["mae_ci95"][1]
        assert sum(v["n"] for v in m["per_language"].values()) == ev["n_test"] == 60
        assert set(m["per_dimension"]) == {"climate_relevance", "technical_depth", "optimism"}
    best = ev["best"]
    vals = {p: ev["models"]["minilm"]["probes"][p]["val_mae"] for p in ("ridge", "mlp", "lightgbm")}
    assert best["probe"] == min(vals, key=vals.get) == ev["models"]["minilm"]["chosen_probe"]
    assert best["chosen_by"] == "validation MAE"
    assert ev["baseline_mae"] == 0.7 and best["band"] in ("closes the gap", "partial", "no improvement")
    summary = json.loads((results / "demo_training_summary.json").read_text())
    assert summary["models"]["minilm"]["ridge"]["embedding_fingerprint"]["max_tokens"] == 256
    # provenance in every artifact; the model's revision (a hash of its weight files) in the fingerprint
    for record in (ev["provenance"], summary["models"]["minilm"]["ridge"]["provenance"]):
        assert set(record) == {"code", "host", "device", "versions", "created_at"} and record["versions"]["torch"]
    assert ev["config"]["random_seed"] == 42 and "minilm" in ev["config"]["embedding_models"]
    with np.load(tmp_path / "embeddings" / "demo_minilm_test.npz", allow_pickle=False) as z:
        assert json.loads(str(z["fingerprint"]))["revision"].startswith("sha256:")
        assert json.loads(str(z["provenance"]))["device"] == "cpu"
    pred = np.load(results / "predictions" / "demo_minilm_mlp_test.npz", allow_pickle=False)

    caches = sorted((tmp_path / "embeddings").glob("*.npz"))
    mtimes = [p.stat().st_mtime_ns for p in caches]
    again = in_process("embed_articles.py", *common)
    assert again.stdout.count("cache is valid, skipped") == 3 and "articles/s" not in again.stdout
    assert [p.stat().st_mtime_ns for p in caches] == mtimes
    before = _eval_numbers(results / "demo_evaluation_results.json")
    in_process("train_probes.py", *common)
    in_process("evaluate.py", *common, "--baseline-mae", "0.7")
    assert _eval_numbers(results / "demo_evaluation_results.json") == before
    pred2 = np.load(results / "predictions" / "demo_minilm_mlp_test.npz", allow_pickle=False)
    np.testing.assert_array_equal(pred["y_pred"], pred2["y_pred"])


def test_cache_hit_does_no_model_work_and_changed_input_rebuilds(tmp_path, demo_dir, tiny_config, monkeypatch, capsys):
    """Phase 1 (study/embedding.py `embed`, what embed_articles.py calls) returns each cache it made or reused: a
    second run on the same inputs reuses every cache and loads no model; a changed split alone is rebuilt; a new
    max tokens makes its own cache; --force rebuilds a valid one."""
    from study import paths
    from study.config import load_config
    from study.data import resolve_dataset
    from study.embedding import Options, embed

    assert call("embed_articles", "--config", tiny_config, "--data-dir", demo_dir) == 0
    cfg = load_config(tiny_config)
    dataset = resolve_dataset(cfg, None, str(demo_dir))
    embedding = importlib.import_module("study.embedding")   # phase 1's per-split body

    def no_model(*a, **k):
        raise AssertionError("the model was loaded on a cache hit")

    monkeypatch.setattr(embedding, "load_model", no_model)
    capsys.readouterr()
    again = embed(cfg, dataset)
    assert not again.computed and [(c.variant, c.split) for c in again.reused] == [("tiny", s) for s in ("train", "val", "test")]
    assert all(c.path == paths.embedding_cache(cfg, dataset.name, "tiny", c.split) and c.path.is_file() for c in again.caches)
    assert capsys.readouterr().out.count("cache is valid") == 3
    monkeypatch.undo()

    with open(demo_dir / "val.jsonl", "a") as fh:
        fh.write(json.dumps({"id": "extra", "title": "News", "content": "The plan cuts carbon emissions.",
                             "labels": [5, 1, 1], "dimension_names": ["climate_relevance", "technical_depth",
                                                                       "optimism"]}) + "\n")
    changed = embed(cfg, dataset)
    assert [(c.split, c.computed) for c in changed.caches] == [("train", False), ("val", True), ("test", False)]
    out = capsys.readouterr().out
    assert "val: cache out of date (data_sha256" in out and out.count("cache is valid") == 2
    shorter = embed(cfg, dataset, Options(max_tokens=(32,), splits=("test",)))
    assert [(c.variant, c.split, c.computed) for c in shorter.caches] == [("tiny-t32", "test", True)]
    assert (tmp_path / "embeddings" / f"{demo_dir.name}_tiny-t32_test.npz").is_file()
    capsys.readouterr()
    assert [c.computed for c in embed(cfg, dataset, Options(force=True, splits=("test",))).caches] == [True]
    assert "cache is valid" not in capsys.readouterr().out


def _bad_line(demo_dir, line):
    with open(demo_dir / "train.jsonl", "a") as fh:
        fh.write(line + "\n")
    return sum(1 for _ in open(demo_dir / "train.jsonl"))


BAD_ARTICLE = {"id": "bad", "title": "t", "content": "c", "dimension_names": ["climate_relevance", "technical_depth",
                                                                           "optimism"]}


@pytest.mark.parametrize("case", ["missing_folder", "missing_split", "malformed", "no_text", "label_length",
                                  "label_type", "label_range", "unknown_model", "unloadable_model"])
def test_bad_input_fails_with_one_line_and_damages_nothing(case, tmp_path, workspace, capsys):
    tiny_config, demo_dir = workspace
    common = ["--config", tiny_config, "--data-dir", demo_dir]
    before = snapshot(tmp_path / "embeddings", tmp_path / "results")
    args, expect = list(common), None
    if case == "missing_folder":
        args, expect = ["--config", tiny_config, "--data-dir", tmp_path / "nowhere"], "dataset folder not found"
    elif case == "missing_split":
        (demo_dir / "test.jsonl").unlink()
        expect = "split 'test' missing"
    elif case == "malformed":
        n = _bad_line(demo_dir, '{"id": "x", "title": "unterminated')
        expect = f"train.jsonl:{n}: malformed JSON"
    elif case == "no_text":
        n = _bad_line(demo_dir, json.dumps({**BAD_ARTICLE, "title": "", "content": "", "labels": [1, 1, 1]}))
        expect = f"train.jsonl:{n}: article 'bad' has neither 'title' nor 'content'"
    elif case == "label_length":
        n = _bad_line(demo_dir, json.dumps({**BAD_ARTICLE, "labels": [1, 1]}))
        expect = f"train.jsonl:{n}: field 'labels' must be a list of 3 numbers"
    elif case == "label_type":
        n = _bad_line(demo_dir, json.dumps({**BAD_ARTICLE, "labels": [1, None, 1]}))
        expect = f"train.jsonl:{n}: field 'labels' must hold only numbers"
    elif case == "label_range":
        n = _bad_line(demo_dir, json.dumps({**BAD_ARTICLE, "labels": [1, -2, 1]}))
        expect = f"train.jsonl:{n}: field 'labels' outside score_range"
    elif case == "unknown_model":
        args += ["--models", "no-such-model"]
        expect = "model 'no-such-model' is not in embedding_models"
    elif case == "unloadable_model":
        cfg = write_config(tmp_path, {"tiny": {"source": "sentence-transformers", "model_name": "org/not-a-model",
                                               "dimensions": 32, "max_tokens": 64}})
        args = ["--config", cfg, "--data-dir", demo_dir, "--force"]
        expect = "could not be loaded from 'org/not-a-model'"
    capsys.readouterr()
    assert call("embed_articles", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expect in err and err.count("\n") == 1 and "Traceback" not in err, err
    if case == "unloadable_model":
        assert "hub is unreachable" in err and "local folder" in err
    assert snapshot(tmp_path / "embeddings", tmp_path / "results") == before


def test_stale_cache_and_foreign_probe_are_refused(tmp_path, workspace, tiny_model, capsys):
    tiny_config, demo_dir = workspace
    common = ["--config", tiny_config, "--data-dir", demo_dir]
    before = snapshot(tmp_path / "results")
    # the cache was made with max_tokens 64; config now says 48
    other = write_config(tmp_path / "other", {"tiny": {"source": "sentence-transformers", "model_name": str(tiny_model),
                                                        "dimensions": 32, "max_tokens": 48}},
                         embeddings_dir=str(tmp_path / "embeddings"), results_dir=str(tmp_path / "results"))
    capsys.readouterr()
    assert call("train_probes", "--config", other, "--data-dir", demo_dir) == 2
    err = capsys.readouterr().err
    assert "made with other settings or data (max_tokens made with 64, expected 48)" in err
    # test embeddings rebuilt in bf16: the fp32 probe must not score them
    assert call("embed_articles", *common, "--splits", "test", "--dtype", "bfloat16") == 0
    capsys.readouterr()
    assert call("evaluate", *common) == 2
    err = capsys.readouterr().err
    assert "trained on other embeddings" in err and "dtype made with 'float32', expected 'bfloat16'" in err
    assert snapshot(tmp_path / "results") == before


def test_atomic_write_leaves_nothing_behind_on_a_crash(tmp_path):
    target = tmp_path / "out.npz"
    target.write_bytes(b"old complete file")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as fh:
            fh.write(b"half of a new fi")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old complete file"
    assert [p.name for p in tmp_path.iterdir()] == ["out.npz"]


def test_evaluate_scores_the_fine_tuned_predictions_on_the_same_articles(workspace, tmp_path):
    tiny_config, demo_dir = workspace
    test = [json.loads(line) for line in open(demo_dir / "test.jsonl")]
    labels = np.array([a["labels"] for a in test])
    rng = np.random.default_rng(0)
    preds = np.clip(labels + rng.normal(0, 0.6, labels.shape), 0, 10)
    path = tmp_path / "test_set_predictions.json"
    path.write_text(json.dumps({"predictions": preds.tolist(), "labels": labels.tolist(),
                                "article_ids": [f"article_{i}" for i in range(len(test))],
                                "dimension_names": test[0]["dimension_names"]}))
    assert call("evaluate", "--config", tiny_config, "--data-dir", demo_dir, "--baseline-predictions", path) == 0
    ev = json.loads((tmp_path / "results" / "demo_ds_evaluation_results.json").read_text())
    base_mae = float(np.abs(preds - labels).mean())
    assert ev["baseline"]["overall_mae"] == pytest.approx(base_mae)
    assert ev["baseline_mae"] == pytest.approx(base_mae) and ev["baseline_source"].startswith("predictions file")
    ridge = ev["models"]["tiny"]["probes"]["ridge"]
    vs = ridge["vs_baseline"]
    assert vs["n_articles"] == len(test)
    assert vs["mae_difference"] == pytest.approx(ridge["overall_mae"] - base_mae, abs=1e-6)
    lo, hi = vs["difference_ci95"]
    assert lo < vs["mae_difference"] < hi
    assert lo > 0  # the tiny random model is far worse than predictions 0.6 from the truth


def test_a_damaged_cache_is_rebuilt(workspace, capsys):
    tiny_config, demo_dir = workspace
    cache = next((tiny_config.parent / "embeddings").glob("*_test.npz"))
    cache.write_bytes(cache.read_bytes()[:100])   # e.g. a copy cut short on the way home
    capsys.readouterr()
    assert call("evaluate", "--config", tiny_config, "--data-dir", demo_dir) == 2
    err = capsys.readouterr().err
    assert f"{cache}: unreadable embedding cache" in err and err.count("\n") == 1
    assert call("embed_articles", "--config", tiny_config, "--data-dir", demo_dir) == 0
    out = capsys.readouterr().out
    assert "test: cache out of date (unreadable), rebuilding" in out and out.count("cache is valid") == 2
    assert np.load(cache, allow_pickle=False)["embeddings"].shape == (60, 32)


@pytest.mark.slow   # whole phases in a chain: evaluate twice, compare, error analysis, report, train
def test_phases_after_evaluation_need_only_results(workspace, tmp_path, capsys):
    """Results copied home without the data: comparison, error analysis and report still run."""
    tiny_config, demo_dir = workspace
    assert call("evaluate", "--config", tiny_config, "--data-dir", demo_dir) == 0
    before = json.loads((tmp_path / "results" / "demo_ds_evaluation_results.json").read_text())
    test = [json.loads(line) for line in open(demo_dir / "test.jsonl")]
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"predictions": [a["labels"] for a in test], "article_ids": [a["id"] for a in test]}))
    shutil.rmtree(demo_dir)
    common = ["--config", tiny_config, "--data-dir", demo_dir]
    capsys.readouterr()
    assert call("evaluate", *common, "--baseline-predictions", baseline) == 0   # evaluated at home: caches only
    assert "the data files are not in" in capsys.readouterr().out
    after = json.loads((tmp_path / "results" / "demo_ds_evaluation_results.json").read_text())
    ridge = after["models"]["tiny"]["probes"]["ridge"]
    assert ridge["overall_mae"] == before["models"]["tiny"]["probes"]["ridge"]["overall_mae"]
    assert after["baseline"]["overall_mae"] == pytest.approx(0, abs=1e-5) and ridge["vs_baseline"]["n_articles"] == len(test)
    assert call("compare_results", *common) == 0
    assert call("analyze_error_distribution", *common, "--probe", "ridge") == 0
    assert call("generate_report", *common) == 0
    assert (tmp_path / "results" / "demo_ds_report.docx").is_file()
    assert call("train_probes", *common) == 2   # phases that read the data still say it is missing


def test_probes_trained_on_other_data_are_refused(workspace, tmp_path, capsys):
    tiny_config, demo_dir = workspace
    common = ["--config", tiny_config, "--data-dir", demo_dir]
    lines = (demo_dir / "train.jsonl").read_text().splitlines(keepends=True)
    (demo_dir / "train.jsonl").write_text("".join(lines[:-1]))   # one training article fewer
    assert call("embed_articles", *common) == 0                   # the caches follow the data ...
    before = snapshot(tmp_path / "results")
    capsys.readouterr()
    assert call("evaluate", *common) == 2                         # ... the probes did not
    err = capsys.readouterr().err
    assert "was trained on other train data than the current train.jsonl" in err and err.count("\n") == 1
    assert snapshot(tmp_path / "results") == before


def test_a_model_that_pools_otherwise_than_config_says_is_refused(tmp_path, demo_dir, tiny_model, capsys):
    cfg = write_config(tmp_path, {"tiny": {"source": "sentence-transformers", "model_name": str(tiny_model),
                                           "dimensions": 32, "max_tokens": 64, "pooling": "cls", "normalize": True}})
    assert call("embed_articles", "--config", cfg, "--data-dir", demo_dir) == 2
    last = capsys.readouterr().err.splitlines()[-1]   # after the library's own loading bar
    assert last.startswith("error: model 'tiny' loaded with pooling mean, normalize False, but config.yaml says "
                           "pooling cls, normalize True")
    assert not (tmp_path / "embeddings").exists() or not list((tmp_path / "embeddings").iterdir())


def test_truncation_sweep_is_paired_against_the_longest_setting(workspace, tmp_path):
    tiny_config, demo_dir = workspace
    common = ["--config", tiny_config, "--data-dir", demo_dir]
    assert call("embed_articles", *common, "--max-tokens", "16") == 0
    assert call("train_probes", *common, "--max-tokens", "16", "--probes", "ridge") == 0
    assert call("evaluate", *common, "--models", "tiny", "tiny-t16", "--probes", "ridge") == 0
    ev = json.loads((tmp_path / "results" / "demo_ds_evaluation_results.json").read_text())
    vs = ev["models"]["tiny-t16"]["probes"]["ridge"]["vs_longest"]
    err = {}
    for v in ("tiny", "tiny-t16"):
        pred = np.load(tmp_path / "results" / "predictions" / f"demo_ds_{v}_ridge_test.npz", allow_pickle=False)
        err[v] = np.abs(pred["y_pred"].astype(float) - pred["y_true"]).mean(axis=1)
    assert vs["longest"] == "tiny" and vs["max_tokens"] == 64 and vs["n_articles"] == 60
    assert vs["mae_difference"] == pytest.approx((err["tiny-t16"] - err["tiny"]).mean(), abs=1e-6)
    assert "vs_longest" not in ev["models"]["tiny"]["probes"]["ridge"]


def test_articles_shared_between_splits_are_reported(tmp_path, demo_dir, tiny_config, capsys):
    train = [json.loads(line) for line in open(demo_dir / "train.jsonl")]
    with open(demo_dir / "test.jsonl", "a") as fh:
        fh.write(json.dumps({**train[0], "id": "copy-of-a-train-article"}) + "\n")
        fh.write(json.dumps(train[1]) + "\n")                        # the same id in two splits
    assert call("embed_articles", "--config", tiny_config, "--data-dir", demo_dir, "--splits", "train", "test") == 0
    assert "articles in more than one split: 1 by id, 1 by title + content" in capsys.readouterr().out
    checks = json.loads((tmp_path / "results" / "demo_ds_data_checks.json").read_text())["split_leaks"]
    assert (checks["same_id"], checks["same_text"]) == (1, 1)   # the same id is counted once, by id


def test_a_killed_embedding_resumes_and_gives_the_same_cache(tmp_path, demo_dir, tiny_config, monkeypatch):
    import study.cache
    from study.embedders import Encoder

    common = ["--config", tiny_config, "--data-dir", demo_dir, "--splits", "train"]
    cache = tmp_path / "embeddings" / "demo_ds_tiny_train.npz"
    assert call("embed_articles", *common) == 0
    uninterrupted = np.load(cache, allow_pickle=False)["embeddings"]
    cache.unlink()

    monkeypatch.setattr(study.cache, "CHECKPOINT_ROWS", 16)     # batches of 16 rows: a save after each
    forward, calls = Encoder.forward, []

    def killed_at_the_fourth_batch(self, ids, mask):
        calls.append(len(ids))
        if len(calls) == 4:
            raise KeyboardInterrupt
        return forward(self, ids, mask)

    monkeypatch.setattr(Encoder, "forward", killed_at_the_fourth_batch)
    assert call("embed_articles", *common) == 130
    partial = tmp_path / "embeddings" / ".demo_ds_tiny_train.partial.npz"
    assert not cache.exists() and int(np.load(partial)["rows"]) == 48
    calls.clear()
    monkeypatch.setattr(Encoder, "forward", lambda self, ids, mask: calls.append(len(ids)) or forward(self, ids, mask))
    assert call("embed_articles", *common) == 0
    assert sum(calls) == 120 - 48                                 # it went on after the saved rows
    np.testing.assert_array_equal(np.load(cache, allow_pickle=False)["embeddings"], uninterrupted)
    assert not partial.exists()


def test_phase_3_is_a_function_returning_the_record_it_wrote(yes_no_study_copy, score_study_copy):
    """study/phase3.py `evaluate` (what evaluate.py calls) returns the typed record it wrote, of the task's type, and
    the same best and verdicts again from the same inputs."""
    from study import paths, phase3
    from study.config import load_config
    from study.artifacts import staged_writes
    from study.data import resolve_dataset
    from study.results import read_evaluation
    from study.schemas import ScoreEvaluation, YesNoEvaluation

    for (cfg_path, data, _), kind in ((score_study_copy, ScoreEvaluation), (yes_no_study_copy, YesNoEvaluation)):
        cfg = load_config(cfg_path)
        dataset = resolve_dataset(cfg, None, str(data))
        before = read_evaluation(cfg, dataset.name)
        with staged_writes():
            done = phase3.evaluate(cfg, dataset, phase3.Options())
        assert isinstance(done.record, kind) and done.path == paths.evaluation(cfg, dataset.name)
        volatile = {"evaluated_at", "provenance"}
        def as_file(record):   # as the JSON file holds it (NaN as null, keys as strings)
            return json.loads(record.model_dump_json(exclude=volatile))
        assert as_file(done.record) == as_file(read_evaluation(cfg, dataset.name)) and done.stage1
        # the same numbers as evaluate.py gave from the same inputs (timings aside)
        assert done.record.best == before.best and done.record.models.keys() == before.models.keys()


def test_phase_2_is_a_function_returning_the_summary_it_wrote(yes_no_study_copy, score_study_copy):
    """study/training.py `train` (what train_probes.py calls) returns the typed training summary it wrote and the
    probe files it wrote; refitting a probe from the same caches gives the same validation figures and the same
    predictions as the script's fit (bit for bit on the CPU), and keeps the summary's other entries."""
    from study import paths, training
    from study.config import load_config
    from study.data import resolve_dataset
    from study.probes import load_bundle
    from study.schemas import TrainingSummary, read_record

    for (cfg_path, data, _), kind, extra in ((score_study_copy, "ridge", {"train_fractions": (0.5,)}),
                                             (yes_no_study_copy, "logistic", {})):
        cfg = load_config(cfg_path)
        dataset = resolve_dataset(cfg, None, str(data))
        summary = paths.training_summary(cfg, dataset.name)
        before = read_record(summary, TrainingSummary, "training summary", "")
        old = load_bundle(paths.probe(cfg, dataset.name, "tiny", kind))[1]
        lines = []
        done = training.train(cfg, dataset, training.Options(models=("tiny",), probes=(kind,), **extra), lines.append)
        assert done.path == summary and done.record == read_record(summary, TrainingSummary, "training summary", "")
        written = [paths.probe(cfg, dataset.name, "tiny", kind)]
        if extra:   # the learning-curve probe on half the 120 training articles, listed under its full-data probe
            written.append(paths.subset_probe(cfg, dataset.name, "tiny", kind, 60))
            assert [s.n_train for s in done.record.probe("tiny", kind).train_subsets] == [60]
        assert list(done.probes) == written and all(p.is_file() for p in written)
        assert any(f"[tiny] {kind}:" in line for line in lines)
        new, was = done.record.probe("tiny", kind), before.probe("tiny", kind)
        assert (new.val_mae, new.val_f1, new.selected) == (was.val_mae, was.val_f1, was.selected)
        assert done.record.models.keys() == before.models.keys()   # the other variants' entries are kept
        X = np.random.default_rng(0).normal(size=(5, was.embedding_dim)).astype(np.float32)
        fresh = load_bundle(written[0])[1]
        np.testing.assert_array_equal(fresh.predict(X), old.predict(X))
