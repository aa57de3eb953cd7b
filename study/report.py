"""The study's report, built only from the typed results of phases 2-5: Word (phase 6) and markdown (phase 3b).

`load_inputs` reads what the phases wrote under `results/` (the evaluation JSON is required;
training summary, benchmarks, error summary and the comparison record are optional), each
through its one reader into its model (study/schemas.py). A report is a list of sections per
task (study/tasks.py `report_sections`); each section writes blocks (headings, paragraphs,
captioned tables, figures) into one document model (study/document.py), which `write_report`
(phase 6 as one function: it returns `Reported`, the document with it) lays out in Word and
`compare` writes as markdown (phase 3b): the same tables, the same cells. The main text answers
the study's questions (page 1 is the decision, study/decision.py); everything behind it is in
the annex. Every number comes from the records or from study/findings.py; every verdict word is
the one the comparison rule recorded in phase 3.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from study import decision, findings, paths, screening
from study.artifacts import atomic_path, current, read_json
from study.comparison import BINARY_FIGURES as BINARY_COMPARISON
from study.comparison import FIGURES as COMPARISON_FIGURES
from study.comparison import draw_figures
from study.config import Config
from study.document import Document, to_docx, to_markdown
from study.error_analysis import BINARY_FIGURES as BINARY_ERRORS
from study.error_analysis import FIGURES as ERROR_FIGURES
from study.formats import MISSING, num, pct, pct_value_ci, short, signed, value_ci
from study.selection import describe_selected
from study.provenance import record
from study.results import evaluation_sha256, read_evaluation
from study.schemas import (BenchmarkRecord, ComparisonRecord, DataChecks, TrainingSummary, model_for, read_record,
                           validate, write_record)
from study.tasks import task as task_of

WORST_SHOWN = 10        # worst-scored articles listed per report
MIN_CHART_POINTS = 3    # a chart of fewer points says nothing the table does not
TITLE = "Multilingual embeddings + probes against a fine-tuned scorer"
# figures the report leaves out because a table in it holds the same numbers (one place for each number)
# the question sections of the main text -> the key page 1's rows name as their evidence (study/decision.py)
SUBSECTIONS = {"leaderboard": "results", "q_languages": "languages", "q_bge": "bge", "q_truncation": "truncation", "q_probes": "probes",
               "q_speed": "speed", "q_screening": "screening", "q_pairs": "pairs", "q_learning_curve": "learning_curve"}
SAME_AS_A_TABLE = {"mae_by_model", "dimension_mae_heatmap", "f1_by_model", "dimension_mae", "error_by_language",
                   "bias_by_score_bin"}


# -- inputs --------------------------------------------------------------------------------
@dataclass
class Inputs:
    dataset: str
    evaluation: object                                       # ScoreEvaluation | YesNoEvaluation
    training: TrainingSummary | None = None
    benchmarks: BenchmarkRecord | None = None
    data_checks: DataChecks | None = None
    errors: object = None                                    # ErrorSummary | YesNoErrorSummary
    comparison_figures: dict[str, Path] = field(default_factory=dict)   # name -> png recorded by compare_results.py
    error_figures: dict[str, Path] = field(default_factory=dict)        # name -> png recorded by phase 5
    comparison_report: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)   # what was read, for the annex
    left_out: dict[str, str] = field(default_factory=dict)  # inputs of another run: why each was not used


def load_inputs(cfg: Config, dataset: str, benchmarks_of: str | None = None) -> Inputs:
    """Everything the report reads; StudyError only when the evaluation JSON is missing or bad (or an optional
    input is there but not of this version: one error naming it).

    `benchmarks_of`: the dataset whose speed benchmark to use (a run over several datasets measures once).
    """
    inputs = Inputs(dataset=dataset, evaluation=read_evaluation(cfg, dataset),
                    files={"evaluation": paths.evaluation(cfg, dataset)})
    current = evaluation_sha256(cfg, dataset)
    optional = {"training": (paths.training_summary(cfg, dataset), TrainingSummary, "rerun train_probes.py"),
                "data_checks": (paths.data_checks(cfg, dataset), DataChecks, "rerun embed_articles.py"),
                "benchmarks": (paths.benchmark(cfg, benchmarks_of or dataset), BenchmarkRecord, "rerun benchmark_speed.py"),
                "errors": (paths.error_summary(cfg, dataset), None, "rerun analyze_error_distribution.py"),
                "comparison": (paths.comparison_record(cfg, dataset), ComparisonRecord, "rerun compare_results.py")}
    for key, (path, model, remedy) in optional.items():
        if not path.is_file():
            continue
        if model is None:   # the error summary's shape follows its task
            data = read_json(path, "error summary")
            rec = validate(model_for("error summary", data), data, str(path), remedy)
        else:
            rec = read_record(path, model, key, remedy)
        made_from = getattr(rec, "evaluation_sha256", None)
        if made_from is not None and made_from != current:   # another run's: left out, and named
            inputs.left_out[key] = (f"{path.name} was made from another evaluation than the current "
                                    f"{paths.evaluation(cfg, dataset).name}; {remedy}")
            continue
        inputs.files[key] = path
        if key == "comparison":
            inputs.comparison_figures = {n: paths.recorded(cfg, rel) for n, rel in rec.figures.items()}
            inputs.comparison_report = paths.recorded(cfg, rec.report)
        else:
            setattr(inputs, key, rec)
    if inputs.errors is not None:
        inputs.error_figures = {n: paths.recorded(cfg, rel) for n, rel in inputs.errors.figures.items()}
    return inputs


def label(variant: str, probe: str | None) -> str:
    return f"{variant} + {probe}" if probe else variant


# -- the report ---------------------------------------------------------------------------
class Report:
    """The sections of a report (study/tasks.py names them per task), writing into one Document."""

    def __init__(self, cfg: Config, inputs: Inputs, out: Path):
        self.cfg, self.inp, self.out = cfg, inputs, Path(out)
        self.ev = ev = inputs.evaluation
        self.task = task_of(ev.task)
        self.run_cfg = ev.config   # what the results ran with (score range, model notes), not this machine's config.yaml
        self.scores = ev.task == "regression"
        when = datetime.fromisoformat(ev.evaluated_at).strftime("%Y-%m-%d %H:%M UTC")
        self.w = Document(TITLE, f"Dataset {inputs.dataset} · evaluated {when}")
        questions = [s for s in self.task.report_sections if s in SUBSECTIONS]   # numbered 2.1, 2.2, ... in order
        self.numbers = {SUBSECTIONS[s]: f"2.{i}" for i, s in enumerate(questions, 1)}

    def sub(self, key: str, title: str):
        """The heading of a question section, numbered by its place in this task's sections."""
        self.w.heading(f"{self.numbers[key]} {title}", 2)

    # helpers -------------------------------------------------------------------------------
    def rel(self, path: Path) -> str:
        try:
            return str(Path(path).resolve().relative_to(self.cfg.results_path.resolve().parent))
        except ValueError:
            return str(path)

    def place(self, which: str, names, width_cm: float | None = None) -> int:
        """Place the comparison ("cmp") or error-analysis ("err") figures named, in that order, once each."""
        if which == "cmp":
            figs, captions, source = (self.inp.comparison_figures, {**COMPARISON_FIGURES, **BINARY_COMPARISON},
                                      "compare_results.py")
        else:
            probe = self.inp.errors.probe if self.inp.errors is not None else "?"
            figs, captions, source = (self.inp.error_figures, {**ERROR_FIGURES, **BINARY_ERRORS},
                                      f"analyze_error_distribution.py, {probe} probe")
        return sum(self.w.figure(figs[n], f"{captions.get(n, n)} ({source}).", width_cm) for n in names if n in figs)

    def not_run(self, what: str, how: str):
        """One line for an optional analysis whose results do not exist yet, saying how to produce them."""
        self.w.para((f"{what} Not run. " if what.endswith("?") else f"{what}: not run. ", "b"),
                    (f"To produce it: {how}.", "i"))

    def margin(self) -> float:
        return findings.margin(self.ev)

    def sections(self) -> list:
        return [getattr(self, name) for name in self.task.report_sections]

    def build(self) -> Document:
        for section in self.sections():
            section()
        return self.w

    # page 1 --------------------------------------------------------------------------------
    def decision(self):
        """Page 1: the decision table (study/decision.py), the verdict, the data and three caveats; then contents."""
        w, ev = self.w, self.ev
        rows = (decision.score_rows if self.scores else decision.yes_no_rows)(ev, self.inp.benchmarks)
        w.heading("1. Decision")
        for what, why in self.inp.left_out.items():
            w.unavailable(f"Another run's {what.replace('_', ' ')}", why)
        warning = decision.banner(ev)
        if warning:
            w.para((warning, "b"))
        word, why = decision.decision(ev)
        w.para(("Decision: ", "b"), (word, "b"), f" — {why}.")
        gap = decision.language_gap(ev) if self.scores else None
        if gap:   # right under the decision: a language the overall answer does not carry to
            w.para(("Not for every language: ", "b"), gap)
        w.para(decision.scope_line(ev))
        w.table("The study's questions, each answered by one rule (paired 95% bootstrap differences against the "
                "margin; bands from the whole CI; guaranteed screening).",
                ["Question", "Answer", "Number [95% CI]", "See"],
                [[r.question, r.answer, r.number, self.numbers.get(r.evidence, MISSING)] for r in rows], "lllc", font_pt=7,
                flows=True)
        w.para(decision.data_line(ev, self.inp.training))
        w.para(("Caveats", "b"))
        for text in decision.caveats(ev, self.inp.benchmarks):
            w.bullet(text)
        w.contents_here()   # right after the caveats (page 1 or 2), so no page is left nearly empty
        w.page_break()

    # 2. results: the leaderboard, then one subsection per question --------------------------
    def leaderboard(self):
        """2.1: one table, a row per model x probe, with the references it is read against."""
        w, ev = self.w, self.ev
        w.heading("2. Results")
        self.sub("results", "All models and probes")
        m_ = self.margin()
        if self.scores:
            base = bool(ev.baseline_mae)
            paired = {findings.vs_baseline(ev, m)["paired"] for _, _, m in ev.entries()} if base else set()
            mixed = len(paired) > 1    # some probes paired on the fine-tuned predictions, some not: say which
            rows = []
            for v, p, m in findings.ranked(ev):
                d, b, vb = m.vs_median_predictor, findings.vs_baseline(ev, m), m.vs_best
                row = [v + (" (control)" if ev.models[v].control else ""),
                       p + (" (best)" if (v, p) == (ev.best.model, ev.best.probe) else ""),
                       value_ci(m.overall_mae, m.mae_ci95),
                       f"{value_ci(d.mae_difference, d.difference_ci95, sign=True)} {d.verdict}",
                       "reference" if (v, p) == (ev.best.model, ev.best.probe) else MISSING if vb is None else
                       f"{value_ci(vb.mae_difference, vb.difference_ci95, sign=True)} {vb.verdict}"]
                if base:
                    row.append(f"{value_ci(b['difference'], b['ci95'], sign=True)} {b['verdict']}"
                               + ("" if b["paired"] or not mixed else " (unpaired)"))
                rows.append(row + [num(m.overall_spearman), num(findings.throughput(ev, self.inp.benchmarks, v), 1)])
            for name, ref, what in (("train-median predictor", ev.median_predictor, "reference"),
                                    ("train-mean predictor", ev.mean_predictor, MISSING)):
                rows.append([name, MISSING, value_ci(ref.overall_mae, ref.mae_ci95), what, MISSING]
                            + ([MISSING] if base else []) + [num(ref.overall_spearman), MISSING])
            if base:
                fine = ev.baseline
                rows.append(["fine-tuned baseline", MISSING,
                             value_ci(fine.overall_mae, fine.mae_ci95) if fine else num(ev.baseline_mae),
                             MISSING, MISSING, "reference", num(fine.overall_spearman) if fine else MISSING, MISSING])
            header = (["Model", "Probe", "Test MAE [95% CI]", "− train median [95% CI]", "− best model [95% CI]"]
                      + (["− fine-tuned [95% CI]"] if base else []) + ["Spearman", "Articles/s"])
            ctl = findings.controls(ev)
            caption = (f"Every model and probe on the {ev.n_test} test articles, best test MAE first; (best): chosen "
                       f"on validation MAE among the models that read every test language (validation figures in "
                       f"{self.numbers['probes']}). Differences are this minus the reference, paired on the same "
                       "articles (95% bootstrap CI), read against the "
                       f"equivalence margin ±{m_:g} MAE: better, worse, equivalent or inconclusive; − train median: "
                       "against predicting each dimension's training median (the best constant for MAE; the mean's "
                       f"MAE is shown below it); − best model: against {label(ev.best.model, ev.best.probe)}."
                       + (f" (control): does not read every test language ({'; '.join(dict.fromkeys(ctl.values()))});"
                          " shown, never chosen." if ctl else "")
                       + (f" Fine-tuned baseline from {ev.baseline_source}"
                          + ("; against it unpaired (its single MAE, no predictions)." if paired == {False} else
                             "; against it paired on its predictions." if paired == {True} else ".") if base else "")
                       + " Articles/s: embedding throughput (benchmark).")
            w.table(caption, header, rows, "llrrr" + ("r" if base else "") + "rr", font_pt=7,
                    empty_why={"Articles/s": "no speed benchmark ran"})
            self.resplits_table()
            return
        rows = []
        for v, p, m in findings.ranked(ev):
            d = m.vs_always_yes
            rows.append([v + (" (control)" if ev.models[v].control else ""),
                         p + (" (best)" if (v, p) == (ev.best.model, ev.best.probe) else ""), num(m.val_log_loss, 4), num(m.threshold), value_ci(m.f1, m.f1_ci95),
                         f"{value_ci(d.difference, d.ci95, sign=True)} {d.verdict}", value_ci(m.precision, m.precision_ci95),
                         value_ci(m.recall, m.recall_ci95), value_ci(m.roc_auc, m.roc_auc_ci95)])
        ref = ev.always_yes
        rows.append(["always yes", MISSING, MISSING, MISSING, value_ci(ref.f1, ref.f1_ci95), "reference",
                     num(ref.precision), num(1.0), MISSING])
        if ev.baseline_f1:
            rows.append(["fine-tuned classifier", MISSING, MISSING, MISSING, num(ev.baseline_f1), MISSING, MISSING,
                         MISSING, MISSING])
        w.table(f"Every model and probe on the {ev.n_test} test articles ({pct(ev.positive_rate)} yes) at each probe's "
                "threshold chosen on validation (the one that maximises validation F1), best test F1 first; (best): "
                "chosen on validation log-loss. − always yes: F1 minus that of saying yes to every article, paired "
                f"(95% bootstrap CI), read against ±{m_:g} F1.",
                ["Model", "Probe", "Val log-loss", "Threshold", "F1 [95% CI]", "− always yes [95% CI]",
                 "Precision [95% CI]", "Recall [95% CI]", "ROC AUC [95% CI]"], rows, "llrrrrrrr", font_pt=7)

    def resplits_table(self):
        """The re-splits (evaluate.py --resplits, study/resplits.py), where they ran: each probe fitted again on K folds
        of all labelled articles, pooled, beside the spread of its per-fold differences."""
        ev = self.ev
        if ev.resplits is None:
            return
        r, rows = ev.resplits, []
        for v, p, m in findings.ranked(ev):
            x = m.resplits
            if x is None:
                continue
            d, s, c = x.vs_median_predictor, x.difference_spread, x.vs_chosen
            rows.append([v + (" (control)" if ev.models[v].control else ""), p, value_ci(x.test_mae, x.mae_ci95),
                         f"{value_ci(d.mae_difference, d.difference_ci95, sign=True)} {d.verdict}",
                         f"{num(s.mean)} ± {num(s.sd)} ({num(s.min)} to {num(s.max)})",
                         "chosen" if c is None else f"{value_ci(c.mae_difference, c.difference_ci95, sign=True)} {c.verdict}"])
        self.w.table(f"Re-splits ({r.why}): each probe fitted again on {r.k} folds of all {r.n_articles} labelled "
                     "articles (train + val + test pooled, one seeded permutation; validation and choices as in "
                     "phase 2), so every article is a test article once. The pooled paired differences (95% "
                     f"bootstrap CI, margin ±{self.margin():g}) carry page 1's verdicts against the constant and between the "
                     "probes; per split: "
                     "the fold's difference against the training median, mean ± SD (range) over the folds.",
                     ["Model", "Probe", "Pooled MAE [95% CI]", "− train median [95% CI]", "Per split (mean ± SD, range)",
                      "− chosen probe [95% CI]"], rows, "llrrrr", font_pt=7)

    def q_languages(self):
        """2.2: every model's probe chosen on validation per test language, against the constant and the best
        model; then, where probes were trained on some languages only, what the other languages lose."""
        w, ev = self.w, self.ev
        self.sub("languages", "Does every language work?")
        few, m_ = findings.min_articles(ev), self.margin()
        best = label(ev.best.model, ev.best.probe)

        def diff(d, too_few):
            if too_few:
                return "too few to judge"
            return MISSING if d is None else f"{value_ci(d.mae_difference, d.difference_ci95, sign=True)} {d.verdict}"
        by_lang = findings.language_rows(ev)
        if not by_lang:
            w.unavailable("Per-language results", "the evaluation holds none; rerun evaluate.py")
            return
        small = {r["language"]: r["n"] for r in by_lang if r["too_few"]}
        tail = (f" Too few to judge (fewer than {few} test articles), left out of both tables: "
                + ", ".join(f"{lang} ({n})" for lang, n in small.items()) + "." if small else "")
        tuned = any(r["vs_baseline"] is not None for r in by_lang)   # --baseline-predictions: paired per language
        rows = [[r["variant"] + (" (control)" if r["control"] else ""), r["probe"], r["language"], str(r["n"]),
                 value_ci(r["mae"], r["ci"]), diff(r["vs_reference"], False),
                 "reference" if (r["variant"], r["probe"]) == (ev.best.model, ev.best.probe)
                 else diff(r["vs_best"], False)] + ([diff(r["vs_baseline"], False)] if tuned else [])
                for r in by_lang if not r["too_few"]]
        w.table(f"Each model's probe chosen on validation, per test language (n: test articles). − train median and − "
                f"best model ({best})"
                + (", and − fine-tuned (its own test predictions, on the articles of that language it scored)"
                   if tuned else "")
                + f": this minus the reference on the same articles of that language, paired 95% bootstrap CI read "
                f"against ±{m_:g} MAE." + tail
                + (" (control): does not read every test language." if findings.controls(ev) else ""),
                ["Model", "Probe", "Language", "n", "Test MAE [95% CI]", "− train median [95% CI]",
                 "− best model [95% CI]"] + (["− fine-tuned [95% CI]"] if tuned else []), rows,
                "lllrrrr" + ("r" if tuned else ""), font_pt=7)
        transfer = [r for r in findings.transfer_rows(ev) if not r["too_few"]]
        if not transfer:
            self.not_run("Train on some languages, serve the others?",
                         f"run_all.py --dataset {ev.dataset} --train-languages en (probes trained on English "
                         "articles only, tested on every language)")
            return
        rows = [[r["variant"] + (" (control)" if r["control"] else ""), r["probe"], "+".join(r["trained_on"]),
                 r["language"] + (" (trained on)" if r["language"] in r["trained_on"] else ""), str(r["n"]),
                 num(r["mae_all"]), num(r["mae"]), diff(r["vs_all"], False), diff(r["vs_reference"], False)]
                for r in transfer]
        served = [r for r in transfer if r["language"] not in r["trained_on"] and r["variant"] == ev.best.model]
        if served:
            w.para(("Train on " + "+".join(served[0]["trained_on"]) + ", serve the others? ", "b"), "; ".join(
                f"{r['variant']} + {r['probe']} on {r['language']}: MAE {num(r['mae'])} trained on "
                f"{'+'.join(r['trained_on'])} only against {num(r['mae_all'])} trained on all languages, "
                f"{value_ci(r['vs_all'].mae_difference, r['vs_all'].difference_ci95, sign=True)}: {r['vs_all'].verdict}"
                for r in served) + ".")
        w.table("Cross-lingual transfer: each probe also trained on the training and validation articles of some "
                "languages only (train_probes.py --train-languages), tested per language beside the same probe "
                "trained on every language (each model's probe chosen on validation). − all: trained on those "
                "languages minus trained on all, paired on the same test articles; − train median: against the constant "
                f"reference. A language the probe was not trained on shows what serving it costs. Read against ±{m_:g} "
                "MAE.",
                ["Model", "Probe", "Trained on", "Language", "n", "MAE trained on all", "MAE trained on subset",
                 "− all [95% CI]", "− train median [95% CI]"], rows, "lllrrrrrr", font_pt=7)

    def q_bge(self):
        w, ev = self.w, self.ev
        self.sub("bge", "Does bge-m3 close the gap?")
        bge = [(v, p, m) for v, p, m in ev.chosen_entries() if decision.is_bge(v, ev.models[v])]
        if not bge:
            w.unavailable("bge-m3 answer", "bge-m3 was not evaluated on this dataset (models evaluated: "
                          + ", ".join(ev.models) + "). Run phases 1-3 with --models bge-m3 to answer it.")
            return
        for v, p, m in bge:
            text = f"{label(v, p)} (probe chosen on validation): test MAE {value_ci(m.overall_mae, m.mae_ci95)}"
            b = findings.vs_baseline(ev, m)
            if b:
                text += (f"; against the fine-tuned model ({num(ev.baseline_mae)}) {b['verdict']} "
                         f"({'paired' if b['paired'] else 'unpaired'}, difference "
                         f"{value_ci(b['difference'], b['ci95'], sign=True)}); its CI spans: "
                         f"{findings.bands_of(ev, m.mae_ci95)}.")
            else:
                text += "; no fine-tuned baseline is known, so no band."
            w.para(text)
            others = [(o, q, x) for o, q, x in ev.chosen_entries() if not decision.is_bge(o, ev.models[o])]
            if others:
                o, q, x = min(others, key=lambda c: c[2].val_mae)
                w.para(f"Best other model on validation: {label(o, q)}, test MAE {value_ci(x.overall_mae, x.mae_ci95)} "
                       "(the table above; the two are not compared on the same articles here).")

    def q_truncation(self):
        w, ev = self.w, self.ev
        self.sub("truncation", "How much does truncation cost?")
        rows = findings.truncation_rows(ev)
        few = findings.min_articles(ev)
        w.table("Test MAE of the articles cut at the model's max tokens and of the whole ones (probe chosen on "
                f"validation); Δ = cut − whole. Observational: long articles differ in other ways too. A group of "
                f"fewer than {few} articles is too few to judge.",
                ["Model", "Max tokens", "Cut", "Probe", "n cut", "MAE cut", "n whole", "MAE whole", "Δ MAE"],
                [[r["variant"], str(r["max_tokens"]), pct(r["truncated_fraction"]), r["probe"], str(r["n_cut"]),
                  num(r["mae_cut"]), str(r["n_whole"]), num(r["mae_whole"]),
                  "none cut" if not r["n_cut"] else "too few to judge" if r["too_few"] else signed(r["difference"])]
                 for r in rows],
                "lrrlrrrrr", font_pt=8)
        for model, runs in findings.sweeps(ev).items():   # one model at several max tokens: the direct test
            w.table(f"Truncation sweep of {model}: the same model at several max tokens (probe chosen on validation); "
                    f"Δ = this − the longest, same probe, paired on the same articles, read against ±{self.margin():g}.",
                    ["Max tokens", "Probe", "Test MAE [95% CI]", "Δ MAE vs longest [95% CI]", "Reading"],
                    [[str(r["max_tokens"]), r["probe"], value_ci(r["mae"], r["ci"]),
                      "longest" if r["vs_longest"] is None else
                      value_ci(r["vs_longest"].mae_difference, r["vs_longest"].difference_ci95, sign=True),
                      MISSING if r["vs_longest"] is None else r["vs_longest"].verdict] for r in runs], "rlrrl")
        self.chunking()

    def chunking(self):
        """Chunked against truncated: does embedding the whole article help?"""
        w, ev = self.w, self.ev
        rows = findings.chunking_rows(ev)
        done = {r["variant"] for r in rows}
        for v, e in ev.models.items():
            if e.chunked and v not in done:
                twin = f"{e.model}-t{e.max_tokens}" if e.model not in self.cfg.embedding_models else \
                    self.cfg.variant(e.model, e.max_tokens).name
                self.not_run(f"Chunked against truncated for {v}", f"its truncated twin {twin} was not evaluated; "
                             f"embed, train and evaluate it too (--models {twin} {v})")
        if not rows:
            if not any(e.chunked for e in ev.models.values()) and not findings.sweeps(ev):
                self.not_run("A clean truncation test", "one model at several max tokens (embed_articles.py "
                             "--max-tokens 128 512), or chunked against truncated (--chunks); then train_probes.py "
                             "and evaluate.py with those variants")
            return
        w.table("Chunked against truncated, the same model and probe: each article cut into windows of N tokens, "
                "their embeddings averaged, against the article cut at N tokens. Δ = chunked − truncated test MAE, "
                f"paired on the same articles (95% bootstrap CI, margin ±{self.margin():g}), over all test articles "
                "and over those truncation cuts.",
                ["Chunked", "Truncated", "Probe", "Windows / article", "Δ MAE all [95% CI]", "Reading",
                 "n cut", "Δ MAE cut [95% CI]", "Reading cut"],
                [[r["variant"], r["truncated"], r["probe"], num(r["chunks"].windows_per_article if r["chunks"] else None, 2),
                  value_ci(r["all"].mae_difference, r["all"].difference_ci95, sign=True), r["all"].verdict,
                  str(r["cut"].n_articles if r["cut"] else 0),
                  value_ci(r["cut"].mae_difference, r["cut"].difference_ci95, sign=True) if r["cut"] else MISSING,
                  r["cut"].verdict if r["cut"] else MISSING] for r in rows], "lllrrlrrl", font_pt=7)

    def q_probes(self):
        w, ev = self.w, self.ev
        self.sub("probes", "Which probe works best?")
        rows = findings.probe_comparisons(ev)
        what = "MAE" if self.scores else "F1"
        w.table(f"Each probe against the probe chosen on validation for the same model: the paired difference of "
                f"test {what} (this − chosen, 95% bootstrap CI), read against ±{self.margin():g} {what}.",
                ["Model", "Probe", self.task.validation_label[0].upper() + self.task.validation_label[1:], "− chosen [95% CI]", "Reading"],
                [[r["variant"], r["probe"], num(r["validation"], 3 if self.scores else 4),
                  MISSING if r["difference"] is None else value_ci(r["difference"], r["ci"], sign=True), r["verdict"]]
                 for r in rows], "llrrl", font_pt=8)
        counts = findings.probe_verdict_counts(ev)
        if counts:
            w.para("Against the probe chosen on validation, the other probes are: "
                   + ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items())) + " (paired rule).")
        for group, c in (findings.layer_curves(ev) if self.scores else {}).items():   # a layer sweep: which layer?
            w.table(f"Layer curve of {group}: each hidden layer pooled as the model pools (probe chosen on validation "
                    "per layer); the layer is chosen on validation, so test MAE is shown for the chosen and the last "
                    f"only. Δ = chosen − last, same probe, paired on the same articles, read against ±{self.margin():g}.",
                    ["Layer", "Probe", "Validation MAE", "Test MAE [95% CI]", "Δ MAE vs last [95% CI]", "Reading"],
                    [[str(r["layer"]) + (" (chosen)" if r is c["chosen"] else "") + (" (last)" if r is c["last"] else ""),
                      r["probe"], num(r["val_mae"], 3),
                      value_ci(r["mae"], r["ci"]) if r is c["chosen"] or r is c["last"] else MISSING,
                      value_ci(r["vs_last"].mae_difference, r["vs_last"].difference_ci95, sign=True)
                      if r is c["chosen"] and r["vs_last"] is not None else MISSING,
                      r["vs_last"].verdict if r is c["chosen"] and r["vs_last"] is not None else MISSING]
                     for r in c["rows"]], "llrrrl", font_pt=8)
        teacher = findings.teacher_rows(ev) if self.scores else []
        if teacher:   # train_probes.py --teacher-predictions: does training on the teacher's scores help?
            w.table("Teacher scores: each probe trained on the labelled training articles plus unlabelled articles "
                    "scored by the fine-tuned model (their weight chosen on validation labels), against the same "
                    f"probe trained on labels only: Δ = teacher − label-only test MAE, paired on the same articles, "
                    f"read against ±{self.margin():g}.",
                    ["Model", "Probe", "Teacher-scored (weight)", "Test MAE [95% CI]", "Δ MAE vs label-only [95% CI]",
                     "Reading"],
                    [[r["variant"], r["probe"], f"{r['teacher'].n_teacher} ({r['teacher'].weight:g})",
                      value_ci(r["mae"], r["ci"]), value_ci(r["vs"].mae_difference, r["vs"].difference_ci95, sign=True),
                      r["vs"].verdict] for r in teacher], "llrrrl", font_pt=8)

    def q_speed(self):
        w, ev, bench = self.w, self.ev, self.inp.benchmarks
        self.sub("speed", "Quality against speed")
        if bench is None:
            w.unavailable("Speed comparison", "no benchmark results were found "
                          f"({self.rel(paths.benchmark(self.cfg, self.inp.dataset))}); "
                          "run benchmark_speed.py to measure speed, load time and memory.")
            return
        ft = bench.fine_tuned_ms_per_article
        where = bench.device + (f" ({bench.device_name})" if bench.device_name else "")
        rows = []
        for v, p, _ in ev.chosen_entries():
            b, end = bench.speed(v), bench.stage1(v, p)
            if b is None:
                rows.append([v, p, MISSING, MISSING, MISSING, MISSING, "not benchmarked"])
                continue
            rows.append([v, p, num(b.articles_per_s, 1), num(b.peak_memory_mb, 0),
                         num(end.ms_per_article if end else None, 2),
                         decision.times(*end.speedup_vs_fine_tuned) if end else MISSING,
                         f"{b.dtype}, batch {b.batch_size}" + (", random weights" if b.random_weights else "")])
        w.table(f"Embedding throughput, memory and the cost of Stage 1 (embedding + probe) per article, measured on "
                f"{where}"
                + (f" against the fine-tuned model's {num(ft[0], 0)}–{num(ft[1], 0)} ms per article (config)." if ft else ".")
                + (" CPU against a GPU figure: rerun benchmark_speed.py on a GPU for a fair comparison."
                   if bench.device == "cpu" else ""),
                ["Model", "Probe", "Articles/s", "Peak MB", "Stage 1 ms/article", "Against the fine-tuned model",
                 "Setting"], rows, "llrrrll", font_pt=8)
        points = findings.speed_points(ev, bench) if self.scores else []   # quality in MAE: scores only
        if len(points) >= MIN_CHART_POINTS:   # fewer points read better in the table above
            from study.plots import quality_vs_speed

            chart = quality_vs_speed(points, ev.baseline_mae, paths.report_figure(self.out, "quality_vs_speed"))
            w.figure(chart, width_cm=12, caption="Test MAE against embedding throughput (articles/s), one point per model with the probe "
                            "chosen on validation" + ("; the line is the fine-tuned baseline." if ev.baseline_mae else "."))
        if len(points) > 1:
            w.para("Not beaten on both speed and MAE by another model: "
                   + ", ".join(f"{p['label']} ({num(p['articles_per_s'], 1)} articles/s, MAE {num(p['mae'])})"
                               for p in findings.speed_front(points)) + ".")
        random = [v for v, b in bench.models.items() if b.random_weights]
        if random:
            w.para(("Speed only: ", "b"), ", ".join(random) + " were benchmarked with random weights of the same "
                   "architecture (the real weights were not available there). Their speed figures hold; their quality "
                   "figures come from the evaluation of the real model, not from the benchmark.")

    def q_screening(self):
        w, ev = self.w, self.ev
        self.sub("screening", "Can a probe screen articles for the fine-tuned model?")
        setup, rows = ev.screening_setup, findings.screening_rows(ev, self.inp.benchmarks)
        if not rows:
            w.unavailable("Screening answer", "no recall target was screened (config screening_recall); rerun "
                          "evaluate.py.")
            return
        tiers = setup.tiers
        w.para("Two-stage scorer: an article whose predicted score (the weighted mean of its dimensions) is below the "
               "threshold keeps the probe's scores; the others go on to the fine-tuned model. The threshold is chosen "
               f"on validation so that, with {pct(setup.confidence, 0)} confidence, at least the target share of "
               f"medium+ articles (true score >= {num(tiers['medium'], 1)}) reaches the fine-tuned model (one-sided "
               "Clopper-Pearson); the plug-in threshold (just meeting the target on validation, no guarantee) is the "
               "reference. Nothing is chosen on test.")
        best = [r for r in rows if (r["variant"], r["probe"]) == (ev.best.model, ev.best.probe)]
        others = len(rows) - len(best)
        self.screening_table(best, f"Screening by {label(ev.best.model, ev.best.probe)}, the model page 1 quotes"
                             + (" (the other models' in annex C)" if others else ""))
        self.screening_languages()
        against = [r for r in findings.screening_rows(ev, teacher=True)
                   if (r["variant"], r["probe"]) == (ev.best.model, ev.best.probe)]
        if against:   # --teacher-predictions scored validation and test articles: its own decisions as the truth
            m = ev.models[ev.best.model].probes[ev.best.probe].screening_vs_teacher
            self.screening_table(against, f"The same against the fine-tuned model's own medium+ decisions (its scores of "
                                          f"{m.n_val} validation and {m.n_test} test articles as the truth, the MAE "
                                          "too)")
        if not self.place("cmp", ["screening_curve"], width_cm=12):
            w.unavailable("Screening curve", "no comparison record names one "
                          f"({self.rel(paths.comparison_record(self.cfg, self.inp.dataset))}); run compare_results.py.")

    def screening_languages(self):
        """Each guaranteed threshold of the best model + probe on each test language: a threshold that keeps the
        target of medium+ articles overall may keep far fewer of one language's."""
        ev, few = self.ev, findings.min_articles(self.ev)
        m = ev.models[ev.best.model].probes[ev.best.probe]
        body, small = [], {}
        for t in m.screening.thresholds:
            for lang, r in (t.guaranteed.per_language or {}).items():
                if r.n < few:
                    small[lang] = r.n
                    continue
                body.append([pct(t.target_recall, 0), lang, str(r.n), pct(r.skip_share), str(r.n_relevant),
                             pct_value_ci(r.recall, r.recall_exact_ci95) if r.n_relevant else MISSING,
                             "below target" if r.recall_below_target else
                             "no medium+ articles" if r.recall_below_target is None else "its CI reaches the target"])
        if len({row[1] for row in body}) < 2:   # one language judged: the table above is as good as its own
            return
        tail = (f" Too few to judge (fewer than {few} test articles), left out: "
                + ", ".join(f"{lang} ({n})" for lang, n in small.items()) + "." if small else "")
        self.w.table(f"The same guaranteed thresholds per test language ({label(ev.best.model, ev.best.probe)}): the "
                     "share of the language's test articles that skip the fine-tuned model, and the recall of its "
                     "medium+ articles (exact 95% CI). Below target: the whole CI lies below the target, so the "
                     "overall guarantee does not carry to that language." + tail,
                     ["Target", "Language", "n", "Skip", "Medium+", "Recall [95% CI]", "Reading"], body, "rlrrrrl",
                     font_pt=7)

    def screening_table(self, rows: list[dict], head: str):
        body = []
        for r in rows:
            t, plug = r["test"], r["plug_in_test"]
            ref = pct(plug.skip_share) if plug else MISSING
            if not r["certified"]:
                why = (f"not certifiable (needs {r['articles_needed']})" if r["articles_needed"]
                       else (r["note"] or "not certifiable"))
                body.append([label(r["variant"], r["probe"]), pct(r["target"], 0), str(r["n_relevant_val"]), why,
                             MISSING, MISSING, MISSING, ref])
                continue
            flag = " below target" if t.recall_below_target else " (one split)" if t.recall is not None and t.recall < r["target"] else ""
            seeds = r["seed_spread"]
            spread = (f"; seeds alone {pct(seeds.mean)} ± {pct(seeds.sd)}" if seeds is not None and seeds.sd is not None
                      else "")
            body.append([label(r["variant"], r["probe"]), pct(r["target"], 0), str(r["n_relevant_val"]),
                         num(r["threshold"], 2), pct_value_ci(t.skip_share, t.skip_share_exact_ci95) + spread,
                         pct_value_ci(t.recall, t.recall_exact_ci95) + flag,
                         "too few to judge" if t.skipped_too_few else value_ci(t.skipped_mae, t.skipped_mae_ci95), ref])
        self.w.table(f"{head}: the guaranteed threshold chosen on validation (and the medium+ validation articles it "
                     "rests on); on test the share that skips the fine-tuned model and the recall of medium+ articles "
                     "(exact 95% CIs; the skip share's CI holds the threshold fixed: for a seed ensemble, 'seeds "
                     "alone' gives the mean ± SD of each seed's probe with its own guaranteed threshold), the MAE of "
                     "the skipped articles, and the plug-in rule's test skip share. (one split): a test recall below the "
                     f"target whose CI reaches it: {screening.ONE_SPLIT}.",
                     ["Model + probe", "Target", "Medium+ val", "Threshold", "Test skip [95% CI]", "Test recall [95% CI]",
                      "Skipped MAE [95% CI]", "Plug-in skip"], body, "lrrrrrrr", font_pt=7)

    def q_pairs(self):
        w, ev = self.w, self.ev
        rows = findings.concatenation_rows(ev)
        if not rows:
            self.not_run("Do two models together beat either?", "python embed_articles.py --models <a>+<b> (no "
                         "re-embedding when a and b are cached), then train_probes.py and evaluate.py with --models "
                         "<a> <b> <a>+<b>")
            return
        self.sub("pairs", "Do two models together beat either?")
        w.table("Two models' embeddings side by side (probe chosen on validation), against each part with the same "
                f"probe: Δ = pair − part test MAE, paired on the same articles (95% bootstrap CI, margin "
                f"±{self.margin():g}). The pair costs both models' embedding time.",
                ["Pair", "Probe", "Test MAE [95% CI]", "Part", "Δ MAE vs part [95% CI]", "Reading", "Articles/s"],
                [[r["variant"], r["probe"], value_ci(r["mae"], r["ci"]), q,
                  value_ci(d.mae_difference, d.difference_ci95, sign=True), d.verdict,
                  num(findings.throughput(ev, self.inp.benchmarks, r["variant"]), 1)]
                 for r in rows for q, d in r["against"]], "llrlrlr", font_pt=8)
        for r in rows:
            if not r["against"]:
                w.bullet(f"{r['variant']}: none of its parts was evaluated, so there is nothing to set it against "
                         f"(evaluate them too: --models {' '.join(r['parts'])} {r['variant']}).")
            elif r["beats_all"]:
                w.bullet(f"{r['variant']} is better than each of its parts (paired rule).")

    def q_learning_curve(self):
        w, ev = self.w, self.ev
        readings = findings.learning_curve_readings(ev)
        if not readings:   # one line, no section
            self.not_run("Would more labels help?", "python train_probes.py ... --train-fractions 0.1 0.25 0.5 1.0, "
                         "then evaluate.py (and compare_results.py for the chart)")
            return
        self.sub("learning_curve", "Would more labels help?")
        w.para("Each probe was retrained on nested subsets of the training split (one seeded permutation; each subset "
               "takes its first ceil(fraction × n) articles); the validation and test articles stay the same. "
               f"Rule: {findings.CURVE_RULE}.")
        if "learning_curve" in self.inp.comparison_figures:
            self.place("cmp", ["learning_curve"], width_cm=12)
        for r in readings:
            w.bullet(findings.curve_sentence(r))

    def limitations(self):
        w, ev = self.w, self.ev
        w.heading("3. Limitations")
        n = ev.best.verdicts.candidates
        w.bullet(f"Test size: {ev.n_test} articles. Comparisons are read on paired differences over the same articles "
                 f"against the equivalence margin ±{self.margin():g}; {n} model + probe pairs were compared and the "
                 "best on validation is reported, each comparison a 95% test not adjusted for the number made.")
        if self.scores and ev.baseline_mae and ev.baseline is None:
            w.bullet(f"Baseline: the fine-tuned MAE {num(ev.baseline_mae)} comes from {ev.baseline_source}; it was not "
                     "recomputed on these test articles, so the comparison is unpaired (give evaluate.py "
                     "--baseline-predictions for a paired one).")
        elif self.scores and not ev.baseline_mae:
            w.bullet("Baseline: no fine-tuned MAE is known for this dataset, so no band and no replacement verdict.")
        elif not self.scores and ev.baseline_f1:
            w.bullet(f"Baseline: the fine-tuned F1 {num(ev.baseline_f1)} comes from {ev.baseline_source}; it was not "
                     "measured on these test articles (unpaired).")
        small = [f"{lang} ({k})" for lang, k in ev.language_counts.items() if findings.too_few(ev, k)]
        if small:
            w.bullet(f"Too few to judge per language (fewer than {findings.min_articles(ev)} test articles): "
                     f"{', '.join(small)}; annex B shows their figures for completeness only.")
        if self.scores:
            w.bullet("Truncation: comparing cut with whole articles is observational; only a max-tokens sweep of one "
                     "model, or its chunked variant against its truncated one, isolates the effect.")
        else:
            w.bullet("The threshold is chosen on validation to maximise F1; another operating point (a target "
                     "precision or recall) gives other precision/recall figures from the same probabilities.")
        for v, why in findings.controls(ev).items():
            spec = self.run_cfg.embedding_models.get(ev.models[v].model)
            w.bullet(f"{v} is a control: {why}" + (f" ({spec.note})" if spec and spec.note else "")
                     + ". It is never the best model; its results say nothing about multilingual quality.")
        blind = findings.undeclared(ev)
        if blind:
            w.bullet(f"Languages not declared for {', '.join(blind)} (config.yaml `languages`): nothing says they read "
                     "every test language; the report treats them as candidates.")
        tr = self.inp.training
        fits = [f"{v}: {text}" for v in ev.models for k, rec in (tr.models.get(v, {}) if tr else {}).items()
                if k in ev.models[v].probes for text in rec.warnings]
        if fits:
            w.bullet("Degenerate fits (train_probes.py's warnings): " + "; ".join(fits) + ".")
        else:
            edge = [v for v, e in ev.models.items() if any(m.at_grid_edge for m in e.probes.values())]
            if edge:
                w.bullet("The regularisation chosen for " + ", ".join(edge) + " sits at the edge of its grid; a wider "
                         "grid in config.yaml probe_methods might do better.")
        bench = self.inp.benchmarks
        if bench is not None:
            w.bullet(f"Speed was measured once on {bench.device_name or bench.device}; other hardware, batch sizes or "
                     "dtypes give other figures.")
        w.bullet(self.seed_line())

    def seed_line(self) -> str:
        seeds, _ = findings.seed_spread(self.ev)   # what the probes record, as page 1 reads it
        if seeds > 1:
            return (f"The MLP and LightGBM probes are ensembles of {seeds} seeds (ridge and logistic are deterministic), "
                    "so seed noise is averaged in their predictions; each seed's own spread is in annex A. One "
                    "validation split chooses every hyper-parameter.")
        return (f"One seed ({self.ev.random_seed}) and one validation split choose every hyper-parameter; the MLP's and "
                "LightGBM's training noise is in no interval here (config probe_seeds fits ensembles).")

    # annex ---------------------------------------------------------------------------------
    def annex(self):
        self.w.page_break()
        self.w.heading("Annex")
        for section in (self.method, self.details, self.article_scores, self.error_analysis, self.configuration,
                        self.provenance, self.fingerprints, self.input_files):
            section()

    def n_split(self):
        tr = self.inp.training
        rec = tr.probe(self.ev.best.model, self.ev.best.probe) if tr else None
        return (rec.n_train, rec.n_val) if rec else (None, None)

    def method(self):
        w, ev = self.w, self.ev
        w.heading("A. Method", 2)
        n_train, n_val = self.n_split()
        split = (f"{n_train} training, {n_val} validation and {ev.n_test} test articles" if n_train is not None
                 else f"{ev.n_test} test articles (no training summary)")
        dims = ev.dimension_names
        if self.scores:
            low, high = self.run_cfg.score_range
            what = f"each scored {low:g}–{high:g} on {len(dims)} dimensions: {', '.join(dims)}"
        else:
            what = f"each with one 0/1 label '{dims[0]}'"
        w.para(f"Dataset {self.inp.dataset}: {split}, {what}. Validation articles choose every hyper-parameter, the "
               f"stopping point of each probe{'' if self.scores else ', its threshold'} and the best model "
               f"({self.task.validation_label}); test articles are only scored. Random seed {ev.random_seed} for every "
               f"random step; 95% confidence intervals from {ev.bootstrap_samples} bootstrap resamples of the test "
               "articles" + ("; MAE pools every (article, dimension) error, Spearman is the mean of the per-dimension "
                             "correlations." if self.scores else "; F1, precision and recall are of the yes class."))
        checks = self.inp.data_checks
        if checks is None:
            w.para("Articles shared between splits: not checked (embed_articles.py records it).")
        else:
            leaks = checks.split_leaks
            w.para(f"Articles shared between splits (phase 1): {leaks.same_id} by id and {leaks.same_text} "
                   "by identical title + content under different ids"
                   + ("; shared articles make the test scores look better than they are."
                      if leaks.same_id or leaks.same_text else "."))
        rows = []
        for v, e in ev.models.items():
            spec = self.run_cfg.embedding_models.get(e.model)
            tokens = f"windows of {e.chunks.window}" if e.chunks else str(e.max_tokens)
            note = spec.note if spec and spec.note else ("side by side: " + " + ".join(e.parts) if e.parts else MISSING)
            rows.append([v, e.model_name, str(e.embedding_dim), tokens,
                         repr(spec.prefix) if spec and spec.prefix else "none", note])
        w.table("Embedding models (config.yaml embedding_models; dimension and max tokens as evaluated). Each article "
                "is embedded as title, blank line, content, with the model's prefix, cut at its max tokens; a chunked "
                "variant (-c<N>) averages the embeddings of its windows; a+b sets two models side by side.",
                ["Model", "Source", "Dim", "Max tokens", "Prefix", "Note"], rows, "llrrll", font_pt=8)
        rows = []
        for probe in dict.fromkeys(p for e in ev.models.values() for p in e.probes):
            chose = "; ".join(f"{v}: {describe_selected(e.probes[probe].selected)}"
                              for v, e in ev.models.items() if probe in e.probes)
            rows.append([probe, self.probe_settings(probe), chose])
        w.table("Probe settings (training summary hyperparameters, else config.yaml) and what validation chose.",
                ["Probe", "Settings", "Chosen on validation"], rows, "lll", font_pt=8)
        self.seed_spread()

    def seed_spread(self):
        """Each stochastic probe's spread over its seeds, where phase 2 fitted several (config probe_seeds)."""
        rows = []
        for v, p, m in self.ev.entries():
            s = m.seeds
            if s is not None and s.n > 1:
                t = s.test_spread
                headline = m.overall_mae if self.scores else m.f1
                rows.append([v, p, str(s.n), num(t.mean), num(t.sd), f"{num(t.min)}–{num(t.max)}", num(headline)])
        if rows:
            what = "MAE" if self.scores else "F1"
            self.w.table(f"Seed spread: the test {what} of each seed's probe alone (mean, sample SD, range) beside the "
                         "saved probe, which is the ensemble of the seeds (the mean of their predictions).",
                         ["Model", "Probe", "Seeds", f"Mean test {what}", "SD", "Range", "Ensemble"], rows,
                         "llrrrrr", font_pt=8)

    def probe_settings(self, probe: str) -> str:
        hp = None
        for entry in (self.inp.training.models.values() if self.inp.training else []):
            if probe in entry and entry[probe].hyperparameters:
                hp = dict(entry[probe].hyperparameters)
                break
        if hp is None:
            section = getattr(self.run_cfg.probe_methods, probe, None)
            hp = section.model_dump() if section is not None else {}
        if not self.scores and probe == "mlp":   # the yes/no MLP is trained on binary cross-entropy, whatever loss says
            hp.pop("loss", None)
            hp = {"loss": "binary cross-entropy", **hp}
        return _settings_text(hp) or MISSING

    def details(self):
        """B: per dimension and per language (the figures behind 2.1, by group)."""
        w, ev = self.w, self.ev
        w.heading("B. Per dimension and per language", 2)
        if self.scores:
            dims = ev.dimension_names
            sides = [(label(v, p), m) for v, p, m in findings.ranked(ev)] + [
                (name, src) for name, src in (("train-mean predictor", ev.mean_predictor), ("fine-tuned baseline",
                                                                                        ev.baseline)) if src is not None]
            cells = {name: [num(src.overall_rmse)] + [num(src.per_dimension[d].mae) if d in src.per_dimension else
                                                      MISSING for d in dims] for name, src in sides}
            heads = ["RMSE"] + list(dims)
            if len(heads) <= len(sides):   # few dimensions: a row per model + probe
                w.table("Test RMSE and MAE per dimension.", ["Model + probe"] + heads,
                        [[name] + c for name, c in cells.items()], "l" + "r" * len(heads), font_pt=8)
            else:   # many dimensions: a row per dimension, so that their names stay whole
                w.table("Test MAE per dimension (and overall RMSE), a column per model + probe.",
                        ["Dimension"] + list(cells), [[h] + [c[i] for c in cells.values()] for i, h in enumerate(heads)],
                        "l" + "r" * len(cells), font_pt=8 if len(cells) <= 6 else 7)
        picks = ev.chosen_entries()
        few = findings.min_articles(ev)
        rows = []
        for lang, n in ([] if self.scores else ev.language_counts.items()):   # scores: per language in 2.2
            row = [lang, str(n)]
            for _, _, m in picks:
                g = m.per_language.get(lang)
                if g is None:
                    row.append(MISSING)
                elif self.scores:
                    row.append(num(g.mae) + (" (too few)" if findings.too_few(ev, g.n) else ""))
                else:
                    row.append(num(g.f1) + (" (too few)" if findings.too_few(ev, g.n, g.positives) else ""))
            rows.append(row)
        if rows:
            what = "MAE" if self.scores else "F1"
            w.table(f"Test {what} per language, for each model's probe chosen on validation; (too few): fewer than "
                    f"{few} test articles" + ("" if self.scores else " or fewer yes than config min_group_positives")
                    + ", shown for completeness, not to be read.",
                    ["Language", "n"] + [label(v, p) for v, p, _ in picks], rows, "lr" + "r" * len(picks), font_pt=8)
        if not self.scores:
            rows = []
            for v, p, m in picks:
                t = m.truncation
                rows.append([v, p, str(t.max_tokens), f"{t.truncated.n} ({t.truncated.positives} yes)",
                             num(t.truncated.f1), f"{t.not_truncated.n} ({t.not_truncated.positives} yes)",
                             num(t.not_truncated.f1)])
            w.table("F1 of the articles cut at the model's max tokens and of the whole ones (probe chosen on "
                    "validation); observational.", ["Model", "Probe", "Max tokens", "Cut", "F1 cut", "Whole", "F1 whole"],
                    rows, "llrrrrr", font_pt=8)

    def article_scores(self):
        """C: the article score (weighted mean of the dimensions), tiers and training cost."""
        if not self.scores:
            return
        w, ev = self.w, self.ev
        w.heading("C. Article scores, tiers, screening and training cost", 2)
        rows = [[label(v, p), value_ci(a.weighted_mae, a.weighted_mae_ci95),
                 pct_value_ci(a.tier_accuracy, a.tier_accuracy_exact_ci95),
                 pct_value_ci(a.within_05, a.within_05_exact_ci95), pct_value_ci(a.within_10, a.within_10_exact_ci95)]
                for v, p, m in ev.chosen_entries() for a in [m.article_scores]]
        mean = ev.mean_predictor
        rows.append([f"majority tier ({mean.majority_tier.tier}) / train mean", value_ci(
            mean.article_scores.weighted_mae, mean.article_scores.weighted_mae_ci95),
            pct_value_ci(mean.majority_tier.accuracy, mean.majority_tier.accuracy_exact_ci95),
            pct_value_ci(mean.article_scores.within_05, mean.article_scores.within_05_exact_ci95),
            pct_value_ci(mean.article_scores.within_10, mean.article_scores.within_10_exact_ci95)])
        weights = ", ".join(f"{d} {x:.3g}" for d, x in ev.screening_setup.weights.items())
        w.table(f"Article scores on test (weights {weights}): MAE of the weighted article score, tier accuracy (low / "
                "medium / high) and the share within 0.5 and 1.0 of the truth (exact 95% CIs for the shares), beside "
                "the trivial references: the majority tier for every article and the training mean. The article-score "
                "MAE is another measure than the per-dimension MAE of 2.1 and of the fine-tuned baseline (errors of "
                "the dimensions partly cancel in their weighted mean): do not set it against the baseline.",
                ["Model + probe", "Article-score MAE [95% CI]", "Tier accuracy [95% CI]", "Within 0.5", "Within 1.0"],
                rows, "lrrrr", font_pt=8)
        others = [r for r in findings.screening_rows(ev, self.inp.benchmarks)
                  if (r["variant"], r["probe"]) != (ev.best.model, ev.best.probe)]
        if others:
            self.screening_table(others, "Screening by the other models' chosen probes")
        v, p, m = ev.best_entry()
        confusion = m.article_scores.tier_confusion
        if confusion:
            w.table(f"Tier confusion on test of {label(v, p)} (rows: true tier, columns: predicted tier).",
                    ["True \\ predicted", "low", "medium", "high"],
                    [[name] + [str(k) for k in row] for name, row in zip(("low", "medium", "high"), confusion)], "lrrr")
        hours = ev.screening_setup.fine_tuned_training_hours
        w.table(f"Training cost: embedding train + val (recorded in the caches) plus the probe's fit, against "
                f"{num(hours[0], 0)}–{num(hours[1], 0)} h for the fine-tuned model (config).",
                ["Model + probe", "Embedding s", "Probe fit s", "Total s", "Device", "Share of fine-tuned training"],
                [[label(r["variant"], r["probe"]), num(r["embedding_seconds"], 1), num(r["probe_seconds"], 1),
                  num(r["total_seconds"], 1), r["device"] or MISSING,
                  MISSING if not r["share_of_fine_tuned"] else
                  f"{pct(r['share_of_fine_tuned'][1], 2)}–{pct(r['share_of_fine_tuned'][0], 2)}"]
                 for r in findings.training_cost(ev)], "lrrrlr", font_pt=8)
        base = findings.frozen_base(ev)
        if base:
            w.para(f"The fine-tuned model's own base, frozen ({label(base['variant'], base['probe'])}): test MAE "
                   f"{value_ci(base['mae'], base['ci'])}: what the base model knows before task-specific training.")

    def error_analysis(self):
        w, errs = self.w, self.inp.errors
        w.heading("D. Error analysis", 2)
        if errs is None or errs.task != self.ev.task:
            w.unavailable("Error analysis", "no error summary was found "
                          f"({self.rel(paths.error_summary(self.cfg, self.inp.dataset))}); "
                          "run analyze_error_distribution.py.")
            return
        models = errs.models
        target = self.ev.best.model if self.ev.best.model in models else next(iter(models), None)
        if self.scores:
            w.table(f"Error distribution per model ({errs.probe} probe); bias is the mean of prediction − truth.",
                    ["Model", "n", "MAE", "Bias", "|error| p50", "|error| p90", "|error| p99"],
                    [[v, str(m.n), num(m.overall_mae), signed(m.bias), num(m.abs_error_quantiles.p50),
                      num(m.abs_error_quantiles.p90), num(m.abs_error_quantiles.p99)]
                     for v, m in models.items()], "lrrrrrr")
            bins = list(dict.fromkeys((b.low, b.high) for m in models.values() for b in m.score_bins))
            if bins:
                rows = []
                for low, high in bins:
                    row = [f"{num(low, 1)}–{num(high, 1)}"]
                    for m in models.values():
                        hit = next((b for b in m.score_bins if (b.low, b.high) == (low, high)), None)
                        row += [str(hit.n) if hit else MISSING, signed(hit.bias if hit else None)]
                    rows.append(row)
                w.table("Bias per true-score bin: a positive bias at low scores and a negative one at high scores means "
                        "the probe pulls extreme scores toward the mean. n counts (article, dimension) pairs whose true "
                        "score falls in the bin, not articles.",
                        ["True score"] + [h for v in models for h in (f"{v} pairs", f"{v} bias")], rows,
                        "l" + "rr" * len(models), font_pt=8 if len(models) <= 3 else 7)
            worst = models[target].worst if target else []
            if worst:
                rows = [[a.id, a.language, short(a.title), num(a.mae)] for a in worst[:WORST_SHOWN]]
                w.table(f"The {len(rows)} worst-scored test articles of {target} ({errs.probe} probe).",
                        ["Id", "Language", "Title", "MAE"], rows, "lllr", font_pt=8)
        else:
            w.table(f"Confusion counts at each model's validation threshold ({errs.probe} probe).",
                    ["Model", "Threshold", "TP", "FP", "FN", "TN"],
                    [[v, num(s.threshold), str(s.confusion.tp), str(s.confusion.fp), str(s.confusion.fn),
                      str(s.confusion.tn)] for v, s in models.items()], "lrrrrr")
            s = models[target] if target else None
            for listed, what in ((s.false_positives if s else [], "false positives (highest P(yes) among the true no)"),
                                 (s.false_negatives if s else [], "false negatives (lowest P(yes) among the true yes)")):
                rows = [[a.id, a.language, short(a.title), num(a.p_yes)] for a in listed]
                if rows:
                    w.table(f"The {len(rows)} most confident {what} of {target}.", ["Id", "Language", "Title", "P(yes)"],
                            rows, "lllr", font_pt=8)
        shown = [n for n in self.inp.error_figures if n not in SAME_AS_A_TABLE]
        if not self.inp.error_figures:
            w.unavailable("Error-analysis figures", "the error summary lists no figures.")
        self.place("err", shown)

    def configuration(self):
        w, ev = self.w, self.ev
        w.heading("E. Configuration", 2)
        cfg = ev.config.model_dump(mode="json")   # shown as YAML: the setting names are the keys
        used = {m for e in ev.models.values() for m in e.model.split("+")}
        keys = ["random_seed", "device", "batch_size", "bootstrap_samples", "equivalence_margin", "probe_seeds"]
        keys += (["score_range", "success_bands", "tiers", "screening_recall", "screening_confidence",
                  "fine_tuned_ms_per_article", "fine_tuned_training_hours"] if self.scores
                 else ["equivalence_margin_f1", "min_group_positives"])
        keys.append("min_group_articles")
        shown = {k: cfg[k] for k in keys if k in cfg}
        shown["embedding_models"] = {k: v for k, v in cfg["embedding_models"].items() if k in used}
        if any(e.chunked for e in ev.models.values()) and "chunking" in cfg:
            shown["chunking"] = cfg["chunking"]
        if self.inp.dataset in cfg["datasets"]:
            shown["datasets"] = {self.inp.dataset: cfg["datasets"][self.inp.dataset]}
        probes = set(self.task.probes)
        shown["probe_methods"] = {k: v for k, v in cfg["probe_methods"].items() if k in probes}
        w.para("The settings that concern this report, recorded by evaluate.py with the results:")
        w.code(yaml.safe_dump(_plain(shown), sort_keys=False, allow_unicode=True, default_flow_style=None,
                              width=88).rstrip())

    def provenance(self):
        w, prov = self.w, self.ev.provenance
        w.heading("F. Where and with what the results were made", 2)
        code = prov.code
        w.para(f"Host {prov.host}; code version {code.commit or 'unknown (not a git checkout)'}"
               + (" with uncommitted changes" if code.dirty else "") + f"; evaluated {_when(prov.created_at)}."
               + (f" Speed measured on {self.inp.benchmarks.device_name or self.inp.benchmarks.device}."
                  if self.inp.benchmarks is not None else ""))
        w.table("Library versions, recorded by evaluate.py.", ["Library", "Version"],
                [[k, "not installed / not used" if v is None else str(v)] for k, v in prov.versions.items()], "ll")
        here = record()
        w.para(f"This document was generated on host {here['host']} at {_when(here['created_at'])} with code version "
               f"{here['code']['commit'] or 'unknown'}" + (" (uncommitted changes)" if here["code"]["dirty"] else "")
               + "; every number in it comes from the results above, not from this machine.")
        w.comments = (f"generated on {here['host']} at {here['created_at']}, code "
                      f"{(here['code']['commit'] or 'unknown')[:12]}")

    def fingerprints(self):
        w, tr = self.w, self.inp.training
        w.heading("G. Cache fingerprints and probe files", 2)
        if tr is None:
            w.unavailable("Fingerprints", "no training summary was found (run train_probes.py).")
            return
        rows, files = [], []
        for v, entry in tr.models.items():
            fp = next((m.embedding_fingerprint for m in entry.values() if m.embedding_fingerprint.recorded), None)
            shown = lambda value: MISSING if value is None else str(value)   # noqa: E731 (absent: a concatenation's own)
            rows.append([v, shown(fp and fp.model_name), shown(fp and fp.max_tokens),
                         repr(fp.prefix) if fp and fp.prefix else "none", shown(fp and fp.dtype),
                         shown(fp and fp.pooling), (fp and fp.revision) or MISSING, shown(fp and fp.data_sha256)[:16]])
            files += [[v, p, m.file, m.sha256[:16]] for p, m in entry.items()]
            files += [[v, f"{p}, {r.n_train} training articles", r.file, r.sha256[:16]]
                      for p, m in entry.items() for r in m.train_subsets]
        w.table("Fingerprints of the training embeddings each probe was fitted on (training summary).",
                ["Model", "Model name", "Max tokens", "Prefix", "Dtype", "Pooling", "Revision", "Data sha256"], rows,
                "llrlllll", font_pt=7)
        w.table("Probe files and their sha256 (first 16 hex digits).", ["Model", "Probe", "File", "sha256"], files,
                "llll", font_pt=7)

    def input_files(self):
        w = self.w
        w.heading("H. Input files", 2)
        rows = [[key, self.rel(path), _sha(path)] for key, path in self.inp.files.items()]
        rows += [["figure", self.rel(p), _sha(p)] for p in sorted(w.embedded)]
        if self.inp.comparison_report:
            rows.append(["comparison report", self.rel(self.inp.comparison_report), _sha(self.inp.comparison_report)])
        w.table("Every file this report was built from (sha256, first 12 hex digits).", ["Input", "Path", "sha256"],
                rows, "lll", font_pt=7)


