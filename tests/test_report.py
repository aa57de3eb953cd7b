"""generate_report.py: the docx holds the JSON results' numbers, embeds the figures and copes with missing inputs."""
import json
import subprocess
import sys
from pathlib import Path

import docx
import pytest
from PIL import Image

from conftest import REPO, in_process, markdown_tables, write_config
from records import (mean_predictor, paired, screening_threshold, benchmark_record, stage1_cost, timed_model, comparison_record, config_dump, error_model, error_summary as error_record,
                     model_entry, score_evaluation, score_probe, trained_probe, training_summary)

DIMS = ["clarity", "depth"]
MODELS = {"mini-128": {"source": "sentence-transformers", "model_name": "org/mini-128", "dimensions": 8,
                       "max_tokens": 128, "note": "short context"},
          "bge-m3": {"source": "sentence-transformers", "model_name": "BAAI/bge-m3", "dimensions": 16,
                     "max_tokens": 8192}}
PROBES = ("ridge", "mlp", "lightgbm")


def _probe_entry(base: float, k: int) -> dict:
    mae = base + 0.011 * k
    return score_probe(
        overall_mae=mae, overall_rmse=mae * 1.3 + 0.0004, overall_spearman=0.61 - 0.0123 * k, dims=DIMS,
        per_dimension={d: {"mae": mae + 0.0217 * (i - 0.5), "rmse": mae * 1.3, "spearman": 0.6}
                       for i, d in enumerate(DIMS)},
        mae_ci95=[mae - 0.0512, mae + 0.0498], val_mae=mae - 0.0031 + (0.05 if k == 2 else 0),
        per_language={"en": {"n": 30, "mae": mae - 0.0123}, "fr": {"n": 20, "mae": mae + 0.0187}},
        by_language={"en": {"n": 30, "mae": mae - 0.0123, "mae_ci95": [mae - 0.08, mae + 0.06], "too_few": False,
                            "vs_reference": paired(-1.1, (-1.3, -0.9), "better"),
                            "vs_best": paired(0.03 * k, (0.03 * k - 0.05, 0.03 * k + 0.05), "inconclusive")},
                     "fr": {"n": 20, "mae": mae + 0.0187, "mae_ci95": None, "too_few": True, "vs_reference": None}},
        truncation={"max_tokens": 128, "truncated": {"n": 12, "mae": mae + 0.0655},
                    "not_truncated": {"n": 38, "mae": mae - 0.0207}},
        inference_ms_per_article=0.01, selected={"alpha": 10.0, "alpha_at_grid_edge": False},
        screening={"thresholds": [screening_threshold(0.95, 0.25, 0.31), screening_threshold(0.99, 0, 0.12, False)],
                   "curve": {"threshold": [1.0, 2.0], "skip_share": [0.1, 0.3], "recall": [1.0, 0.97]}},
        **({} if k == 0 else {"vs_chosen": {**paired(0.011 * k, (0.011 * k - 0.009, 0.011 * k + 0.009),
                                                     "inconclusive" if k == 1 else "worse"), "chosen": "ridge"}}))


