"""The Word report of phase 6, built only from the JSON results of phases 2-5, in section order.

`load_inputs` reads what the phases wrote under `results/` (the evaluation JSON is required;
training summary, benchmarks, error summary and the comparison record are optional) and
`write_report` turns them into a .docx. Every number in the document is read from those
files or computed from them by study/findings.py (shared by the summary and the sections);
none is typed into this code. Figures are the ones the phases recorded by name. A section
whose input is missing says so and names the phase that makes it. The layout engine
(python-docx, number formatting) is study/docx_writer.py.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml
from pydantic import ValidationError

from study import decision, findings, paths
from study.artifacts import read_json
from study.comparison import BINARY_FIGURES as BINARY_COMPARISON
from study.comparison import FIGURES as COMPARISON_FIGURES
from study.config import Config
from study.errors import StudyError
from study.docx_writer import Writer, ci, num, pct, short, signed
from study.error_analysis import BINARY_FIGURES as BINARY_ERRORS
from study.error_analysis import FIGURES as ERROR_FIGURES
from study.findings import band
from study.metrics import finite
from study.probes import describe_selected
from study.provenance import record
from study.results import chosen, evaluation_sha256, probe_entries, read_evaluation, task
from study.schemas import (BenchmarkRecord, ComparisonRecord, DataChecks, ErrorSummary, TrainingSummary, legacy_dict,
                           model_for, read_record, validate)

SMALL_GROUP = 30        # fewer test articles than this: a per-group MAE is flagged as unreliable
WORST_SHOWN = 10        # worst-scored articles listed per report
MIN_CHART_POINTS = 3    # a chart of fewer points says nothing the table does not


# -- inputs --------------------------------------------------------------------------------
@dataclass
class Inputs:
    dataset: str
    evaluation: dict
    training: dict | None = None
    benchmarks: dict | None = None
    data_checks: dict | None = None
    errors: dict | None = None
    comparison_figures: dict[str, Path] = field(default_factory=dict)   # name -> png recorded by compare_results.py
    error_figures: dict[str, Path] = field(default_factory=dict)        # name -> png recorded by phase 5
    comparison_report: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)   # what was read, for the appendix
    left_out: dict[str, str] = field(default_factory=dict)  # inputs of another run: why each was not used
    record: object = None                                    # the evaluation as its typed model (page 1 reads it)
    typed: dict = field(default_factory=dict)                # the optional inputs as typed models, by key


def load_inputs(cfg: Config, dataset: str, benchmarks_of: str | None = None) -> Inputs:
    """Everything the report reads; StudyError only when the evaluation JSON is missing or bad.

    `benchmarks_of`: the dataset whose speed benchmark to use (a run over several datasets measures once).
    """
    ev = read_evaluation(cfg, dataset)
    inputs = Inputs(dataset=dataset, evaluation=legacy_dict(ev), record=ev,
                    files={"evaluation": paths.evaluation(cfg, dataset)})
    current = evaluation_sha256(cfg, dataset)
    optional = {"training": (paths.training_summary(cfg, dataset), TrainingSummary, "rerun train_probes.py"),
                "data_checks": (paths.data_checks(cfg, dataset), DataChecks, "rerun embed_articles.py"),
                "benchmarks": (paths.benchmark(cfg, benchmarks_of or dataset), BenchmarkRecord, "rerun benchmark_speed.py"),
                "errors": (paths.error_summary(cfg, dataset), ErrorSummary, "rerun analyze_error_distribution.py"),
                "comparison": (paths.comparison_record(cfg, dataset), ComparisonRecord, "rerun compare_results.py")}
    records = {}
    for key, (path, model, remedy) in optional.items():
        if not path.is_file():
            continue
        if key == "errors":
            data = read_json(path, "error summary")
            rec = validate(model_for("error summary", data), data, str(path), remedy)
        else:
            rec = read_record(path, model, key, remedy)
        made_from = getattr(rec, "evaluation_sha256", None)
        if made_from is not None and made_from != current:   # another run's: left out, and named
            inputs.left_out[key] = (f"{path.name} was made from another evaluation than the current "
                                    f"{paths.evaluation(cfg, dataset).name}; {remedy}")
            continue
        records[key] = rec
        inputs.files[key] = path
    inputs.typed = records
    for key in ("training", "data_checks", "benchmarks", "errors"):
        if key in records:
            setattr(inputs, key, legacy_dict(records[key]))
    if "comparison" in records:
        comparison = records["comparison"]
        inputs.comparison_figures = {n: paths.recorded(cfg, rel) for n, rel in comparison.figures.items()}
        inputs.comparison_report = paths.recorded(cfg, comparison.report)
    if "errors" in records:
        inputs.error_figures = {n: paths.recorded(cfg, rel) for n, rel in records["errors"].figures.items()}
    return inputs


def recorded_config(data: dict, where: Path) -> Config:
    """The configuration an evaluation ran with (its `config`, recorded by evaluate.py): the report reads score
    range and model notes from it, not from the config.yaml where the report is generated."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise StudyError(f"{where}: its recorded config is not a configuration of this version "
                         f"({exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}); rerun evaluate.py") from None


