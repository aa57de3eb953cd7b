"""The cross-dataset summary's markdown (study/summary.py): every row as wide as its header, the values where
the header says."""
import numpy as np

from study.summary import summary_markdown

SUMMARY = {
    "datasets": [{"dataset": "news", "n_test": 120, "model": "bge-m3", "probe": "ridge", "test_mae": 0.7512,
                  "mae_ci95": [0.70, 0.80], "baseline_mae": 0.68, "band": "partial", "control": False,
                  "decision": "Use the probe as Stage 1 (screening)", "short_languages": ["nl", "de"]},
                 {"dataset": "blogs", "n_test": 50, "model": "multilingual-e5-large", "probe": "mlp", "test_mae": 1.2,
                  "mae_ci95": [1.1, 1.3], "baseline_mae": None, "band": None, "control": False,
                  "decision": "Not decidable from this run", "short_languages": []}],
    "models": {"bge-m3": {"news": {"probe": "ridge", "mae": 0.7512, "control": False}},
               "multilingual-e5-large": {"news": {"probe": "mlp", "mae": 0.8, "control": False},
                                         "blogs": {"probe": "mlp", "mae": 1.2, "control": False}}},
    "yes_no": [{"dataset": "yes_no", "n_test": 40, "model": "all-MiniLM-L6-v2", "probe": "logistic", "threshold": 0.42,
                "test_f1": 0.81, "f1_ci95": [0.7, 0.9], "test_roc_auc": 0.93, "baseline_f1": None, "control": True,
                "decision": "Not decidable from this run"}],
}


def tables(md: str) -> list[list[list[str]]]:
    """Each markdown table as rows of cells (the alignment row included)."""
    out, current = [], None
    for line in md.splitlines():
        if line.startswith("|"):
            if current is None:
                current = []
                out.append(current)
            current.append([c.strip() for c in line.strip("|").split("|")])
        else:
            current = None
    return out


def test_each_table_row_has_its_headers_cells_with_the_values_under_their_header():
    md = summary_markdown(SUMMARY, "figures/summary_mae_by_dataset.png")
    found = tables(md)
    assert len(found) == 3
    for table in found:
        assert {len(row) for row in table} == {len(table[0])}
        assert set(table[1]) <= {"---", "---:"}
    by_dataset, per_model, yes_no = ({row[0]: dict(zip(t[0], row)) for row in t[2:]} for t in found)
    assert by_dataset["news"] == {"dataset": "news", "test articles": "120", "chosen on validation": "bge-m3 + ridge",
                                  "test MAE": "0.751", "95% CI": "[0.700, 0.800]", "baseline": "0.680",
                                  "band": "partial", "page 1": "Use the probe as Stage 1 (screening)",
                                  "short of the fine-tuned model in": "nl, de"}
    assert by_dataset["blogs"]["baseline"] == "n/a" and by_dataset["blogs"]["band"] == "no baseline"
    assert by_dataset["blogs"]["short of the fine-tuned model in"] == "—"
    assert yes_no["yes_no"]["chosen on validation"] == "all-MiniLM-L6-v2 + logistic (control)"
    assert md.count("(control): a model that does not read every test language") == 1   # under the yes/no table
    assert per_model["bge-m3"] == {"model": "bge-m3", "news": "0.751 (ridge)", "blogs": "n/a"}
    assert yes_no["yes_no"]["threshold"] == "0.420" and yes_no["yes_no"]["95% CI"] == "[0.700, 0.900]"
    assert found[0][1] == ["---", "---:", "---", "---:", "---:", "---:", "---", "---", "---"]   # numbers right
    assert "![Test MAE per dataset and model](figures/summary_mae_by_dataset.png)" in md


def test_summary_console_and_page_1_read_the_same_bands_for_a_grid_of_baselines(monkeypatch):
    """One band reading (the whole CI) everywhere: for baselines 0.50-0.80 (paired and unpaired), summary.md's
    band cell, the console line of evaluate.py / compare_results.py and page 1's answer say the same, and it is
    the bands the CI spans re-derived from the limits by hand."""
    from types import SimpleNamespace

    from records import as_model, model_entry, score_evaluation, score_probe
    from study import decision, summary
    from study.evaluation import best_verdicts
    from study.results import best_line, best_summary

    margins = {"closes_gap": 0.07, "partial": 0.17}
    names = ("closes the gap", "partial", "no improvement")
    cfg = SimpleNamespace(equivalence_margin=0.02, min_group_articles=30)
    disagreements = 0
    for paired in (False, True):
        for base in np.round(np.arange(0.50, 0.801, 0.01), 2):
            probe = score_probe(0.74, mae_ci95=[0.70, 0.78], val_mae=0.7)
            if paired:   # the fine-tuned model's predictions: its MAE 0.01 above `base` on the articles both scored
                probe["vs_baseline"] = paired_record = {"n_articles": 50, "probe_mae": 0.74, "baseline_mae": base + 0.01,
                                                        "mae_difference": 0.73 - base, "difference_ci95":
                                                        [0.70 - base - 0.02, 0.78 - base - 0.01],
                                                        "verdict": "inconclusive", "equivalence_margin": 0.02}
            models = {"m": model_entry("m", {"ridge": probe})}
            results = {"models": models, "baseline_mae": base, "success_bands": margins, "n_test": 50,
                       "best": best_summary(models, base, margins)}
            results["best"]["verdicts"] = best_verdicts(cfg, results)
            ev = as_model(score_evaluation(models, best=results["best"], baseline_mae=float(base),
                                           baseline_source="config"))
            lo, hi = (0.70, 0.78) if not paired else (base + 0.01 + paired_record["difference_ci95"][0],
                                                      base + 0.01 + paired_record["difference_ci95"][1])
            ref = base + 0.01 if paired else base
            band = lambda x: names[0] if x <= ref + 0.07 + 1e-12 else names[1] if x <= ref + 0.17 + 1e-12 else names[2]  # noqa: E731
            spanned = list(names[names.index(band(lo)):names.index(band(hi)) + 1])
            by_hand = spanned[-1] if len(spanned) == 1 else f"{spanned[-1]}, possibly {' or '.join(reversed(spanned[:-1]))}"
            monkeypatch.setattr(summary, "read_evaluation", lambda cfg, name, ev=ev: ev)
            md = summary.summary_markdown(summary.cross_dataset(None, ["toy"]), "")
            cell = {row[0]: dict(zip(t[0], row)) for t in tables(md)[:1] for row in t[2:]}["toy"]["band"]
            console = best_line(ev)
            page1 = {r.question: r.answer for r in decision.score_rows(ev, None)}[
                "Does the best probe close the gap to the fine-tuned model?"]
            assert cell == by_hand and console.endswith(f": {by_hand} (bands of the whole 95% CI)")
            assert page1.startswith(f"{by_hand} (the whole CI read against the bands)")
            disagreements += by_hand != names[[band(0.74) == n for n in names].index(True)]
    assert disagreements > 5   # the grid crosses the limits: the point estimate's band would have disagreed