def evaluation(baseline=0.68, config: dict | None = None) -> dict:
    """`config`: the Config dump the evaluation ran with (the report takes score range and model notes from it)."""
    models = {}
    for j, (name, spec) in enumerate(MODELS.items()):
        entry = model_entry(name, {}, chosen="ridge", model_name=spec["model_name"], embedding_dim=spec["dimensions"],
                            max_tokens=spec["max_tokens"],
                            truncated_fraction=0.24 if spec["max_tokens"] == 128 else 0.0, mean_token_count=301.5)
        for k, probe in enumerate(PROBES):
            entry["probes"][probe] = _probe_entry(0.8123 - 0.0571 * j, k)
            if spec["max_tokens"] > 128:
                entry["probes"][probe]["vs_baseline"] = {"n_articles": 48, "probe_mae": 0.7512, "baseline_mae": 0.6834,
                                               "mae_difference": 0.0678, "difference_ci95": [0.0211, 0.1149],
                                               "verdict": "worse", "equivalence_margin": 0.02}
                entry["probes"][probe]["truncation"] = {
                    "max_tokens": 8192, "truncated": {"n": 0, "mae": None},
                    "not_truncated": {"n": 50, "mae": entry["probes"][probe]["overall_mae"]}}
        models[name] = entry
    for name in models:
        for probe in PROBES:
            if (name, probe) != ("bge-m3", "ridge"):
                models[name]["probes"][probe]["vs_best"] = {**paired(0.0456, (0.0101, 0.0811), "worse"),
                                                            "best": "bge-m3 + ridge"}
    best = models["bge-m3"]["probes"]["ridge"]
    out = score_evaluation(
        models, {"model": "bge-m3", "probe": "ridge", "val_mae": best["val_mae"], "test_mae": best["overall_mae"],
                 "mae_ci95": best["mae_ci95"], "chosen_by": "validation MAE",
                 "verdicts": {**VERDICTS, **(BASELINE_VERDICTS if baseline else {})}},
        dataset="toy", dims=DIMS, n_test=50, config=config, baseline_mae=baseline,
        baseline_source="config.yaml baseline_mae", random_seed=42, bootstrap_samples=200,
        success_bands={"closes_gap": 0.07, "partial": 0.17}, language_counts={"en": 30, "fr": 20},
        mean_predictor=mean_predictor(1.9876, DIMS, overall_rmse=2.4, overall_spearman=None,
                              per_dimension={d: {"mae": 1.9876, "rmse": 2.4, "spearman": None} for d in DIMS},
                              mae_ci95=[1.8, 2.1]),
        evaluated_at="2026-01-01T00:00:00+00:00")
    if baseline:
        out["best"].update(band="partial", gap_to_baseline=best["overall_mae"] - baseline)  # 0.7552: partial
    return out


VERDICTS = {"candidates": 6, "vs_median_predictor": "better", "vs_mean_predictor": "better", "null_result": None}
# what evaluate.py records for bge-m3 + ridge against the fine-tuned predictions (0.0678 [0.0211, 0.1149]: the
# whole CI above +0.02, worse) and the bands its test MAE CI [0.704, 0.805] spans against 0.68 (0.75 / 0.85)
BASELINE_VERDICTS = {"vs_baseline": {"difference": 0.0678, "ci95": [0.0211, 0.1149], "margin": 0.02, "better": "lower",
                                     "paired": True, "verdict": "worse"},
                     "bands_spanned": ["closes the gap", "partial"], "band_reading": "partial, possibly closes the gap"}


def training() -> dict:
    fp = {"source": "sentence-transformers", "model_name": "org/x", "max_tokens": 128, "prefix": "", "dtype": "float32",
          "pooling": "mean", "split": "train", "data_sha256": "ab" * 32}
    return training_summary({m: {p: trained_probe(m, p, n_train=200, n_val=60, embedding_fingerprint=fp,
                                                  hyperparameters={"alphas": [1.0, 10.0]}, file=f"toy_{m}_{p}.pkl",
                                                  sha256="cd" * 32) for p in PROBES} for m in MODELS})


def benchmarks() -> dict:
    return benchmark_record(
            device="cuda", device_name="Test GPU", versions={"python": "3.11", "torch": "9.9"},
            settings={}, fine_tuned_ms_per_article=[20, 50],
            models={"mini-128": timed_model(812.25, "bfloat16", 256, 1234.0, tokens_per_s=99000.0),
                    "bge-m3": timed_model(95.5, "bfloat16", 128, 4321.0, tokens_per_s=50000.0, random_weights=True)},
            end_to_end={m: {p: {**stage1_cost(1.5 + i), "speedup_vs_fine_tuned": [13.3, 33.3]}
                            for p in PROBES} for i, m in enumerate(MODELS)})