# -- the report ---------------------------------------------------------------------------
class Report:
    unused_settings: tuple[str, ...] = ("logistic",)   # config settings the appendix leaves out (another task's)

    def __init__(self, cfg: Config, inputs: Inputs, out: Path):
        self.cfg, self.inp, self.out = cfg, inputs, Path(out)
        self.ev = inputs.evaluation
        self.run_cfg = recorded_config(self.ev["config"], inputs.files["evaluation"])   # what the results ran with
        self.models: dict = self.ev["models"]
        self.best: dict = self.ev["best"]
        self.baseline = self.ev.get("baseline_mae")
        title = "Multilingual embeddings + probes against a fine-tuned scorer"
        when = datetime.fromisoformat(self.ev["evaluated_at"]).strftime("%Y-%m-%d %H:%M UTC")
        self.w = Writer(title, f"Dataset {inputs.dataset} · evaluated {when}")

    # helpers -------------------------------------------------------------------------------
    def rel(self, path: Path) -> str:
        try:
            return str(Path(path).resolve().relative_to(self.cfg.results_path.resolve().parent))
        except ValueError:
            return str(path)

    @staticmethod
    def label(variant: str, probe: str | None) -> str:
        return f"{variant} + {probe}" if probe else variant

    def place(self, which: str, names=None) -> int:
        """Embed the comparison ("cmp") or error-analysis ("err") figures named (default: those not yet in)."""
        if which == "cmp":
            figs, captions, source = (self.inp.comparison_figures, {**COMPARISON_FIGURES, **BINARY_COMPARISON},
                                      "compare_results.py")
        else:
            probe = (self.inp.errors or {}).get("probe", "?")
            figs, captions, source = (self.inp.error_figures, {**ERROR_FIGURES, **BINARY_ERRORS},
                                      f"analyze_error_distribution.py, {probe} probe")
        placed = 0
        for name, path in figs.items():
            if (names is None or name in names) and Path(path).resolve() not in self.w.embedded:
                placed += self.w.figure(path, f"{captions.get(name, name)} ({source}).")
        return placed

    # sections ------------------------------------------------------------------------------
    def sections(self) -> list:
        """The document's sections, in order."""
        return [self.decision, self.questions, self.method, self.results, self.error_analysis,
                self.limitations, self.appendix]

    def build(self) -> dict:
        for section in self.sections():
            section()
        self.w.save(self.out)
        return {"path": self.out, "tables": self.w.tables, "figures": self.w.figures, "missing": self.w.missing,
                "sections": [p.text for p in self.w.doc.paragraphs if p.style.name == "Heading 1"]}

    def decision(self):
        """Page 1: the decision table (study/decision.py), the verdict, the data and three caveats; then contents."""
        w, ev = self.w, self.inp.record
        rows = (decision.score_rows if ev.task == "regression" else decision.yes_no_rows)(
            ev, self.inp.typed.get("benchmarks"))
        w.heading("1. Decision")
        for what, why in self.inp.left_out.items():
            w.unavailable(f"Another run's {what.replace('_', ' ')}", why)
        w.para(("Verdict: ", "b"), decision.verdict_sentence(ev, rows))
        w.table("The study's questions, answered by one rule: a paired 95% bootstrap difference on the same test "
                "articles read against the equivalence margin; bands from the whole CI; guaranteed screening.",
                ["Question", "Answer", "Number [95% CI]", "See"],
                [[r.question, r.answer, r.number, r.evidence] for r in rows], "lllc", font_pt=8)
        w.para(decision.data_line(ev, self.inp.typed.get("training")))
        w.para(("Caveats", "b"))
        for text in decision.caveats(ev):
            w.bullet(text)
        w.page_break()
        w.contents_here()
        self.summary_details()

    def summary_details(self):
        """The figures behind page 1, in words (section 1.1)."""
        w, b, ev = self.w, self.best, self.ev
        w.heading("1.1 The best model and its references", level=2)
        w.bullet("Best model and probe, chosen on validation MAE (", (self.label(b["model"], b["probe"]), "b"),
                 f"): validation MAE {num(b['val_mae'])} (optimistic: it chose), test MAE {num(b['test_mae'])} "
                 f"(95% bootstrap CI {ci(b['mae_ci95'])}, {ev['n_test']} test articles).")
        if self.baseline:
            w.bullet(f"Fine-tuned baseline: MAE {num(self.baseline)}, from {ev['baseline_source']}; page 1 reads the "
                     "comparison with it by the rule, not from the sign of the gap.")
        rule = findings.band_rule(ev["baseline_mae"], ev["success_bands"])
        if rule:
            w.bullet(f"Success bands {rule}.")
        mean = ev["mean_predictor"]
        w.bullet(f"Reference: predicting the training mean of every dimension gives test MAE "
                 f"{num(mean['overall_mae'])}; tier accuracy {pct(mean['article_scores']['tier_accuracy'])}, and "
                 f"saying the majority tier ({mean['majority_tier']['tier']}) for every article "
                 f"{pct(mean['majority_tier']['accuracy'])}.")
        base = findings.frozen_base(ev)
        if base:
            w.bullet(f"The fine-tuned model's own base, frozen ({self.label(base['variant'], base['probe'])}): test MAE "
                     f"{num(base['mae'])} (95% CI {ci(base['ci'])}) against the best model's {num(b['test_mae'])}: "
                     "what the base model knows before any task-specific training.")

    # the four questions ----------------------------------------------------------------------
    def questions(self):
        self.w.heading("2. Answers to the study's questions")
        self.q_bge()
        self.q_truncation()
        self.q_speed()
        self.q_probes()
        self.q_screening()
        self.q_pairs()
        self.q_learning_curve()

    def q_bge(self):
        w = self.w
        w.heading("2.1 Does bge-m3 close the gap?", 2)
        bge = findings.bge_answer(self.ev)
        if bge is None:
            w.unavailable("bge-m3 answer", "bge-m3 was not evaluated on this dataset (models evaluated: "
                          + ", ".join(self.models) + "). Run phases 1-3 with --models bge-m3 to answer it.")
            return
        rival = bge["rival"]
        for a in bge["answers"]:
            text = [f"{self.label(a['variant'], a['probe'])} (probe chosen on validation) reaches test MAE "
                    f"{num(a['mae'])} (95% CI {ci(a['ci'])})"]
            if self.baseline:
                text.append(f"; the fine-tuned model's is {num(self.baseline)} (gap {signed(a['gap'])}), band: {a['band']}.")
            else:
                text.append("; no fine-tuned baseline is known, so no band.")
            w.para(*text)
            vs = a["vs_baseline"]
            if vs:
                lo, hi = vs["difference_ci95"]
                verdict = ("the interval excludes zero: the difference is real at this test size"
                           if lo > 0 or hi < 0 else "the interval includes zero: the two are not distinguishable here")
                w.para(f"Paired on the {vs['n_articles']} test articles the fine-tuned model also scored: "
                       f"probe MAE {num(vs['probe_mae'])}, fine-tuned MAE {num(vs['baseline_mae'])}, difference "
                       f"{signed(vs['mae_difference'])} (95% CI {ci(vs['difference_ci95'])}); {verdict}.")
            if rival:
                w.para(f"Best other model: {self.label(rival['variant'], rival['probe'])}, test MAE {num(rival['mae'])} "
                       f"(95% CI {ci(rival['ci'])}); the two intervals "
                       + ("overlap, so the difference is within the uncertainty." if a["overlaps_rival"]
                          else "do not overlap, so the difference exceeds the uncertainty."))

    def q_truncation(self):
        w = self.w
        w.heading("2.2 How much does truncation hurt?", 2)
        rows = findings.truncation_rows(self.ev)
        w.table("Test MAE of the articles cut at the model's max tokens and of the whole ones, for the probe chosen "
                "on validation; Cut is the share of test articles cut, Δ MAE = MAE cut − MAE whole (evaluation JSON, "
                "'truncation').",
                ["Model", "Max tokens", "Cut", "Mean tokens", "Probe", "n cut", "MAE cut", "n whole", "MAE whole", "Δ MAE"],
                [[r["variant"], str(r["max_tokens"]), pct(r["truncated_fraction"]), num(r["mean_token_count"], 0),
                  r["probe"], str(r["n_cut"]), num(r["mae_cut"]), str(r["n_whole"]), num(r["mae_whole"]),
                  signed(r["difference"])] for r in rows], "lrrrlrrrrr", font_pt=8)
        for r in rows:
            head = f"{r['variant']} (max {r['max_tokens']} tokens)"
            if not r["n_cut"]:
                w.bullet(f"{head}: no test article is truncated, so truncation cannot hurt it here.")
            elif not r["n_whole"]:
                w.bullet(f"{head}: every test article is truncated; there is no whole-article group to compare with.")
            else:
                w.bullet(f"{head} cuts {pct(r['truncated_fraction'])} of the test articles; their MAE is "
                         f"{signed(r['difference'])} against whole articles"
                         + (" (worse)." if r["difference"] is not None and r["difference"] > 0 else " (not worse)."))
        for model, runs in findings.sweeps(self.ev).items():   # one model at several max tokens: the direct test
            w.table(f"Truncation sweep of {model}: the same model at several max tokens (probe chosen on validation), "
                    "and each setting's paired difference in test MAE against the longest (same probe, same "
                    "articles; a CI above zero means cutting shorter hurts).",
                    ["Max tokens", "Probe", "Test MAE (95% CI)", "Δ MAE vs longest (95% CI)"],
                    [[str(r["max_tokens"]), r["probe"], f"{num(r['mae'])} ({ci(r['ci'])})",
                      "longest" if not r["vs_longest"] else
                      f"{signed(r['vs_longest']['mae_difference'])} ({ci(r['vs_longest']['difference_ci95'])})"]
                     for r in runs], "rlrr")
        w.para(("Caveat: ", "i"), ("truncated articles are the long ones, so the difference mixes the loss of text with "
                                   "whatever else differs in long articles. The clean test is one model embedded at "
                                   "several max tokens (--max-tokens 128 512 ...), or chunked against truncated "
                                   "(below).", "i"))
        self.chunking()
        if not self.place("err", ["error_vs_tokens"]):
            w.unavailable("Error-vs-token-count figure",
                          "no error analysis with a token figure was found (run analyze_error_distribution.py).")

    def chunking(self):
        """Chunked against truncated: does embedding the whole article help?"""
        w, rows = self.w, findings.chunking_rows(self.ev)
        unpaired = [(v, e) for v, e in self.models.items()
                    if e.get("chunked") and v not in {r["variant"] for r in rows}]
        for v, e in unpaired:
            twin = (self.cfg.variant(e["model"], e["max_tokens"]).name if e["model"] in self.cfg.embedding_models
                    else f"{e['model']}-t{e['max_tokens']}")
            self.not_run(f"Chunked against truncated for {v}", f"its truncated twin {twin} was not evaluated; embed, "
                         f"train and evaluate it too (--models {twin} {v})")
        if not rows:
            if not unpaired:
                self.not_run("Chunked against truncated", "python embed_articles.py --models <model> --chunks, then "
                             "train_probes.py and evaluate.py with --models <model> <model>-c<N>")
            return
        w.table("Chunked against truncated, the same model and probe (the chunked variant's probe chosen on "
                "validation): each article cut into windows of N tokens, their embeddings averaged, against the "
                "article cut at N tokens. Δ = chunked − truncated test MAE, paired on the same articles (95% "
                "bootstrap CI; below zero chunking helps), over all test articles and over those truncation cuts.",
                ["Chunked", "Truncated", "Probe", "Windows / article", "Cut after max windows", "Δ MAE all",
                 "n cut", "Δ MAE cut articles"],
                [[r["variant"], r["truncated"], r["probe"], num(r.get("windows_per_article"), 2),
                  pct(r.get("capped_fraction")), f"{signed(r['all']['mae_difference'])} ({ci(r['all']['difference_ci95'])})",
                  str(r["cut"]["n_articles"] if r["cut"] else 0),
                  f"{signed(r['cut']['mae_difference'])} ({ci(r['cut']['difference_ci95'])})" if r["cut"] else "—"]
                 for r in rows], "lllrrrrr", font_pt=8)
        words = {"lower": "helps (the CI lies below zero)", "higher": "hurts (the CI lies above zero)",
                 "not distinguishable": "makes no difference distinguishable at this test size (the CI holds zero)"}
        for r in rows:
            head = f"{r['variant']} against {r['truncated']} ({r['probe']}): chunking {words[r['reading_all']]} over all "
            if not r["cut"]:
                w.bullet(head + f"test articles; no test article is cut at {r.get('window')} tokens.")
            elif r["reading_cut"] == r["reading_all"]:
                w.bullet(head + f"test articles and over the {r['cut']['n_articles']} that truncation cuts.")
            else:
                w.bullet(head + f"test articles, and {words[r['reading_cut']]} on the {r['cut']['n_articles']} that "
                         "truncation cuts.")

    def not_run(self, what: str, how: str):
        """One line for an optional analysis whose results do not exist yet, saying how to produce them."""
        self.w.para((f"{what} Not run. " if what.endswith("?") else f"{what}: not run. ", "b"),
                    (f"To produce it: {how}.", "i"))

    def q_speed(self):
        w, bench = self.w, self.inp.benchmarks
        w.heading("2.3 Quality against speed", 2)
        if not bench:
            w.unavailable("Speed comparison", "no benchmark results were found "
                          f"({self.rel(paths.benchmark(self.cfg, self.inp.dataset))}); "
                          "run benchmark_speed.py to measure speed, load time and memory.")
            return
        bm, e2e = bench.get("models") or {}, bench.get("end_to_end") or {}
        ft = bench.get("fine_tuned_ms_per_article")
        w.para(f"Measured on {bench.get('device', '?')} ({bench.get('device_name') or 'unnamed device'})"
               + (f", on the articles of dataset {bench.get('dataset')}" if bench.get("dataset") != self.inp.dataset
                  else "")
               + (f"; the fine-tuned model costs {num(ft[0], 0)}–{num(ft[1], 0)} ms per article (config)." if ft else "."))
        rows = []
        for v, p, m in chosen(self.ev):
            b = bm.get(v)
            if not b:
                rows.append([v, p, num(m["overall_mae"]), "—", "—", "—", "—", "—", "not run"])
                continue
            end = (e2e.get(v) or {}).get(p) or {}
            speed = end.get("speedup_vs_fine_tuned")
            rows.append([v, p, num(m["overall_mae"]), num(b.get("articles_per_s"), 1), num(b.get("tokens_per_s"), 0),
                         num(b.get("peak_memory_mb"), 0), num(end.get("ms_per_article"), 2),
                         f"{num(speed[0], 2)}–{num(speed[1], 2)}×" if speed else "—",
                         f"{b.get('dtype', '?')}, batch {b.get('batch_size', '?')}"
                         + (", random weights" if b.get("random_weights") else "")])
        w.table("Test MAE (probe chosen on validation) against embedding throughput, memory and end-to-end cost "
                "(benchmarks JSON).",
                ["Model", "Probe", "Test MAE", "Articles/s", "Tokens/s", "Peak MB", "ms/article end to end",
                 "× fine-tuned speed", "Setting"], rows, "llrrrrrrl", font_pt=8)
        points = findings.speed_points(self.ev, bench)
        if len(points) >= MIN_CHART_POINTS:   # fewer points read better in the table above
            from study.plots import quality_vs_speed

            chart = quality_vs_speed(points, self.baseline, paths.report_figure(self.out, "quality_vs_speed"))
            w.figure(chart, "Test MAE against embedding throughput (articles/s), one point per model with the probe "
                            "chosen on validation" + ("; the line is the fine-tuned baseline." if self.baseline else "."))
        if points:
            w.para("Not beaten on both speed and MAE by another model: "
                   + ", ".join(f"{p['label']} ({num(p['articles_per_s'], 1)} articles/s, MAE {num(p['mae'])})"
                               for p in findings.speed_front(points)) + ".")
        else:
            w.unavailable("Quality-speed chart", "none of the evaluated models was benchmarked.")
        random = [v for v, b in bm.items() if b.get("random_weights")]
        if random:
            w.para(("Speed only: ", "b"), ", ".join(random) + " were benchmarked with random weights of the same "
                   "architecture (the real weights were not available there). Their speed figures hold; their quality "
                   "figures come from the evaluation of the real model, not from the benchmark.")

    def q_probes(self):
        w = self.w
        w.heading("2.4 Which probe works best?", 2)
        comparisons = findings.probe_comparisons(self.ev)
        margin = self.ev["config"].get("equivalence_margin")
        w.table("Each probe's validation and test MAE, and the paired difference of its per-article test MAE minus "
                "that of the probe chosen on validation for the same model, read by the comparison rule "
                f"(margin ±{margin:g} MAE)." if margin is not None else "Each probe against the chosen probe.",
                ["Model", "Probe", "Val MAE", "Test MAE", "Minus chosen [95% CI]", "Against the chosen probe"],
                [[r["variant"], r["probe"], num(r["val_mae"]), num(r["mae"]),
                  "—" if r["difference"] is None else f"{signed(r['difference'])} [{ci(r['difference_ci'])}]",
                  r["against"]] for r in comparisons], "llrrrl")
        counts = findings.probe_verdict_counts(self.ev)
        if counts:
            w.para("Against the probe chosen on validation, the other probes are: "
                   + ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items())) + " (paired rule).")
        paired = [(v, p, m["vs_baseline"]) for v, e in self.models.items() for p, m in e["probes"].items()
                  if m.get("vs_baseline")]
        if paired:
            w.table("Paired comparison with the fine-tuned model on the test articles both scored: probe MAE minus "
                    "fine-tuned MAE (a CI that excludes zero is a real difference).",
                    ["Model", "Probe", "n", "Probe MAE", "Fine-tuned MAE", "Difference", "95% CI"],
                    [[v, p, str(vs["n_articles"]), num(vs["probe_mae"]), num(vs["baseline_mae"]),
                      signed(vs["mae_difference"]), ci(vs["difference_ci95"])] for v, p, vs in paired], "llrrrrr")

    def q_screening(self):
        w, ev = self.w, self.ev
        w.heading("2.5 Can a probe screen articles for the fine-tuned model?", 2)
        setup, rows = ev.get("screening_setup"), findings.screening_rows(ev, self.inp.benchmarks)
        if not setup or not rows:
            w.unavailable("Screening answer", "the evaluation holds no screening results; rerun evaluate.py (it "
                          "predicts the validation split and chooses the thresholds there).")
            return
        tiers = setup["tiers"]
        w.para("In the two-stage scorer every article is embedded and scored by the probe; an article whose predicted "
               "score (the weighted mean of its dimensions: "
               + ", ".join(f"{d} {x:.3g}" for d, x in setup["weights"].items())
               + ") is below a threshold keeps the probe's scores, the others go on to the fine-tuned model. Each "
               "threshold is chosen on the validation split as the highest that keeps the target share of the "
               f"articles whose true score is medium or higher (>= {num(tiers['medium'], 1)}; high >= "
               f"{num(tiers['high'], 1)}), then applied unchanged to the test split.")
        w.table("Screening thresholds chosen on validation and their test results, with 95% bootstrap CIs; "
                "skipped MAE is the probe's MAE on the articles that skip the fine-tuned model"
                + ("; cost per article = embedding + probe + the passing share × the fine-tuned model's cost "
                   "(benchmark and config)." if any(r["speedup"] for r in rows) else "."),
                ["Model + probe", "Target", "Threshold", "Val skip", "Test skip (95% CI)", "Test recall (95% CI)",
                 "Skipped MAE (95% CI)", "ms/article", "× faster"],
                [[self.label(r["variant"], r["probe"]), pct(r["target"], 0), num(r["threshold"], 2),
                  pct(r["val_skip_share"]), f"{pct(r['skip_share'])} ({pct(r['skip_share_ci95'][0])}–"
                  f"{pct(r['skip_share_ci95'][1])})", f"{pct(r['recall'])} ({pct(r['recall_ci95'][0])}–"
                  f"{pct(r['recall_ci95'][1])})", f"{num(r['skipped_mae'])} ({ci(r['skipped_mae_ci95'])})",
                  "—" if not r["ms_per_article"] else f"{num(r['ms_per_article'][0], 1)}–{num(r['ms_per_article'][1], 1)}",
                  "—" if not r["speedup"] else f"{num(r['speedup'][0], 1)}–{num(r['speedup'][1], 1)}"]
                 for r in rows], "lrrrrrrrr", font_pt=7)
        self.place("cmp", ["screening_curve"])
        w.table("Article scores on test: MAE of the weighted article score, tier accuracy and the share within 0.5 "
                "and 1.0 of the truth, with 95% bootstrap CIs.",
                ["Model + probe", "Article MAE (95% CI)", "Tier accuracy (95% CI)", "Within 0.5", "Within 1.0"],
                [[self.label(v, p), f"{num(a['weighted_mae'])} ({ci(a['weighted_mae_ci95'])})",
                  f"{pct(a['tier_accuracy'])} ({pct(a['tier_accuracy_ci95'][0])}–{pct(a['tier_accuracy_ci95'][1])})",
                  pct(a["within_0.5"]), pct(a["within_1.0"])] for v, p, a in findings.article_score_rows(ev)],
                "lrrrr", font_pt=8)
        b = self.best
        confusion = (self.models[b["model"]]["probes"][b["probe"]].get("article_scores") or {}).get("tier_confusion")
        if confusion:
            w.table(f"Tier confusion on test of {self.label(b['model'], b['probe'])} (rows: true tier, columns: "
                    "predicted tier).", ["True \\ predicted", "low", "medium", "high"],
                    [[name] + [str(n) for n in row] for name, row in zip(("low", "medium", "high"), confusion)], "lrrr")
        hours = setup["fine_tuned_training_hours"]
        w.table(f"Training cost: embedding train + val (recorded in the caches) plus the probe's fit, against "
                f"{num(hours[0], 0)}–{num(hours[1], 0)} h for the fine-tuned model (config).",
                ["Model + probe", "Embedding s", "Probe fit s", "Total s", "Device", "Share of fine-tuned training"],
                [[self.label(r["variant"], r["probe"]), num(r["embedding_seconds"], 1), num(r["probe_seconds"], 1),
                  num(r["total_seconds"], 1), r["device"] or "—",
                  "—" if not r["share_of_fine_tuned"] else
                  f"{pct(r['share_of_fine_tuned'][1], 2)}–{pct(r['share_of_fine_tuned'][0], 2)}"]
                 for r in findings.training_cost(ev)], "lrrrlr", font_pt=8)

    def q_learning_curve(self):
        w = self.w
        readings = findings.learning_curve_readings(self.ev)
        if not readings:   # one line, no section
            self.not_run("Would more labels help?", "python train_probes.py ... --train-fractions 0.1 0.25 0.5 1.0, "
                         "then evaluate.py (and compare_results.py for the chart)")
            return
        w.heading("2.7 Would more labels help?", 2)
        w.para("Each probe was retrained on nested subsets of the training split: one permutation of the training "
               "articles, seeded with random_seed, of which each subset takes the first ceil(fraction × n), so every "
               "subset lies inside the next larger one. The validation and test articles stay the same; fraction 1 "
               "is the normal, full-data probe.")
        w.table("Learning curve: test MAE with its 95% bootstrap CI by number of training articles; change = test MAE "
                "minus the point before's, paired on the same test articles, with its 95% bootstrap CI "
                "(evaluation JSON, learning_curve).",
                ["Model + probe", "Fraction", "Training articles", "Test MAE", "95% CI", "Val MAE", "Change", "95% CI"],
                [[self.label(r["variant"], r["probe"]), num(r["fraction"], 2), f"{r['n_train']:,}", num(r["mae"]),
                  ci(r["ci"]), num(r["val_mae"]), "—" if r["difference"] is None else signed(r["difference"]),
                  "—" if r["difference_ci"] is None else ci(r["difference_ci"])]
                 for r in findings.learning_curve_rows(self.ev)], "lrrrrrrr", font_pt=8)
        if "learning_curve" in self.inp.comparison_figures:
            self.place("cmp", ["learning_curve"])
        else:
            w.unavailable("Learning-curve chart", "the comparison record names no learning_curve figure (rerun "
                          "compare_results.py).")
        w.para(("Rule: ", "b"), findings.CURVE_RULE[0].upper() + findings.CURVE_RULE[1:] + ".")
        for r in readings:
            w.bullet(findings.curve_sentence(r))

    # method --------------------------------------------------------------------------------
    def q_pairs(self):
        w = self.w
        w.heading("2.6 Do two models together beat either?", 2)
        rows = findings.concatenation_rows(self.ev)
        if not rows:
            self.not_run("Models side by side", "python embed_articles.py --models <a>+<b> (no re-embedding when a "
                         "and b are cached), then train_probes.py and evaluate.py with --models <a> <b> <a>+<b>")
            return
        w.table("Two models' embeddings side by side (probe chosen on validation), against each part with the same "
                "probe: Δ = pair − part test MAE, paired on the same articles (95% bootstrap CI; below zero the pair is "
                "better). The pair costs both models' embedding time.",
                ["Pair", "Probe", "Test MAE (95% CI)", "Part", "Δ MAE vs part (95% CI)", "Articles/s"],
                [[r["variant"], r["probe"], f"{num(r['mae'])} ({ci(r['ci'])})", a["part"],
                  f"{signed(a['mae_difference'])} ({ci(a['difference_ci95'])})",
                  num(findings.throughput(self.ev, self.inp.benchmarks, r["variant"]), 1)]
                 for r in rows for a in r["against"] or [{"part": "not evaluated", "mae_difference": None,
                                                          "difference_ci95": None}]], "llrlrr", font_pt=8)
        for r in rows:
            if not r["against"]:
                w.bullet(f"{r['variant']}: none of its parts was evaluated, so there is nothing to set it against "
                         f"(evaluate them too: --models {' '.join(r['parts'])} {r['variant']}).")
            elif r["beats_all"]:
                w.bullet(f"{r['variant']} beats each of its parts beyond the uncertainty (every CI lies below zero).")
            else:
                w.bullet(f"{r['variant']} does not beat each of its parts beyond the uncertainty: "
                         + ", ".join(f"against {a['part']} {a['reading']}" for a in r["against"])
                         + ("" if len(r["against"]) == len(r["parts"]) else " (not every part was evaluated)") + ".")

    def method(self):
        w, ev, tr = self.w, self.ev, self.inp.training
        w.heading("3. Method")
        w.heading("3.1 Data", 2)
        dims = ev.get("dimension_names") or []
        n_train = n_val = None
        for entry in ((tr or {}).get("models") or {}).values():
            for meta in entry.values():
                n_train, n_val = meta.get("n_train"), meta.get("n_val")
                break
            break
        low, high = self.run_cfg.score_range
        w.para(f"Dataset {self.inp.dataset}: {n_train if n_train is not None else '? (no training summary)'} training, "
               f"{n_val if n_val is not None else '?'} validation and {ev.get('n_test', '?')} test articles, "
               f"each scored {low:g}–{high:g} on {len(dims)} dimensions: {', '.join(dims)}. Validation articles choose "
               f"every hyper-parameter, the stopping point of each probe and the best model; test articles are only "
               f"scored.")
        leaks = (self.inp.data_checks or {}).get("split_leaks")
        if leaks is None:
            w.para("Articles shared between splits: not checked (embed_articles.py records it).")
        else:
            w.para(f"Articles shared between splits (phase 1): {leaks['same_id']} by id and {leaks['same_text']} by "
                   "identical title + content under different ids"
                   + ("; shared articles make the test scores look better than they are." if leaks["same_id"]
                      or leaks["same_text"] else "."))
        langs = ev.get("language_counts") or {}
        total = sum(langs.values()) or 1
        if langs:
            w.table("Languages of the test articles (given in the data or detected).", ["Language", "Test articles", "Share"],
                    [[lang, str(n), pct(n / total)] for lang, n in langs.items()], "lrr")
        w.heading("3.2 Models", 2)
        rows = []
        for v, e in self.models.items():
            spec = self.run_cfg.embedding_models.get(e.get("model", v))
            tokens = f"windows of {e['chunks']['window']}" if e.get("chunks") else str(e.get("max_tokens", "—"))
            note = spec.note if spec else ("side by side: " + " + ".join(e["parts"]) if e.get("parts") else "")
            rows.append([v, e.get("model_name") or (spec.model_name if spec else "(not in config.yaml)"),
                         str(e.get("embedding_dim", "—")), tokens,
                         repr(spec.prefix) if spec and spec.prefix else "none", note])
        w.table("Embedding models (config.yaml embedding_models; dimension and max tokens as evaluated).",
                ["Model", "Source", "Dim", "Max tokens", "Prefix", "Note"], rows, "llrrll", font_pt=8)
        w.para("Each article is embedded as title, blank line, content (with the model's prefix), cut at the model's "
               "max tokens; embeddings are frozen and cached with a fingerprint of what produced them (appendix C)."
               + (" A chunked variant (-c<N>) embeds every window of N tokens of the article (config chunking) and "
                  "averages them; a variant a+b sets two models' embeddings side by side."
                  if any(e.get("chunked") or e.get("parts") for e in self.models.values()) else ""))
        w.heading("3.3 Probes", 2)
        rows = []
        for probe in dict.fromkeys(p for e in self.models.values() for p in e["probes"]):
            settings = self.probe_settings(probe)
            chosen = "; ".join(f"{v}: {describe_selected(e['probes'][probe]['selected'])}"
                               for v, e in self.models.items() if probe in e["probes"])
            rows.append([probe, settings, chosen])
        w.table("Probe settings (training summary hyperparameters, else config.yaml) and what validation chose.",
                ["Probe", "Settings", "Chosen on validation"], rows, "lll", font_pt=8)
        w.para(f"Random seed {ev.get('random_seed', self.cfg.random_seed)} for every random step; 95% confidence "
               f"intervals from {ev.get('bootstrap_samples', '?')} bootstrap resamples of the test articles. MAE pools "
               f"every (article, dimension) error; Spearman is the mean of the per-dimension correlations.")

    def probe_settings(self, probe: str) -> str:
        for entry in ((self.inp.training or {}).get("models") or {}).values():
            if probe in entry and entry[probe].get("hyperparameters"):
                hp = entry[probe]["hyperparameters"]
                break
        else:
            section = getattr(self.cfg.probe_methods, probe, None)
            hp = section.model_dump() if section is not None else {}
        return _settings_text(hp) or "—"

    # results -------------------------------------------------------------------------------
    def results(self):
        w, ev = self.w, self.ev
        w.heading("4. Results")
        w.heading("4.1 Overall", 2)
        with_band = bool(self.baseline)
        rows = []
        for v, e in self.models.items():
            for p, m in e["probes"].items():
                row = [v, p, num(m.get("val_mae")), num(m.get("overall_mae")), ci(m.get("mae_ci95")),
                       num(m.get("overall_rmse")), num(m.get("overall_spearman"))]
                rows.append(row + ([band(m["overall_mae"], ev["baseline_mae"], ev["success_bands"]) or "—"] if with_band else []))
        mean = ev.get("mean_predictor") or {}
        if mean:
            rows.append(["train-mean predictor", "—", "—", num(mean.get("overall_mae")), ci(mean.get("mae_ci95")),
                         num(mean.get("overall_rmse")), num(mean.get("overall_spearman"))] + (["—"] if with_band else []))
        if self.baseline:
            base = ev.get("baseline") or {}
            rows.append(["fine-tuned baseline", "—", "—", num(self.baseline), ci(base.get("mae_ci95")),
                         num(base.get("overall_rmse")), num(base.get("overall_spearman")), "—"])
        header = ["Model", "Probe", "Val MAE", "Test MAE", "95% CI", "RMSE", "Spearman"] + (["Band"] if with_band else [])
        w.table(f"Overall scores on the {ev.get('n_test', '?')} test articles (evaluation JSON). Best on validation: "
                f"{self.label(self.best['model'], self.best['probe'])}."
                + (f" Fine-tuned baseline from {ev.get('baseline_source')}." if self.baseline else ""),
                header, rows, "llrrrrr" + ("l" if with_band else ""), font_pt=8)
        if not self.inp.comparison_figures:
            w.unavailable("Comparison charts", f"no comparison record ({self.rel(paths.comparison_record(self.cfg, self.inp.dataset))}) was found "
                          "(run compare_results.py).")
        self.place("cmp", ["mae_by_model"])

        w.heading("4.2 Per dimension", 2)
        dims = ev.get("dimension_names") or []
        rows = []
        for v, e in self.models.items():
            for p, m in e["probes"].items():
                per = m.get("per_dimension") or {}
                rows.append([f"{v} + {p}"] + [num((per.get(d) or {}).get("mae")) for d in dims])
        for name, src in (("train-mean predictor", mean), ("fine-tuned baseline", ev.get("baseline") or {})):
            per = src.get("per_dimension")
            if per:
                rows.append([name] + [num((per.get(d) or {}).get("mae")) for d in dims])
        w.table("Test MAE per dimension.", ["Model + probe"] + dims, rows, "l" + "r" * len(dims),
                font_pt=8 if len(dims) <= 6 else 7)
        self.place("cmp", ["dimension_mae_heatmap"])

        w.heading("4.3 Per language", 2)
        langs = list(ev.get("language_counts") or {})
        picks = chosen(ev)
        rows = []
        for lang in langs:
            row = [lang, str(ev["language_counts"][lang])]
            for _, _, m in picks:
                row.append(num(((m.get("per_language") or {}).get(lang) or {}).get("mae")))
            rows.append(row)
        if rows:
            w.table("Test MAE per language, for each model's probe chosen on validation.",
                    ["Language", "n"] + [self.label(v, p) for v, p, _ in picks], rows,
                    "lr" + "r" * len(picks), font_pt=8)
            small = [f"{lang} (n={n})" for lang, n in ev["language_counts"].items() if n < SMALL_GROUP]
            if small:
                w.para(("Few test articles: ", "i"), (", ".join(small) + f" — fewer than {SMALL_GROUP}; their MAE is "
                                                     "a rough indication only.", "i"))
        else:
            w.unavailable("Per-language results", "the evaluation JSON holds no language_counts.")
        self.place("err", ["error_by_language"])
        if any(Path(p).resolve() not in w.embedded for p in self.inp.comparison_figures.values()):
            w.heading("4.4 Other comparison charts", 2)
            self.place("cmp")

    def error_analysis(self):
        w, errs = self.w, self.inp.errors
        w.heading("5. Error analysis")
        if not errs:
            w.unavailable("Error analysis", "no error summary was found "
                          f"({self.rel(paths.error_summary(self.cfg, self.inp.dataset))}); "
                          "run analyze_error_distribution.py.")
            return
        models = errs.get("models") or {}
        w.para(f"Test errors of the {errs.get('probe', '?')} probe of each model (error summary JSON).")
        rows = []
        for v, m in models.items():
            q = m.get("abs_error_quantiles") or {}
            rows.append([v, str(m.get("n", "—")), num(m.get("overall_mae")), signed(m.get("bias")),
                         num(q.get("p50")), num(q.get("p90")), num(q.get("p99"))])
        w.table(f"Error distribution per model ({errs.get('probe', '?')} probe); bias is the mean of prediction − truth.",
                ["Model", "n", "MAE", "Bias", "|error| p50", "|error| p90", "|error| p99"], rows, "lrrrrrr")
        bins = list(dict.fromkeys((b.get("low"), b.get("high")) for m in models.values() for b in m.get("score_bins") or []))
        if bins:
            rows = []
            for low, high in bins:
                row = [f"{num(low, 1)}–{num(high, 1)}"]
                for m in models.values():
                    hit = next((b for b in m.get("score_bins") or [] if (b.get("low"), b.get("high")) == (low, high)), {})
                    row += [str(hit.get("n", "—")), signed(hit.get("bias"))]
                rows.append(row)
            w.table("Bias per true-score bin: a positive bias at low scores and a negative one at high scores means "
                    "the probe pulls extreme scores toward the mean.",
                    ["True score"] + [h for v in models for h in (f"{v} n", f"{v} bias")], rows,
                    "l" + "rr" * len(models), font_pt=8 if len(models) <= 3 else 7)
        target = self.best["model"] if self.best["model"] in models else next(iter(models), None)
        worst = (models.get(target) or {}).get("worst") or []
        if worst:
            rows = [[str(a.get("id")), str(a.get("language", "")), short(str(a.get("title", ""))), num(a.get("mae"))]
                    for a in worst[:WORST_SHOWN]]
            w.table(f"The {len(rows)} worst-scored test articles of {target} ({errs.get('probe', '?')} probe).",
                    ["Id", "Language", "Title", "MAE"], rows, "lllr", font_pt=8)
        if not self.inp.error_figures:
            w.unavailable("Error-analysis figures", "the error summary lists no figures.")
        self.place("err")

    def limitations(self):
        w, ev = self.w, self.ev
        w.heading("6. Limitations")
        lo, hi = self.best["mae_ci95"]
        w.bullet(f"Test size: {ev['n_test']} articles. The best model's own 95% CI is {num(hi - lo)} MAE wide; "
                 "comparisons are read on paired differences over the same articles, whose intervals are "
                 "narrower (page 1 and section 2.4), against the equivalence margin.")
        if self.baseline and not ev.get("baseline"):
            w.bullet(f"Baseline: the fine-tuned MAE {num(self.baseline)} comes from {ev.get('baseline_source')}; it was "
                     "not recomputed on these test articles, so the gap compares two separate measurements (give "
                     "evaluate.py --baseline-predictions for a paired comparison).")
        elif not self.baseline:
            w.bullet("Baseline: no fine-tuned MAE is known for this dataset, so no verdict band is given.")
        small = [lang for lang, n in (ev.get("language_counts") or {}).items() if n < SMALL_GROUP]
        if small:
            w.bullet(f"Languages with fewer than {SMALL_GROUP} test articles ({', '.join(small)}): their per-language MAE "
                     "is a rough indication only.")
        w.bullet("Truncation: comparing truncated with whole articles is observational (long articles differ in other "
                 "ways); only a max-tokens sweep of one model, or its chunked variant against its truncated one, "
                 "isolates the effect.")
        for v in self.models:
            spec = self.run_cfg.embedding_models.get(self.models[v].get("model", v))
            if spec and spec.note and any(k in spec.note.lower() for k in ("english", "stand-in")):
                w.bullet(f"{v}: {spec.note}. Its results say nothing about multilingual quality.")
        edge = [v for v, e in self.models.items()
                if ((e["probes"].get("ridge") or {}).get("selected") or {}).get("alpha_at_grid_edge")]
        if edge:
            w.bullet("Ridge: the alpha chosen for " + ", ".join(edge) + " sits at the edge of the grid; a wider "
                     "probe_methods.ridge.alphas might do better.")
        bench = self.inp.benchmarks
        if bench:
            w.bullet(f"Speed was measured once on {bench.get('device_name') or bench.get('device', '?')}; other hardware, "
                     "batch sizes or dtypes give other figures."
                     + (" Some models ran with random weights (speed only)." if any(
                         b.get("random_weights") for b in (bench.get("models") or {}).values()) else ""))
        w.bullet(f"One seed ({ev.get('random_seed', self.cfg.random_seed)}) and one validation split choose every "
                 "hyper-parameter; the variance across seeds is not measured.")

    def appendix(self):
        w, tr = self.w, self.inp.training
        w.heading("Appendix")
        w.heading("A. Configuration", 2)
        cfg, source = self.ev.get("config"), "recorded by evaluate.py with the results"
        if not cfg:   # results from before the evaluation JSON recorded its configuration
            cfg, source = self.cfg.model_dump(), f"config.yaml ({self.cfg.root}) where this report was generated"
        used = {m for v, e in self.models.items() for m in e.get("model", v).split("+")}
        shown = {k: cfg[k] for k in ("random_seed", "device", "batch_size", "score_range", "bootstrap_samples",
                                     "success_bands", "tiers", "screening_recall", "fine_tuned_ms_per_article",
                                     "fine_tuned_training_hours") if k in cfg and k not in self.unused_settings}
        shown["embedding_models"] = {k: v for k, v in cfg["embedding_models"].items() if k in used}
        if any(e.get("chunked") for e in self.models.values()) and "chunking" in cfg:
            shown["chunking"] = cfg["chunking"]
        if self.inp.dataset in cfg["datasets"]:
            shown["datasets"] = {self.inp.dataset: cfg["datasets"][self.inp.dataset]}
        shown["probe_methods"] = {k: v for k, v in cfg["probe_methods"].items() if k not in self.unused_settings}
        w.para(f"The settings that concern this report, {source}:")
        w.code(yaml.safe_dump(_plain(shown), sort_keys=False, allow_unicode=True, default_flow_style=None, width=88).rstrip())
        w.heading("B. Where and with what the results were made", 2)
        prov = self.ev.get("provenance") or {}
        versions, source = prov.get("versions"), "recorded by evaluate.py"
        if not versions:
            versions, source = (self.inp.benchmarks or {}).get("versions"), "recorded by benchmark_speed.py"
        if versions:
            code = prov.get("code") or {}
            w.para(f"Host {prov.get('host', '?')}; code version {code.get('commit') or 'unknown (not a git checkout)'}"
                   + (" with uncommitted changes" if code.get("dirty") else "") + f"; evaluated {prov.get('created_at', '?')}."
                   + (f" Speed measured on {self.inp.benchmarks.get('device_name')}." if self.inp.benchmarks else ""))
            w.table(f"Library versions, {source}.", ["Library", "Version"], [[k, "not installed / not used" if v is None else str(v)] for k, v in versions.items()],
                    "ll")
        else:
            w.unavailable("Library versions", "the results record none (results from an older version of the study)")
        here = record()
        w.para(f"This document was generated on host {here['host']} at {here['created_at']} with code version "
               f"{here['code'].get('commit') or 'unknown'}" + (" (uncommitted changes)" if here["code"].get("dirty") else "")
               + "; every number in it comes from the results above, not from this machine.")
        w.doc.core_properties.comments = (f"generated on {here['host']} at {here['created_at']}, code "
                                          f"{(here['code'].get('commit') or 'unknown')[:12]}")
        w.heading("C. Cache fingerprints and probe files", 2)
        trained = (tr or {}).get("models") or {}
        if not trained:
            w.unavailable("Fingerprints", "no training summary was found (run train_probes.py).")
        else:
            rows, files = [], []
            for v, entry in trained.items():
                fp = next((m.get("embedding_fingerprint") for m in entry.values() if m.get("embedding_fingerprint")), {})
                rows.append([v, str(fp.get("model_name", "—")), str(fp.get("max_tokens", "—")), repr(fp["prefix"]) if fp.get("prefix") else "none",
                             str(fp.get("dtype", "—")), str(fp.get("pooling", "—")), str(fp.get("revision", "—")),
                             str(fp.get("data_sha256", "—"))[:16]])
                files += [[v, p, str(m.get("file", "—")), str(m.get("sha256", "—"))[:16]] for p, m in entry.items()]
                files += [[v, f"{p}, {r.get('n_train', '?')} training articles", str(r.get("file", "—")),
                           str(r.get("sha256", "—"))[:16]] for p, m in entry.items() for r in m.get("train_subsets") or []]
            w.table("Fingerprints of the training embeddings each probe was fitted on (training summary).",
                    ["Model", "Model name", "Max tokens", "Prefix", "Dtype", "Pooling", "Revision", "Data sha256"], rows,
                    "llrlllll",
                    font_pt=7)
            w.table("Probe files and their sha256 (first 16 hex digits).", ["Model", "Probe", "File", "sha256"], files,
                    "llll", font_pt=7)
        w.heading("D. Input files", 2)
        rows = [[key, self.rel(path), _sha(path)] for key, path in self.inp.files.items()]
        rows += [["figure", self.rel(p), _sha(p)] for p in sorted(self.w.embedded)]
        if self.inp.comparison_report:
            rows.append(["comparison report", self.rel(self.inp.comparison_report), _sha(self.inp.comparison_report)])
        w.table("Every file this report was built from (sha256, first 12 hex digits).", ["Input", "Path", "sha256"], rows,
                "lll", font_pt=7)


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
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12] if Path(path).is_file() else "—"


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj




