"""The cross-dataset summary of a run over several datasets (results/summary.md + a figure).

Per dataset: the best model + probe chosen on validation (marked where it is a control, a model that does not read
every test language), its test MAE with CI, the fine-tuned baseline and the bands its whole CI spans (the evaluation's
`best.band`, page 1's reading), page 1's decision word and the test languages where the best falls short of the
fine-tuned model (page 1's line under the decision). Per model: the test MAE of its probe chosen on validation on every
dataset. Yes/no datasets (task: classification) get a table of their own (test F1 at the validation threshold). Built
only from each dataset's evaluation JSON.
"""
from __future__ import annotations

from study import decision, paths, plots
from study.config import Config
from study.findings import band_rule
from study.results import read_evaluation
from study.schemas import CrossDatasetSummary, write_record


def cross_dataset(cfg: Config, datasets: list[str]) -> dict:
    rows, per_model, yes_no = [], {}, []
    for name in datasets:
        ev = read_evaluation(cfg, name)
        b = ev.best
        page_1 = {"control": b.control, "decision": decision.decision(ev)[0]}
        if ev.task == "classification":   # yes/no labels: F1, in a table of their own
            yes_no.append({"dataset": name, "model": b.model, "probe": b.probe, "threshold": b.threshold,
                           "test_f1": b.test_f1, "f1_ci95": b.f1_ci95, "test_roc_auc": b.test_roc_auc,
                           "baseline_f1": ev.baseline_f1, "n_test": ev.n_test, **page_1})
            continue
        rows.append({"dataset": name, "model": b.model, "probe": b.probe, "val_mae": b.val_mae,
                     "test_mae": b.test_mae, "mae_ci95": b.mae_ci95, "baseline_mae": ev.baseline_mae,
                     "band": b.band, "bands": band_rule(ev.baseline_mae, ev.success_bands), "n_test": ev.n_test,
                     **page_1, "short_languages": [lang for lang, _ in decision.lagging_languages(ev)]})
        for v, p, m in ev.chosen_entries():
            per_model.setdefault(v, {})[name] = {"probe": p, "mae": m.overall_mae, "ci95": m.mae_ci95,
                                                 "control": ev.models[v].control}
    return {"datasets": rows, "models": per_model, "yes_no": yes_no}


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _table(header: list[str], align: str, rows: list[list[str]]) -> list[str]:
    """A markdown table's lines; align: 'l' or 'r' per column."""
    return ["| " + " | ".join(header) + " |", "|" + "".join("---|" if a == "l" else "---:|" for a in align),
            *("| " + " | ".join(row) + " |" for row in rows)]


def _chosen(r: dict) -> list[str]:
    """The first cells of a dataset's row: its name, test articles and the model + probe chosen on validation
    ('(control)' where the model does not read every test language)."""
    return [r["dataset"], str(r["n_test"]), f"{r['model']} + {r['probe']}" + (" (control)" if r["control"] else "")]


def _ci(pair) -> str:
    return f"[{_f(pair[0])}, {_f(pair[1])}]"


def summary_markdown(summary: dict, figure: str) -> str:
    names = [r["dataset"] for r in summary["datasets"]]
    out = ["# Summary across datasets", ""]
    if names:   # score datasets
        out += ["Per dataset, the model + probe chosen on validation and its test MAE against the dataset's own "
                "fine-tuned baseline (bands: margins over that baseline, read on the whole 95% CI as page 1 reads "
                "them: 'partial, possibly closes the gap' when the CI spans both); page 1: the decision its report "
                "opens with (the reason is there); the languages where that model falls short of the fine-tuned "
                "model, named under that decision.", ""]
        out += _table(["dataset", "test articles", "chosen on validation", "test MAE", "95% CI", "baseline", "band",
                       "page 1", "short of the fine-tuned model in"], "lrlrrrlll",
                      [_chosen(r) + [_f(r["test_mae"]), _ci(r["mae_ci95"]), _f(r["baseline_mae"]),
                                     r["band"] or "no baseline", r["decision"] or "n/a",
                                     ", ".join(r["short_languages"]) or "—"] for r in summary["datasets"]])
        out += _notes(summary["datasets"])
        out += ["", "Test MAE of each model's probe chosen on validation, per dataset:", ""]
        out += _table(["model", *names], "l" + "r" * len(names),
                      [[model + (" (control)" if any(x["control"] for x in d.values()) else "")]
                       + [f"{_f(d[n]['mae'])} ({d[n]['probe']})" if n in d else "n/a" for n in names]
                       for model, d in summary["models"].items()])
        out += ["", f"![Test MAE per dataset and model]({figure})", ""] if figure else [""]
    if summary.get("yes_no"):
        out += ["Yes/no datasets (task: classification): the model + probe chosen on validation log-loss, its test F1 "
                "at the threshold chosen on validation, against the fine-tuned classifier's F1.", ""]
        out += _table(["dataset", "test articles", "chosen on validation", "threshold", "test F1", "95% CI", "ROC AUC",
                       "baseline F1"], "lrlrrrrr",
                      [_chosen(r) + [_f(r["threshold"]), _f(r["test_f1"]), _ci(r["f1_ci95"]), _f(r["test_roc_auc"]),
                                     _f(r["baseline_f1"])] for r in summary["yes_no"]])
        out += _notes(summary["yes_no"])
        out.append("")
    return "\n".join(out)


def _notes(rows: list[dict]) -> list[str]:
    """A line under a table whose chosen model is a control somewhere: what that means, as page 1's banner says."""
    if not any(r["control"] for r in rows):
        return []
    return ["", "(control): a model that does not read every test language of that dataset; it is never the answer, "
            "and that dataset's page 1 says the run cannot decide (its banner)."]


def write_summary(cfg: Config, datasets: list[str]) -> CrossDatasetSummary:
    """Write summary.md, its figure and summary.json (which records both by name); returns the record."""
    from study.artifacts import atomic_path

    summary = cross_dataset(cfg, datasets)
    figure = plots.dataset_bars({m: {n: d["mae"] for n, d in per.items()} for m, per in summary["models"].items()},
                                {r["dataset"]: r["baseline_mae"] for r in summary["datasets"]},
                                paths.summary_figure(cfg)) if summary["datasets"] else None
    md = paths.summary_markdown(cfg)
    with atomic_path(md, "wb") as fh:
        fh.write(summary_markdown(summary, figure and paths.relative(cfg, figure)).encode("utf-8"))
    record = {**summary, "markdown": paths.relative(cfg, md),
              "figures": {"mae_by_dataset": paths.relative(cfg, figure)} if figure else {}}
    return write_record(paths.summary_record(cfg), CrossDatasetSummary, record)