ERROR_FIGURES = {"error_vs_tokens": "analysis/toy_ridge_error_vs_tokens.png",
                 "error_histograms": "analysis/toy_ridge_error_histograms.png",
                 "bias_by_score_bin": "analysis/toy_ridge_bias_by_score_bin.png"}


def error_summary() -> dict:
    model = error_model(
        n=50, max_tokens=128, overall_mae=0.7, bias=-0.0456,
        abs_error_quantiles={"p50": 0.5, "p90": 1.2, "p99": 2.1}, per_dimension_mae={d: 0.7 for d in DIMS},
        per_language={}, token_bins=[], truncated={"n": 12, "mae": 0.8}, not_truncated={"n": 38, "mae": 0.6},
        score_bins=[{"low": 0.0, "high": 5.0, "n": 40, "mae": 0.7, "bias": 0.3125},
                    {"low": 5.0, "high": 10.0, "n": 60, "mae": 0.7, "bias": -0.4375}],
        worst=[{"id": "a1", "language": "fr", "title": "Un titre", "mae": 2.5, "true": [1, 2], "pred": [3, 4]}])
    return error_record({m: model for m in MODELS}, dict(ERROR_FIGURES), dataset="toy", probe="ridge")


def _png(path: Path, shade: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (60, 40), (200, 30, shade)).save(path)  # distinct pixels: docx stores equal images once


@pytest.fixture
def results(tmp_path):
    """A config and complete phase 2-5 outputs for dataset 'toy'; returns (config, results dir)."""
    cfg = write_config(tmp_path, MODELS)
    res = tmp_path / "results"
    for rel, data in (("toy_evaluation_results.json", evaluation(config=config_dump(cfg))),
                      ("toy_training_summary.json", training()),
                      ("benchmarks/toy_benchmarks.json", benchmarks()), ("analysis/toy_error_summary.json", error_summary())):
        (res / rel).parent.mkdir(parents=True, exist_ok=True)
        (res / rel).write_text(json.dumps(data))
    for i, rel in enumerate(ERROR_FIGURES.values()):
        _png(res / rel, i)
    figures = {name: f"figures/toy_{name}.png" for name in ("mae_by_model", "screening_curve")}
    for i, rel in enumerate(figures.values(), 10):
        _png(res / rel, i)
    (res / "toy_comparison.json").write_text(json.dumps(comparison_record(figures)))
    return cfg, res


def report(cfg, out, *extra):
    proc = in_process("generate_report.py", "--config", cfg, "--dataset", "toy", "--output", out, *extra)
    assert f"report: {out}" in proc.stdout
    return docx.Document(str(out))


def text_of(doc) -> str:
    return "\n".join(p.text for p in doc.paragraphs)


def table(doc, *header: str):
    """The one table whose header row starts with `header`."""
    found = [t for t in doc.tables if [c.text for c in t.rows[0].cells][:len(header)] == list(header)]
    assert len(found) == 1, (header, [[c.text for c in t.rows[0].cells] for t in doc.tables])
    return found[0]


def rows(t) -> list[list[str]]:
    return [[c.text for c in r.cells] for r in t.rows[1:]]


def f3(x) -> str:
    """A number as the report prints it: 3 decimals, the minus sign."""
    return f"{round(x, 3):.3f}".replace("-", "\u2212")


def s3(x) -> str:
    return f"{round(x, 3):+.3f}".replace("-", "\u2212")