class BinaryReport(Report):
    """The report of a yes/no dataset (task: classification): the same frame (summary, method, results, error
    analysis, limitations, appendix) with F1, precision, recall and ROC AUC at each probe's validation threshold
    instead of the score analyses (MAE, bands, truncation MAE, screening), which it leaves out."""

    unused_settings = ("score_range", "success_bands", "tiers", "screening_recall", "fine_tuned_ms_per_article",
                       "fine_tuned_training_hours", "ridge")

    def sections(self) -> list:   # a yes/no report answers no score question
        return [self.decision, self.method, self.results, self.error_analysis, self.limitations,
                self.appendix]

    def f1_line(self, m: dict, prefix: str = "test ") -> str:
        return (f"{prefix}F1 {num(m['f1'])} (95% CI {ci(m['f1_ci95'])}), precision {num(m['precision'])} "
                f"({ci(m['precision_ci95'])}), recall {num(m['recall'])} ({ci(m['recall_ci95'])}), ROC AUC "
                f"{num(m['roc_auc'])} ({ci(m['roc_auc_ci95'])})")

    def summary_details(self):
        w, b, ev = self.w, self.best, self.ev
        base = ev.get("baseline_f1") if "against_baseline" in b else None
        m = self.models[b["model"]]["probes"][b["probe"]]
        w.heading("1.1 The best model and its references", level=2)
        w.para(("Yes/no labels: ", "b"), f"each of the {ev.get('n_test', '?')} test articles carries one 0/1 label "
               f"('{ev['dimension_names'][0]}'), {pct(ev.get('positive_rate'))} of them 1 (yes); each probe says yes "
               "where its P(yes) reaches the threshold that maximises F1 on the validation split.")
        if base:
            w.para(("Against the fine-tuned classifier: ", "b"),
                   f"the best probe's test F1 is {num(b['test_f1'])} against the fine-tuned classifier's {num(base)} "
                   f"(gap {signed(b.get('gap_to_baseline'))}, positive = the probe is better); the probe's F1 is "
                   f"{b['against_baseline']}. The baseline F1 comes from {ev.get('baseline_source')}; it was not "
                   "measured on these test articles.")
        else:
            w.para(("Against the fine-tuned classifier: no comparison. ", "b"),
                   "No fine-tuned classifier F1 is known for this dataset (baseline_f1 in config.yaml or the folder's "
                   "dataset.yaml, or evaluate.py --baseline-f1).")
        w.bullet("Best model and probe, chosen on validation log-loss (", (self.label(b["model"], b["probe"]), "b"),
                 f"): threshold {num(b['threshold'])}, " + self.f1_line(m) + ".")
        ref = ev.get("always_yes") or {}
        if ref:
            w.bullet(f"Reference: saying yes to every article gives F1 {num(ref.get('f1'))} (precision "
                     f"{num(ref.get('precision'))}, recall 1).")
        w.bullet("Which probe works best? Chosen on validation: "
                 + ", ".join(f"{p} for {n} of {len(self.models)} model(s)"
                             for p, n in findings.chosen_counts(ev).items()) + "; " + self.f1_overlaps() + ".")

    def f1_overlaps(self) -> str:
        pairs = [(m, cm) for v, c, cm in chosen(self.ev) for p, m in self.models[v]["probes"].items() if p != c]
        if not pairs:
            return "only one probe per model, nothing to compare"
        overlaps = sum(findings.overlap(m.get("f1_ci95"), cm.get("f1_ci95")) for m, cm in pairs)
        return f"in {overlaps} of {len(pairs)} comparisons with the other probes of the same model the F1 CIs overlap"

    def method(self):
        w, ev, tr = self.w, self.ev, self.inp.training
        w.heading("2. Method")
        n_train = n_val = None
        for entry in ((tr or {}).get("models") or {}).values():
            meta = next(iter(entry.values()), {})
            n_train, n_val = meta.get("n_train"), meta.get("n_val")
            break
        w.para(f"Dataset {self.inp.dataset}: {n_train if n_train is not None else '?'} training, "
               f"{n_val if n_val is not None else '?'} validation and {ev.get('n_test', '?')} test articles, each with "
               f"one 0/1 label '{ev['dimension_names'][0]}'. Validation articles choose every hyper-parameter (the "
               "logistic C, the MLP's stopping epoch, LightGBM's iterations: all on validation log-loss), each probe's "
               "threshold (the one that maximises validation F1) and the best model (lowest validation log-loss); test "
               "articles are only scored.")
        langs = ev.get("language_counts") or {}
        if langs:
            total = sum(langs.values()) or 1
            w.table("Languages of the test articles.", ["Language", "Test articles", "Share"],
                    [[lang, str(n), pct(n / total)] for lang, n in langs.items()], "lrr")
        rows = []
        for probe in dict.fromkeys(p for e in self.models.values() for p in e["probes"]):
            chosen_text = "; ".join(f"{v}: {describe_selected(e['probes'][probe].get('selected'))}"
                                    for v, e in self.models.items() if probe in e["probes"])
            rows.append([probe, self.probe_settings(probe), chosen_text])
        w.table("Probes: logistic regression (L2), the MLP with a binary cross-entropy loss and early stopping, "
                "LightGBM with the binary objective; settings and what validation chose.",
                ["Probe", "Settings", "Chosen on validation"], rows, "lll", font_pt=8)
        w.para(f"Random seed {ev.get('random_seed', self.cfg.random_seed)}; 95% confidence intervals from "
               f"{ev.get('bootstrap_samples', '?')} bootstrap resamples of the test articles. F1, precision and recall "
               "are of the yes class.")

    def results(self):
        w, ev = self.w, self.ev
        w.heading("3. Results")
        rows = [[v, p, num(m["val_log_loss"], 4), num(m["threshold"]), f"{num(m['f1'])} ({ci(m['f1_ci95'])})",
                 f"{num(m['precision'])} ({ci(m['precision_ci95'])})", f"{num(m['recall'])} ({ci(m['recall_ci95'])})",
                 f"{num(m['roc_auc'])} ({ci(m['roc_auc_ci95'])})"] for v, p, m in probe_entries(ev)]
        ref = ev.get("always_yes") or {}
        if ref:
            rows.append(["always yes", "—", "—", "—", f"{num(ref.get('f1'))} ({ci(ref.get('f1_ci95'))})",
                         num(ref.get("precision")), "1.000", "—"])
        if ev.get("baseline_f1"):
            rows.append(["fine-tuned classifier", "—", "—", "—", num(ev["baseline_f1"]), "—", "—", "—"])
        w.table(f"Test results on the {ev.get('n_test', '?')} test articles at each probe's threshold chosen on "
                f"validation, with 95% bootstrap CIs (evaluation JSON). Best on validation: "
                f"{self.label(self.best['model'], self.best['probe'])}.",
                ["Model", "Probe", "Val log-loss", "Threshold", "F1", "Precision", "Recall", "ROC AUC"], rows,
                "llrrrrrr", font_pt=8)
        if not self.inp.comparison_figures:
            w.unavailable("Comparison chart", "no comparison record was found (run compare_results.py).")
        self.place("cmp", ["f1_by_model"])
        picks = chosen(ev)
        langs = ev.get("language_counts") or {}
        if langs:
            w.table("Test F1 per language, for each model's probe chosen on validation (n: articles, yes: of them yes).",
                    ["Language", "n", "yes"] + [self.label(v, p) for v, p, _ in picks],
                    [[lang, str(n), str(((picks[0][2]["per_language"].get(lang)) or {}).get("positives", "—"))]
                     + [num((m["per_language"].get(lang) or {}).get("f1")) for _, _, m in picks]
                     for lang, n in langs.items()], "lrr" + "r" * len(picks), font_pt=8)
            small = [f"{lang} (n={n})" for lang, n in langs.items() if n < SMALL_GROUP]
            if small:
                w.para(("Few test articles: ", "i"), (", ".join(small) + f" — fewer than {SMALL_GROUP}; their F1 is a "
                                                     "rough indication only.", "i"))
        rows = []
        for v, p, m in picks:
            t = m.get("truncation") or {}
            cut, whole = t.get("truncated") or {}, t.get("not_truncated") or {}
            rows.append([v, p, str(t.get("max_tokens", "—")), f"{cut.get('n', 0)} ({cut.get('positives', 0)} yes)",
                         num(cut.get("f1")), f"{whole.get('n', 0)} ({whole.get('positives', 0)} yes)",
                         num(whole.get("f1"))])
        w.table("F1 of the articles cut at the model's max tokens and of the whole ones (probe chosen on validation); "
                "long articles differ in other ways too, so this is observational.",
                ["Model", "Probe", "Max tokens", "Cut", "F1 cut", "Whole", "F1 whole"], rows, "llrrrrr", font_pt=8)
        w.para("Left out for yes/no labels: MAE, per-dimension scores, success bands and the screening thresholds "
               "(analyses of 0-10 scores).")

    def error_analysis(self):
        w, errs = self.w, self.inp.errors
        w.heading("4. Error analysis")
        if not errs or errs.get("task") != "classification":
            w.unavailable("Error analysis", "no yes/no error summary was found "
                          f"({self.rel(paths.error_summary(self.cfg, self.inp.dataset))}); run analyze_error_distribution.py.")
            return
        models = errs.get("models") or {}
        w.table(f"Confusion counts at each model's validation threshold ({errs.get('probe', '?')} probe).",
                ["Model", "Threshold", "TP", "FP", "FN", "TN"],
                [[v, num(s["threshold"]), *(str(s["confusion"][k]) for k in ("tp", "fp", "fn", "tn"))]
                 for v, s in models.items()], "lrrrrr")
        target = self.best["model"] if self.best["model"] in models else next(iter(models), None)
        s = models.get(target) or {}
        for key, what in (("false_positives", "false positives (highest P(yes) among the true no)"),
                          ("false_negatives", "false negatives (lowest P(yes) among the true yes)")):
            rows = [[a["id"], a["language"], short(a["title"]), num(a["p_yes"])] for a in s.get(key) or []]
            if rows:
                w.table(f"The {len(rows)} most confident {what} of {target}.", ["Id", "Language", "Title", "P(yes)"],
                        rows, "lllr", font_pt=8)
        self.place("err")

    def limitations(self):
        w, ev = self.w, self.ev
        w.heading("5. Limitations")
        lo, hi = self.best["f1_ci95"]
        w.bullet(f"Test size: {ev.get('n_test', '?')} articles, {pct(ev.get('positive_rate'))} yes. The best probe's "
                 f"F1 CI is {num(hi - lo) if lo is not None else '?'} wide.")
        w.bullet("The threshold is chosen on validation to maximise F1; another operating point (a target precision "
                 "or recall) would give other precision/recall figures from the same probabilities (ROC AUC does not "
                 "depend on it).")
        if ev.get("baseline_f1"):
            w.bullet(f"Baseline: the fine-tuned F1 {num(ev['baseline_f1'])} comes from {ev.get('baseline_source')}; it "
                     "was not measured on these test articles.")
        for v in self.models:
            spec = self.run_cfg.embedding_models.get(self.models[v].get("model", v))
            if spec and spec.note and any(k in spec.note.lower() for k in ("english", "stand-in")):
                w.bullet(f"{v}: {spec.note}. Its results say nothing about multilingual quality.")
        w.bullet(f"One seed ({ev.get('random_seed', self.cfg.random_seed)}) and one validation split choose every "
                 "hyper-parameter and threshold; the variance across seeds is not measured.")


def write_report(cfg: Config, dataset: str, out: Path, benchmarks_of: str | None = None) -> dict:
    """Build the report of `dataset` into `out` (.docx, written atomically); returns what went in.
    A yes/no dataset (task: classification) gets `BinaryReport`."""
    inputs = load_inputs(cfg, dataset, benchmarks_of)
    return (BinaryReport if task(inputs.evaluation) == "classification" else Report)(cfg, inputs, out).build()