def _when(iso: str) -> str:
    """An ISO timestamp as 'YYYY-MM-DD HH:MM UTC' (it must not break over two lines)."""
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d\u00a0%H:%M\u00a0UTC")
    except (TypeError, ValueError):
        return str(iso)


def _settings_text(settings: dict) -> str:
    """'key value, ...' with nested mappings flattened: 'params: n_estimators 1000, ...'."""
    parts = []
    for key, value in settings.items():
        if isinstance(value, dict):
            parts.append(f"{key}: " + _settings_text(value))
        elif isinstance(value, (list, tuple)):
            parts.append(f"{key} " + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value))
        else:
            parts.append(f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}")
    return "; ".join(parts)


def _sha(path: Path) -> str:
    path = current(path)   # staged in this command (compare_results.py's charts): the staged file
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else MISSING


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def build(cfg: Config, inputs: Inputs, out: Path) -> Document:
    """The report's document model: the sections of its task, in order."""
    return Report(cfg, inputs, out).build()


@dataclass(frozen=True)
class Reported:
    """What phase 6 wrote: the .docx, the document model laid out in it, and what generate_report.py prints."""
    path: Path
    document: Document
    sections: tuple[str, ...]   # the Word file's top-level headings, in order
    tables: int
    figures: int                # figures placed in the Word file (one whose png cannot be read is not)
    missing: tuple[str, ...]    # what each `unavailable` note of the document named