def test_report_numbers_equal_the_json(results, tmp_path):
    cfg, res = results
    ev = evaluation()
    out = tmp_path / "out" / "report.docx"
    doc = report(cfg, out)

    board = table(doc, "Model", "Probe", "Test MAE [95% CI]", "− train median [95% CI]", "− best model [95% CI]",
                  "− fine-tuned [95% CI]", "Spearman", "Articles/s")
    body = {(r[0], r[1]): r for r in rows(board)}
    assert ("bge-m3", "ridge (best)") in body    # the one chosen on validation is marked
    body = {(m, p.replace(" (best)", "")): r for (m, p), r in body.items()}
    for model, entry in ev["models"].items():
        for probe in PROBES:
            m = entry["probes"][probe]
            r = body[model, probe]
            d = m["vs_median_predictor"]   # "learns anything" reads the best constant for MAE
            assert r[2:4] == [f"{f3(m['overall_mae'])} [{f3(m['mae_ci95'][0])}, {f3(m['mae_ci95'][1])}]",
                              f"{s3(d['mae_difference'])} [{s3(d['difference_ci95'][0])}, {s3(d['difference_ci95'][1])}] "
                              f"{d['verdict']}"]
            assert r[6] == f3(m["overall_spearman"])
            vb = m.get("vs_best")
            assert r[4] == ("reference" if (model, probe) == ("bge-m3", "ridge") else
                            f"{s3(vb['mae_difference'])} [{s3(vb['difference_ci95'][0])}, {s3(vb['difference_ci95'][1])}] "
                            f"{vb['verdict']}")
    # bge-m3 has the fine-tuned predictions (paired); mini-128 only the single baseline MAE (unpaired, same rule)
    assert body["bge-m3", "ridge"][5] == "+0.068 [+0.021, +0.115] worse"
    mini = ev["models"]["mini-128"]["probes"]["ridge"]
    lo, hi = (x - 0.68 for x in mini["mae_ci95"])
    assert body["mini-128", "ridge"][5] == f"{s3(mini['overall_mae'] - 0.68)} [{s3(lo)}, {s3(hi)}] worse (unpaired)"
    assert {m: body[m, "ridge"][7] for m in MODELS} == {"mini-128": "812.2", "bge-m3": "95.5"}
    assert body["train-mean predictor", "—"][2] == f"{f3(1.9876)} [1.800, 2.100]"
    assert body["fine-tuned baseline", "—"][2] == f3(ev["baseline_mae"])
    for r in board.rows[1:]:  # numbers right-aligned
        assert r.cells[2].paragraphs[0].alignment == docx.enum.text.WD_ALIGN_PARAGRAPH.RIGHT

    per_dim = table(doc, "Model + probe", "RMSE")
    assert [c.text for c in per_dim.rows[0].cells] == ["Model + probe", "RMSE", *DIMS]
    dims = {r[0]: r[1:] for r in rows(per_dim)}
    for model, entry in ev["models"].items():
        for probe in PROBES:
            m = entry["probes"][probe]
            assert dims[f"{model} + {probe}"] == [f3(m["overall_rmse"])] + [f3(m["per_dimension"][d]["mae"]) for d in DIMS]

    per_lang = table(doc, "Model", "Probe", "Language", "n", "Test MAE [95% CI]")
    for r in rows(per_lang):
        m = ev["models"][r[0]]["probes"][r[1]]
        g = m["by_language"][r[2]]
        assert r[3] == str(g["n"]) == str(ev["language_counts"][r[2]])
        if r[2] == "fr":   # 20 French test articles are fewer than min_group_articles (30): shown, not read
            assert r[4:] == [f3(g["mae"]), "too few to judge", "too few to judge"]
        else:
            d = g["vs_reference"]
            assert r[4:6] == [f"{f3(g['mae'])} [{f3(g['mae_ci95'][0])}, {f3(g['mae_ci95'][1])}]",
                              f"{s3(d['mae_difference'])} [{s3(d['difference_ci95'][0])}, "
                              f"{s3(d['difference_ci95'][1])}] {d['verdict']}"]
    assert {(r[0], r[1]) for r in rows(per_lang)} == {(m, "ridge") for m in MODELS}   # each model's chosen probe

    trunc = table(doc, "Model", "Max tokens")
    cut = next(r for r in rows(trunc) if r[0] == "mini-128")
    chosen = min(PROBES, key=lambda p: ev["models"]["mini-128"]["probes"][p]["val_mae"])
    assert chosen == ev["models"]["mini-128"]["chosen_probe"]
    t = ev["models"]["mini-128"]["probes"][chosen]["truncation"]
    assert cut[3:] == [chosen, "12", f3(t["truncated"]["mae"]), "38", f3(t["not_truncated"]["mae"]), "too few to judge"]

    speed = table(doc, "Model", "Probe", "Articles/s")
    assert {r[0]: r[2] for r in rows(speed)} == {"mini-128": "812.2", "bge-m3": "95.5"}

    probes = table(doc, "Model", "Probe", "Validation MAE", "− chosen [95% CI]", "Reading")
    against = {(r[0], r[1]): r[4] for r in rows(probes)}
    assert {(r[0], r[1]): r[2] for r in rows(probes)} == {
        (m, p): f3(ev["models"][m]["probes"][p]["val_mae"]) for m in MODELS for p in PROBES}
    assert against["bge-m3", "ridge"] == "chosen on validation"
    assert against["bge-m3", "mlp"] == "inconclusive" and against["bge-m3", "lightgbm"] == "worse"

    text = text_of(doc)
    b = ev["best"]
    assert ("Decision: Use the probe as Stage 1 (screening) — bge-m3 + ridge: partial, possibly closes the gap (the "
            "whole 95% CI of its test MAE against the bands); against the fine-tuned model worse (paired, margin "
            "±0.02 MAE).") in text
    decision = {r[0]: r[1] for r in rows(table(doc, "Question", "Answer", "Number [95% CI]", "See"))}
    assert decision["Does bge-m3 close the gap?"] == "partial, possibly closes the gap"
    assert decision["Does the best probe learn anything (against a constant (the training median))?"] == \
        "better than a constant (the training median)"
    assert decision["Which probe?"] == ("ridge, chosen on validation: not shown to beat mlp (inconclusive); better "
                                        "than lightgbm")
    assert f"test MAE {f3(b['test_mae'])} [{f3(b['mae_ci95'][0])}, {f3(b['mae_ci95'][1])}]" in text
    assert "Gap to it" not in text and "config.yaml baseline_mae" in text   # no reading from the sign of a point
    assert "random weights" in text and "bge-m3" in text
    # a timestamp must not break over two lines: its spaces are non-breaking
    assert "evaluated 2026-01-01\u00a000:00\u00a0UTC" in text

    # figures: the screening curve and two of the three error figures (the bias-per-bin figure repeats its
    # table, the MAE bars the results table: one place for each number), each with a caption; no
    # quality/speed chart of two points
    assert len(doc.inline_shapes) == 3
    images = [p for p in doc.part.package.parts if p.content_type == "image/png"]
    assert len(images) == 3
    captions = [p.text for p in doc.paragraphs if p.style.name == "Caption" and p.text.startswith("Figure")]
    assert len(captions) == 3 and any("skip the fine-tuned model" in c for c in captions)
    assert not (out.parent / "report_figures" / "quality_vs_speed.png").exists()
    headings = [p.text for p in doc.paragraphs if p.style.name == "Heading 1"]
    assert headings == ["1. Decision", "Contents", "2. Results", "3. Limitations", "Annex"]
    assert sorted(p.name for p in out.parent.iterdir()) in (["report.docx"], ["report.docx", "report_figures"])


