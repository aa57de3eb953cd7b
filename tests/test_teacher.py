"""Teacher scores (issue 28): --teacher-predictions and unlabelled.jsonl train `<variant>+teacher`, compared paired
with the label-only probe; screening read against the teacher's own medium+ decisions. A constructed study whose
caches are written directly: few labelled training articles, many unlabelled ones that only the teacher scored."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import call, in_process, write_config
from study import paths
from study.artifacts import read_npz
from study.cache import fingerprint, save_embeddings
from study.config import load_config
from study.data import file_sha256, load_split, load_splits, resolve_dataset
from study.errors import StudyError
from study.results import read_evaluation

DIM, DIMS = 24, ["a", "b"]
SIZES = {"train": 20, "val": 120, "test": 240, "unlabelled": 400}


def _write_study(root: Path) -> tuple[Path, Path, dict]:
    """A dataset folder + config + teacher file. Scores are 5 + 2 z (z two latent factors, label noise 0.3); the
    embedding of model `toy` carries z linearly among 24 noisy features. Twenty labelled training articles cannot
    find those directions; the teacher (the noiseless 5 + 2 z) scores 400 unlabelled articles and every other one."""
    rng = np.random.default_rng(11)
    data = root / "teach"
    data.mkdir(parents=True)
    mix = rng.normal(size=(2, DIM))
    latent, teacher_ids, teacher_scores = {}, [], []
    for split, n in SIZES.items():
        z = rng.normal(size=(n, 2))
        clean = np.clip(5 + 2 * z, 0, 10)
        labels = np.clip(clean + rng.normal(0, 0.3, size=clean.shape), 0, 10)
        lines = []
        for i in range(n):
            rec = {"id": f"{split}-{i}", "title": f"t {i}", "content": f"c {split} {i}", "url": "", "language": "en"}
            if split != "unlabelled":
                rec.update(labels=[round(float(v), 4) for v in labels[i]], dimension_names=DIMS)
            lines.append(json.dumps(rec))
            teacher_ids.append(rec["id"])
            teacher_scores.append([float(clean[i, 1]), float(clean[i, 0])])   # the file's dimension order: b, a
        (data / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        latent[split] = z
    teacher = root / "teacher.json"
    teacher.write_text(json.dumps({"predictions": teacher_scores, "article_ids": teacher_ids,
                                   "dimension_names": ["b", "a"]}))
    cfg_path = write_config(root, {"toy": {"source": "sentence-transformers", "model_name": str(root / "weights"),
                                           "dimensions": DIM, "max_tokens": 64, "languages": "multilingual"}},
                            teacher_weights=[0.5, 1.0])
    (root / "weights").mkdir()
    cfg = load_config(cfg_path)
    dataset = resolve_dataset(cfg, None, str(data))
    splits = load_splits(dataset, cfg.score_range, tuple(SIZES))
    for split, s in splits.items():
        emb = latent[split] @ mix + rng.normal(0, 0.5, size=(len(s), DIM))
        fp = fingerprint(cfg, cfg.variant("toy"), "float32", split, file_sha256(data / f"{split}.jsonl"))
        save_embeddings(paths.embedding_cache(cfg, dataset.name, "toy", split), embeddings=emb, split=s,
                        token_counts=np.full(len(s), 40), fingerprint=fp,
                        stats={"seconds": 1.0, "articles_per_s": 100.0, "devices": ["cpu"], "dtype": "float32"})
    return cfg_path, data, {"path": teacher, "ids": teacher_ids, "scores": np.array(teacher_scores)[:, ::-1]}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("teacher")
    cfg_path, data, teacher = _write_study(root)
    common = ["--config", cfg_path, "--data-dir", data]
    assert call("train_probes", *common, "--probes", "ridge", "--teacher-predictions", teacher["path"]) == 0
    assert call("evaluate", *common, "--teacher-predictions", teacher["path"]) == 0
    cfg = load_config(cfg_path)
    return cfg, cfg_path, data, teacher, read_evaluation(cfg, "teach")


def _pred(cfg, variant, split):
    return read_npz(paths.predictions(cfg, "teach", variant, "ridge", split), "predictions", "")


def _ci(values, n_boot, seed):
    rng = np.random.default_rng(seed)
    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(n_boot)]
    return np.quantile(means, 0.025), np.quantile(means, 0.975)


def _weighted_ridge(X, Y, w, alpha):
    """Ridge with sample weights, by numpy: weighted centring, then (Xc' W Xc + alpha I) b = Xc' W Yc."""
    mx, my = np.average(X, axis=0, weights=w), np.average(Y, axis=0, weights=w)
    Xc, Yc = X - mx, Y - my
    coef = np.linalg.solve(Xc.T @ (w[:, None] * Xc) + alpha * np.eye(X.shape[1]), Xc.T @ (w[:, None] * Yc))
    return lambda Z: Z @ coef + (my - mx @ coef)


def test_the_teacher_variant_is_trained_on_labels_plus_teacher_scores_and_beats_the_label_only_probe(study):
    cfg, _, data, teacher, ev = study
    assert list(ev.models) == ["toy", "toy+teacher"] and ev.models["toy+teacher"].teacher
    m = ev.models["toy+teacher"].probes["ridge"]
    rec = m.vs_label_only.teacher
    assert (rec.n_labelled, rec.n_teacher) == (SIZES["train"], SIZES["unlabelled"])
    assert set(rec.val_mae_by_weight) == {"0.5", "1"} and rec.weight == min((v, float(k)) for k, v in
                                                                            rec.val_mae_by_weight.items())[1]
    # the teacher probe, re-derived: standardise on labelled + unlabelled rows, weighted ridge at its alpha and weight
    caches = {s: read_npz(paths.embedding_cache(cfg, "teach", "toy", s), "cache", "") for s in SIZES}
    X = np.vstack([caches["train"]["embeddings"], caches["unlabelled"]["embeddings"]]).astype(np.float64)
    order = {a: i for i, a in enumerate(teacher["ids"])}
    T = teacher["scores"][[order[a] for a in caches["unlabelled"]["ids"]]]
    Y = np.vstack([caches["train"]["labels"], T])
    w = np.r_[np.ones(SIZES["train"]), np.full(SIZES["unlabelled"], rec.weight)]
    mean, sd = X.mean(0), X.std(0)
    predict = _weighted_ridge((X - mean) / sd, Y, w, m.selected["alpha"])
    mine = np.clip(predict((caches["test"]["embeddings"] - mean) / sd), 0, 10)
    np.testing.assert_allclose(_pred(cfg, "toy+teacher", "test")["y_pred"], mine, atol=2e-3)
    # the paired comparison with the label-only probe, re-derived from both predictions files
    t, base = _pred(cfg, "toy+teacher", "test"), _pred(cfg, "toy", "test")
    diff = np.abs(t["y_pred"] - t["y_true"]).mean(1) - np.abs(base["y_pred"] - base["y_true"]).mean(1)
    d = m.vs_label_only
    assert d.label_only == "toy" and d.mae_difference == pytest.approx(diff.mean(), abs=1e-9)
    lo, hi = _ci(diff.astype(np.float64), cfg.bootstrap_samples, cfg.random_seed)
    assert d.difference_ci95 == pytest.approx([lo, hi], abs=1e-6)
    assert hi < -cfg.equivalence_margin and d.verdict == "better"   # the rule's word, from the CI against the margin
    assert ev.models["toy"].probes["ridge"].vs_label_only is None


def _kept(n, recall, confidence):
    """Misses a guaranteed threshold may allow among n medium+ articles, from the binomial sum by hand."""
    q, best = 1 - recall, None
    for m in range(n):
        if sum(math.comb(n, k) * q ** k * (1 - q) ** (n - k) for k in range(m + 1)) <= 1 - confidence:
            best = m
    return best


def test_screening_against_the_teachers_own_decisions_is_rederived(study):
    cfg, _, _, teacher, ev = study
    w = np.array([ev.screening_setup.weights[d] for d in DIMS])
    medium = ev.screening_setup.tiers["medium"]
    order = {a: i for i, a in enumerate(teacher["ids"])}
    for variant in ("toy", "toy+teacher"):
        s = ev.models[variant].probes["ridge"].screening_vs_teacher
        val, test = _pred(cfg, variant, "val"), _pred(cfg, variant, "test")
        tv = teacher["scores"][[order[a] for a in val["ids"]]] @ w
        tt = teacher["scores"][[order[a] for a in test["ids"]]] @ w
        pv, pt = val["y_pred"].astype(np.float64) @ w, test["y_pred"].astype(np.float64) @ w
        assert (s.n_val, s.n_test) == (SIZES["val"], SIZES["test"])
        for row, target in zip(s.screening.thresholds, cfg.screening_recall):
            relevant = np.sort(pv[tv >= medium])
            plug_in = relevant[int(math.floor((1 - target) * len(relevant) + 1e-9))]
            assert row.threshold == pytest.approx(plug_in)
            kept = (pt >= plug_in) & (tt >= medium)
            assert row.test.recall == pytest.approx(kept.sum() / (tt >= medium).sum())
            assert row.test.skip_share == pytest.approx((pt < plug_in).mean())
            m = _kept(len(relevant), target, cfg.screening_confidence)
            g = row.guaranteed
            assert g.misses_allowed == m and g.certified == (m is not None)
            if m is not None:
                assert g.threshold == pytest.approx(relevant[m])
                assert g.test.recall == pytest.approx(((pt >= relevant[m]) & (tt >= medium)).sum() / (tt >= medium).sum())
        # the teacher's decisions are not the labels: the label-based screening differs from this one
        assert s.screening.thresholds[0].test.n_relevant == int((tt >= medium).sum())


def test_a_bad_teacher_file_or_unlabelled_line_stops_with_one_error_line(study, tmp_path):
    _, cfg_path, data, teacher, _ = study
    common = ["--config", cfg_path, "--data-dir", data, "--probes", "ridge"]
    cases = {
        "no_ids.json": ({"predictions": [[1.0, 2.0]], "dimension_names": ["a", "b"]}, "need 'article_ids'"),
        "dims.json": ({"predictions": [[1.0, 2.0]], "article_ids": ["train-0"], "dimension_names": ["a", "c"]},
                      "differ from the dataset's"),
        "text.json": ({"predictions": [[1.0, "x"]], "article_ids": ["train-0"]}, "finite numbers"),
        "nan.json": ('{"predictions": [[1.0, NaN]], "article_ids": ["train-0"]}', "NaN"),
        "twice.json": ({"predictions": [[1.0, 2.0]] * 2, "article_ids": ["unlabelled-0"] * 2}, "more than once"),
        "strangers.json": ({"predictions": [[1.0, 2.0]], "article_ids": ["elsewhere"]}, "none of its 1 article ids"),
        "no_unlabelled.json": ({"predictions": [[1.0, 2.0]], "article_ids": ["train-0"]}, "scores none of the 400"),
    }
    for name, (content, said) in cases.items():
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        proc = in_process("train_probes", *common, "--teacher-predictions", path, check=False)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and said in lines[0], \
            (name, proc.stderr)
    proc = in_process("train_probes", *common, "--models", "toy+teacher", check=False)
    assert proc.returncode == 2 and "give --teacher-predictions" in proc.stderr
    # unlabelled.jsonl: the article format without labels, checked line by line
    cfg = load_config(cfg_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    for split in ("train", "val", "test"):
        (bad / f"{split}.jsonl").write_text((Path(data) / f"{split}.jsonl").read_text())
    (bad / "unlabelled.jsonl").write_text('{"id": "u1", "title": "t", "content": "c"}\n'
                                          '{"id": "u2", "title": "t", "labels": [1, 2]}\n')
    dataset = resolve_dataset(cfg, None, str(bad))
    with pytest.raises(StudyError, match=r"unlabelled.jsonl:2: field 'labels' is not expected"):
        load_splits(dataset, cfg.score_range, ("train", "unlabelled"))
    (bad / "unlabelled.jsonl").write_text('{"id": "u1", "title": "t", "content": "c"}\n{"title": "x"}\n')
    with pytest.raises(StudyError, match=r"unlabelled.jsonl:2: field 'id' is missing"):
        load_split(dataset, "unlabelled", cfg.score_range, DIMS)


def test_run_all_passes_the_teacher_file_to_train_probes_and_evaluate_only():
    import types

    import run_all

    args = types.SimpleNamespace(config=None, models=None, max_tokens=None, probes=None, device=None, baseline_mae=None,
                                 baseline_f1=None, baseline_predictions=None, output=None, bench_each=False, probe=None,
                                 train_fractions=None, train_languages=None, teacher_predictions="t.json")
    arguments = run_all.phase_arguments(args, types.SimpleNamespace(results_path=Path("/tmp/r")), "toy", "d", [], "toy")
    assert {phase for phase, a in arguments.items() if "--teacher-predictions" in a} == {"train", "evaluate"}
    assert arguments["train"][-2:] == arguments["evaluate"][-2:] == ["--teacher-predictions", "t.json"]


def test_evaluate_refuses_a_teacher_probe_trained_on_another_unlabelled_file(study, tmp_path):
    cfg, cfg_path, data, _, _ = study
    unlabelled = Path(data) / "unlabelled.jsonl"
    kept = unlabelled.read_bytes()
    try:
        unlabelled.write_bytes(kept + b'{"id": "new", "title": "t", "content": "c"}\n')
        proc = in_process("evaluate", "--config", cfg_path, "--data-dir", data, check=False)
        assert proc.returncode == 2 and "trained on another unlabelled.jsonl" in proc.stderr, proc.stderr
    finally:
        unlabelled.write_bytes(kept)


def test_page_one_and_the_report_quote_the_teacher_comparison(study):
    from study.decision import score_rows
    from study import findings

    *_, ev = study
    row = next(r for r in score_rows(ev, None) if r.question == "Do the fine-tuned model's scores help train the probe?")
    d = ev.models["toy+teacher"].probes["ridge"].vs_label_only
    assert row.answer == "toy+teacher + ridge against toy: better" and f"weight {d.teacher.weight:g}" in row.number
    assert [(r["variant"], r["probe"]) for r in findings.teacher_rows(ev)] == [("toy+teacher", "ridge")]
    # the data line counts a teacher probe's training articles as labelled + teacher-scored, not as labels
    from study.decision import data_line
    from study.schemas import TrainingSummary, read_record
    training = read_record(paths.training_summary(study[0], "teach"), TrainingSummary, "summary", "")
    best = training.probe(ev.best.model, ev.best.probe)
    expected = (f"{best.teacher.n_labelled} labelled + {best.teacher.n_teacher} teacher-scored training"
                if best.teacher else f"{best.n_train} training")
    assert data_line(ev, training).startswith(f"Data: {expected}, {best.n_val} validation")