def write_report(cfg: Config, dataset: str, out: Path, benchmarks_of: str | None = None) -> Reported:
    """Phase 6: build the report of `dataset` into `out` (.docx, written atomically); returns what went in."""
    document = build(cfg, load_inputs(cfg, dataset, benchmarks_of), out)
    w = to_docx(document, out)
    return Reported(out, document, document.sections, document.tables, w.figures, tuple(document.missing))


@dataclass(frozen=True)
class Compared:
    """What phase 3b wrote: the markdown report's path, its typed record (results/<dataset>_comparison.json), the
    document it rendered, the charts it drew (by name) and the evaluation it read."""
    path: Path
    record: ComparisonRecord
    document: Document
    figures: dict[str, Path]
    evaluation: object   # ScoreEvaluation | YesNoEvaluation


def compare(cfg: Config, dataset: str) -> Compared:
    """Phase 3b: the comparison charts of `dataset`'s evaluation, the report's document as markdown (the Word
    report's sections, tables and cells, from what exists when it runs, with the charts just drawn) and the record
    naming them, written together (the caller stages the writes: compare_results.py in `staged_writes`)."""
    out = paths.comparison_markdown(cfg, dataset)
    inputs = load_inputs(cfg, dataset)
    inputs.left_out.pop("comparison", None)
    inputs.files.pop("comparison", None)
    figures = draw_figures(cfg, inputs.evaluation)
    inputs.comparison_figures, inputs.comparison_report = dict(figures), None
    document = build(cfg, inputs, out)
    with atomic_path(out, "wb") as fh:
        fh.write(to_markdown(document, out.parent).encode("utf-8"))
    rec = write_record(paths.comparison_record(cfg, dataset), ComparisonRecord, {
        "dataset": dataset, "report": paths.relative(cfg, out), "evaluation_sha256": evaluation_sha256(cfg, dataset),
        "figures": {n: paths.relative(cfg, p) for n, p in figures.items()}, "provenance": record()})
    return Compared(out, rec, document, figures, inputs.evaluation)