def test_the_comparison_markdown_and_the_word_report_are_one_document(results, tmp_path):
    """Both files come from the same table specs: every table the markdown holds is in the Word report with the
    same caption and the same cells (the input-file list aside: each names what it was built from)."""
    cfg, res = results
    in_process("compare_results.py", "--config", cfg, "--dataset", "toy")
    md = (res / "toy_comparison_report.md").read_text(encoding="utf-8")
    doc = report(cfg, tmp_path / "r.docx")
    word = {}
    captions = [p.text for p in doc.paragraphs if p.style.name == "Caption" and p.text.startswith("Table ")]
    for caption, t in zip(captions, doc.tables):
        word[caption.split(". ", 1)[1]] = [[c.text for c in r.cells] for r in t.rows]
    tables = markdown_tables(md)
    assert len(tables) >= 10
    board = next(k for k in tables if k.startswith("Every model and probe"))
    assert tables[board] == word[board] and len(tables[board]) == 1 + 6 + 3     # header, 6 probes, 3 references
    for caption, cells in tables.items():
        if not caption.startswith("Every file this report"):
            assert caption in word, caption
            assert cells == word[caption], caption


def test_phase_3b_is_a_function_returning_the_record_and_document_it_wrote(results):
    """study/report.py `compare` (what compare_results.py calls) returns the comparison record it wrote, the document
    the markdown renders and the charts the record names; the script prints from what it returns."""
    from study.artifacts import staged_writes
    from study.config import load_config
    from study.document import to_markdown
    from study.report import compare
    from study.schemas import ComparisonRecord, read_record

    cfg, res = results
    with staged_writes():
        done = compare(load_config(cfg), "toy")
    assert done.path == res / "toy_comparison_report.md"
    assert done.record == read_record(res / "toy_comparison.json", ComparisonRecord, "comparison record", "")
    assert done.path.read_text(encoding="utf-8") == to_markdown(done.document, res)
    assert {n: res / rel for n, rel in done.record.figures.items()} == done.figures
    assert len(done.figures) >= 2 and all(p.is_file() for p in done.figures.values())
    proc = in_process("compare_results.py", "--config", cfg, "--dataset", "toy")
    assert proc.stdout.splitlines()[-1 - len(done.figures):] == [
        f"report: {done.path}", *(("charts: " if i == 0 else "        ") + str(p)
                                  for i, p in enumerate(done.figures.values()))]


def test_phase_6_is_a_function_returning_the_document_it_wrote(results, tmp_path):
    """study/report.py `write_report` (what generate_report.py calls) returns the document model it laid out in Word:
    the .docx holds its top-level headings, its tables (caption and every cell) and its figures, in order; the
    script prints from what it returns."""
    from study.config import load_config
    from study.document import Contents, Figure, Heading, Table
    from study.report import write_report

    cfg, res = results
    (res / "analysis" / "toy_error_summary.json").unlink()   # one section's input missing: named in `missing`
    out = tmp_path / "r.docx"
    done = write_report(load_config(cfg), "toy", out)
    doc, blocks = docx.Document(str(out)), done.document.blocks
    assert done.path == out
    heads = ["Contents" if isinstance(b, Contents) else b.text for b in blocks
             if isinstance(b, Contents) or isinstance(b, Heading) and b.level == 1]
    assert list(done.sections) == heads == [p.text for p in doc.paragraphs if p.style.name == "Heading 1"]
    tables = [b for b in blocks if isinstance(b, Table)]
    captions = [p.text.split(". ", 1)[1] for p in doc.paragraphs if p.style.name == "Caption" and p.text.startswith("Table ")]
    assert done.tables == len(tables) == len(doc.tables) > 10 and captions == [t.caption for t in tables]
    for t, word in zip(tables, doc.tables):
        assert [t.header, *t.rows] == [[c.text for c in r.cells] for r in word.rows], t.caption
    assert done.figures == sum(isinstance(b, Figure) for b in blocks) == len(doc.inline_shapes) > 0
    assert done.missing == tuple(done.document.missing) and any("Error analysis" in m for m in done.missing)

    proc = in_process("generate_report.py", "--config", cfg, "--dataset", "toy", "--output", out)
    assert proc.stdout.splitlines() == [f"sections: {'; '.join(done.sections)}",
                                        f"{done.tables} tables, {done.figures} figures; unavailable: "
                                        f"{', '.join(done.missing)}", f"report: {out}"]


def test_missing_inputs_are_reported_not_fatal(results, tmp_path):
    cfg, res = results
    (res / "benchmarks" / "toy_benchmarks.json").unlink()
    (res / "analysis" / "toy_error_summary.json").unlink()
    (res / "toy_comparison.json").unlink()
    doc = report(cfg, tmp_path / "r.docx")
    text = text_of(doc)
    assert "Speed comparison unavailable" in text and "run benchmark_speed.py" in text
    assert "Error analysis unavailable" in text and "Screening curve unavailable" in text
    assert len(doc.inline_shapes) == 0
    table(doc, "Model", "Probe", "Test MAE [95% CI]")  # the results tables are still there


def test_no_baseline_and_no_bge(tmp_path):
    cfg = write_config(tmp_path, {"mini-128": MODELS["mini-128"]})
    ev = evaluation(baseline=None, config=config_dump(cfg))
    del ev["models"]["bge-m3"]
    ev["best"] = {"model": "mini-128", "probe": "ridge", "val_mae": 0.8, "test_mae": 0.8123, "mae_ci95": [0.76, 0.86],
                  "chosen_by": "validation MAE", "verdicts": VERDICTS}
    res = tmp_path / "results"
    res.mkdir()
    (res / "toy_evaluation_results.json").write_text(json.dumps(ev))
    doc = report(cfg, tmp_path / "r.docx")
    decision = {r[0]: r[1] for r in rows(table(doc, "Question", "Answer", "Number [95% CI]", "See"))}
    # a step this run did not take says how to take it ("cannot be judged" is kept for limits of the data)
    assert decision["Does bge-m3 close the gap?"] == "not run (to answer it: run_all.py --dataset toy --models bge-m3)"
    word = next(p.text for p in doc.paragraphs if p.text.startswith("Decision: "))
    assert word.startswith("Decision: Not decidable from this run — no fine-tuned baseline MAE")
    head = [c.text for c in table(doc, "Model", "Probe", "Test MAE [95% CI]").rows[0].cells]
    assert "− fine-tuned [95% CI]" not in head


def test_missing_evaluation_exits_2_with_one_line(tmp_path):
    cfg = write_config(tmp_path, MODELS)
    out = tmp_path / "r.docx"
    proc = in_process("generate_report.py", "--config", cfg, "--dataset", "toy", "--output", out, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: evaluation results") and "evaluate.py" in lines[0]
    assert not out.exists()


def test_every_column_of_every_table_has_a_value(results, tmp_path):
    """An empty column is a field the report reads under a name the results do not have (as the probe table's
    'Chosen on validation' once was)."""
    cfg, res = results
    doc = report(cfg, tmp_path / "r.docx")
    for t in doc.tables:
        head = [c.text for c in t.rows[0].cells]
        for col, name in enumerate(head):
            assert any(r[col].strip() for r in rows(t)), (name, head)
    probes = {r[0]: r[2] for r in rows(table(doc, "Probe", "Settings", "Chosen on validation"))}
    assert probes["ridge"] == "mini-128: alpha 10; bge-m3: alpha 10", probes
    cells = [c.text.strip() for t in doc.tables for r in t.rows for c in r.cells]
    assert not [c for c in cells if c in ("None", "nan", "''", "inf")], "a raw value leaked into a cell"


def test_page_1_is_the_decision_with_page_numbers(results, tmp_path):
    cfg, res = results
    doc = report(cfg, tmp_path / "r.docx")
    body = [p for p in doc.paragraphs]
    first_break = next(i for i, p in enumerate(body) if p.text == "Contents")   # the front matter ends there
    page_1 = [p.text for p in body[:first_break]]
    assert "1. Decision" in page_1 and any(t.startswith("Decision: ") for t in page_1)
    assert any(t.startswith("Scope: the study's models run: 2 of 2") for t in page_1)
    assert any(t.startswith("Data: ") for t in page_1) and "Caveats" in page_1
    decision = rows(table(doc, "Question", "Answer", "Number [95% CI]", "See"))
    assert [r[0] for r in decision][:2] == ["Does the best probe learn anything (against a constant (the training median))?",
                                             "Does the best probe close the gap to the fine-tuned model?"]
    assert all(r[1].strip() and r[2].strip() for r in decision)
    footer = doc.sections[0].footer.paragraphs[0]._p.xml
    assert "PAGE" in footer and "NUMPAGES" in footer
    contents = body[first_break:first_break + 40]
    assert [p.text for p in contents][:1] == ["Contents"] and any("2.5 Which probe works best?" in p.text for p in contents)
    after = next(i for i, p in enumerate(body) if 'w:br w:type="page"' in p._p.xml)   # then the results, on a new page
    assert after > first_break and body[after + 1].text == "2. Results"


def test_score_range_and_model_notes_come_from_the_evaluation(results, tmp_path):
    """The report describes the run the results come from: the configuration recorded in the evaluation, not the
    config.yaml where the report is generated."""
    cfg, res = results
    recorded = config_dump(cfg)
    recorded["score_range"] = [0.0, 8.0]
    recorded["embedding_models"]["mini-128"]["note"] = "English-only stand-in as evaluated"
    ev = evaluation(config=recorded)
    ev["models"]["mini-128"].update(control=True, languages=["en"],
                                    control_reason="mini-128 reads English only, and 40% of the test articles are French")
    (res / "toy_evaluation_results.json").write_text(json.dumps(ev))
    doc = report(cfg, tmp_path / "r.docx")
    text = text_of(doc)
    assert "each scored 0–8 on 2 dimensions" in text and "each scored 0–10" not in text
    notes = {r[0]: r[-1] for r in rows(table(doc, "Model", "Source", "Dim"))}
    assert notes["mini-128"] == "English-only stand-in as evaluated"
    assert ("mini-128 is a control: mini-128 reads English only, and 40% of the test articles are French (English-only "
            "stand-in as evaluated). It is never the best model") in text


def test_inputs_of_another_evaluation_are_left_out_and_named(results, tmp_path):
    """A comparison and an error analysis made from another evaluation (a rerun of phase 3 since, say) are not
    mixed into the report: it leaves them out and says so."""
    import hashlib

    cfg, res = results
    current = hashlib.sha256((res / "toy_evaluation_results.json").read_bytes()).hexdigest()
    for rel in ("toy_comparison.json", "analysis/toy_error_summary.json"):
        rec = json.loads((res / rel).read_text())
        rec["evaluation_sha256"] = "0" * 64
        (res / rel).write_text(json.dumps(rec))
    doc = report(cfg, tmp_path / "r.docx")
    text = text_of(doc)
    assert "Another run's comparison unavailable: toy_comparison.json was made from another evaluation" in text
    assert "Another run's errors unavailable: toy_error_summary.json was made from another evaluation" in text
    assert len(doc.inline_shapes) == 0   # neither run's figures are shown
    rec = json.loads((res / "toy_comparison.json").read_text())
    rec["evaluation_sha256"] = current   # the current one's are used again
    (res / "toy_comparison.json").write_text(json.dumps(rec))
    assert len(report(cfg, tmp_path / "r2.docx").inline_shapes) == 1   # its screening curve (the bars repeat a table)


HEAVY = ("torch", "sklearn", "lightgbm", "transformers", "sentence_transformers")


@pytest.mark.slow
def test_the_report_and_the_comparison_run_without_torch(results, tmp_path):
    """Phases 3 (comparison) and 6 (report) at home read JSON and draw: they import neither torch nor the probes'
    libraries, so they start fast and run where those are not installed. `-X importtime` lists every module a
    process imports: here a whole comparison and report on complete inputs (what --help imports and more)."""
    cfg, res = results
    for script, extra in (("compare_results.py", ["--config", cfg, "--dataset", "toy"]),
                          ("generate_report.py", ["--config", cfg, "--dataset", "toy", "--output", tmp_path / "r.docx"])):
        proc = subprocess.run([sys.executable, "-X", "importtime", str(REPO / script), *map(str, extra)], cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                    if line.startswith("import time:")}
        assert "study.config" in imported, script   # the listing is there ...
        assert not {m for m in imported if m.split(".")[0] in HEAVY}, (script, extra)   # ... without them
    assert (tmp_path / "r.docx").is_file()
