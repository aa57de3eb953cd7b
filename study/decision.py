"""Page 1 of the report: one row per question of the study, answered in a fixed vocabulary.

Every answer word comes from a rule computed in phase 3 (study/verdicts.py, read into the
typed evaluation record of study/schemas.py): a paired comparison read against the equivalence
margin (better, worse, equivalent, inconclusive), the null result against the train-mean
predictor, the bands the test MAE's CI spans, the guaranteed screening threshold. Where the data
cannot answer, the row says "cannot be judged on this data" and why. Nothing here decides on a
point estimate alone, and nothing compares overlapping marginal intervals.
"""
from __future__ import annotations

from dataclasses import dataclass

from study.schemas import BenchmarkRecord, ScoreEvaluation, TrainingSummary, YesNoEvaluation
from study.findings import paired_figures, seed_spread
from study.formats import MISSING, ci as _ci_fmt, num as _f, pct as _pct, pct_ci as _pct_ci, signed as _s
from study.verdicts import band_phrase, bands_spanned

CANNOT = "cannot be judged on this data"
NULL = "no better than the training mean"
NULL_YES = "no better than saying yes to every article"


@dataclass
class Row:
    question: str
    answer: str          # a word of the vocabulary (or a band / a screening share), then why where it helps
    number: str          # the figure behind it, with its 95% CI
    evidence: str        # the report section that holds the evidence: a key of study/report.py SUBSECTIONS


def times(ratio_low: float, ratio_high: float) -> str:
    """A speed ratio range (ours against theirs, >1 = faster) in plain words, one rounding rule."""
    def r(x):
        return f"{x:.1f}" if x < 10 else f"{x:.0f}"
    if ratio_low >= 1:
        return f"{r(ratio_low)}–{r(ratio_high)} times faster" if r(ratio_low) != r(ratio_high) else f"{r(ratio_low)} times faster"
    if ratio_high <= 1:
        lo, hi = 1 / ratio_high, 1 / ratio_low
        return f"{r(lo)}–{r(hi)} times slower" if r(lo) != r(hi) else f"{r(lo)} times slower"
    return f"between {r(1 / ratio_low)} times slower and {r(ratio_high)} times faster"


def is_bge(variant: str, entry) -> bool:
    return "bge-m3" in variant.lower() or "bge-m3" in entry.model_name.lower()


# -- the rows of a score dataset ------------------------------------------------------------------
def _vs_mean(ev: ScoreEvaluation) -> Row:
    v, p, m = ev.best_entry()
    d = m.vs_mean_predictor
    answer = "better" if d.verdict == "better" else f"{NULL} ({d.verdict})"
    return Row("Does the best probe learn anything (against predicting the training mean)?", answer,
               f"{_s(d.mae_difference)} {_ci_fmt(d.difference_ci95, sign=True)} MAE, paired on {d.n_articles} articles "
               f"(margin ±{d.equivalence_margin:g})", "results")


def _gap(ev: ScoreEvaluation) -> Row:
    q = "Does the best probe close the gap to the fine-tuned model?"
    b = ev.best
    if not ev.baseline_mae:
        return Row(q, f"{CANNOT}: no fine-tuned baseline MAE (config baseline_mae, --baseline-mae or "
                      "--baseline-predictions)", f"test MAE {_f(b.test_mae)} {_ci_fmt(b.mae_ci95)}", "results")
    r = b.verdicts.vs_baseline
    how = "paired on the fine-tuned model's predictions" if r.paired else "unpaired, against its single MAE"
    answer = f"{b.verdicts.band_reading} (the whole CI read against the bands); against the baseline: {r.verdict}"
    return Row(q, answer, f"test MAE {_f(b.test_mae)} {_ci_fmt(b.mae_ci95)} against {_f(ev.baseline_mae)}; "
                          f"difference {_s(r.difference)} {_ci_fmt(r.ci95, sign=True)} ({how})", "results")


def _bge(ev: ScoreEvaluation) -> Row:
    q = "Does bge-m3 close the gap?"
    bge = [(v, p, m) for v, p, m in ev.chosen_entries() if is_bge(v, ev.models[v])]
    if not bge:
        return Row(q, f"{CANNOT}: bge-m3 was not evaluated", MISSING, "bge")
    v, p, m = min(bge, key=lambda c: c[2].val_mae)
    number = f"{v} + {p}: test MAE {_f(m.overall_mae)} {_ci_fmt(m.mae_ci95)}"
    if not ev.baseline_mae:
        return Row(q, f"{CANNOT}: no fine-tuned baseline MAE", number, "bge")
    return Row(q, band_phrase(bands_spanned(m.mae_ci95, ev.baseline_mae, ev.success_bands)), number, "bge")


def _truncation(ev: ScoreEvaluation) -> Row:
    q = "How much does truncation cost?"
    items = []
    for v, p, m in ev.chosen_entries():
        if m.vs_longest is not None:
            d = m.vs_longest
            items.append((f"{v} against {d.longest}", d))
        if m.vs_truncated is not None and m.vs_truncated.cut is not None:
            d = m.vs_truncated.cut
            items.append((f"{v} against {m.vs_truncated.truncated} on the cut articles", d))
    if not items:
        e = ev.models[ev.best.model]
        return Row(q, f"{CANNOT}: no truncation sweep (--max-tokens) or chunked twin (--chunks) was evaluated",
                   f"{_pct(e.truncated_fraction)} of test articles are cut at {e.max_tokens} tokens", "truncation")
    answer = "; ".join(f"{what}: {d.verdict}" for what, d in items)
    number = "; ".join(f"{_s(d.mae_difference)} {_ci_fmt(d.difference_ci95, sign=True)}" for _, d in items)
    return Row(q, answer, number + " MAE (paired)", "truncation")


def _probe(ev) -> Row:
    """Which probe? The chosen one against each other probe of the best model, by the paired rule (MAE for scores,
    F1 for yes/no labels; vs_chosen is the other probe minus the chosen one)."""
    v, chosen, m = ev.best_entry()
    q = "Which probe?"
    what = "MAE" if ev.task == "regression" else "F1"
    others = [(k, o.vs_chosen) for k, o in ev.models[v].probes.items() if k != chosen and o.vs_chosen is not None]
    if not others:
        value = m.overall_mae if ev.task == "regression" else m.f1
        return Row(q, f"{chosen} (the only probe evaluated for {v})", f"test {what} {_f(value)}", "probes")
    flip = {"worse": "better", "better": "worse"}
    answer = f"{chosen}, chosen on validation: " + "; ".join(
        f"{flip.get(d.verdict, d.verdict)} than {k}" if d.verdict in flip else f"{d.verdict} against {k}"
        for k, d in others)
    number = "; ".join(f"{k} − {chosen}: {_s(x)} {_ci_fmt(c, sign=True)}"
                       for k, (x, c) in ((k, paired_figures(ev, d)) for k, d in others))
    return Row(q, answer, number + f" {what} (paired)", "probes")


def _speed(ev, bench: BenchmarkRecord | None) -> Row:
    q = "How fast is Stage 1 (embedding + probe) against the fine-tuned model?"
    if bench is None:
        return Row(q, f"{CANNOT}: no speed benchmark (run benchmark_speed.py)", MISSING, "speed")
    v, p, _ = ev.best_entry()
    e2e = bench.end_to_end.get(v, {}).get(p)
    if not e2e or not e2e.get("speedup_vs_fine_tuned"):
        return Row(q, f"{CANNOT}: {v} + {p} was not benchmarked", MISSING, "speed")
    lo, hi = e2e["speedup_vs_fine_tuned"]
    ft = bench.fine_tuned_ms_per_article
    where = f"{bench.device}" + (f", {bench.device_name}" if bench.device_name else "")
    answer = times(lo, hi)
    if bench.device == "cpu":
        answer += " (CPU against the fine-tuned model's GPU figure: rerun benchmark_speed.py on a GPU to compare)"
    return Row(q, answer, f"{_f(e2e['ms_per_article'], 1)} ms/article ({where}) against {ft[0]:g}–{ft[1]:g} "
                          "ms/article (fine-tuned, config)", "speed")


def _screening(ev: ScoreEvaluation) -> Row:
    """One row for every recall target, of the probe page 1 quotes (the best, chosen on validation)."""
    v, p, m = ev.best_entry()
    min_n = ev.config.get("min_group_articles", 30)
    targets = " / ".join(f"{t.target_recall:.0%}" for t in m.screening.thresholds)
    q = f"What share can skip the fine-tuned model, keeping {targets or 'most'} of medium+ articles?"
    if not m.screening.thresholds:
        return Row(q, f"{CANNOT}: no recall target was screened (config screening_recall)", MISSING, "screening")
    answers, numbers = [], []
    for t in m.screening.thresholds:
        g, head = t.guaranteed, f"{t.target_recall:.0%}"
        test = g.test or t.test
        below = (test.n - test.n_relevant) if test else None
        why = [f"only {below} of {test.n} test articles below medium"] if below is not None and below < min_n else []
        if not g.certified:   # the count it needs, per target; the count there is, once (below)
            why.append(f"a guarantee needs {g.articles_needed} medium+ validation articles" if g.articles_needed
                       else g.note)
        if why:
            answers.append((head, f"{CANNOT} ({'; '.join(why)})"))
            numbers.append((head, f"plug-in {_pct(t.test.skip_share)} skip, no guarantee" if t.test else MISSING))
        else:
            flag = ", recall below the target on test" if g.test.recall_below_target else ""
            answers.append((head, f"{_pct(g.test.skip_share)} skip (guaranteed at {g.confidence:.0%} "
                                  f"confidence{flag})"))
            numbers.append((head, f"skip {_pct_ci(g.test.skip_share_exact_ci95)}, recall {_pct(g.test.recall)} "
                                  f"{_pct_ci(g.test.recall_exact_ci95)}"))
    answers, numbers = _grouped(answers), _grouped(numbers)
    return Row(q, "; ".join(answers), "; ".join(numbers) + f" ({v} + {p}, {m.screening.thresholds[0].n_relevant_val} "
               "medium+ validation articles)", "screening")


def _grouped(parts: list[tuple[str, str]]) -> list[str]:
    """'99% / 98%: same text' for consecutive targets whose text is the same."""
    out: list[tuple[list[str], str]] = []
    for head, text in parts:
        if out and out[-1][1] == text:
            out[-1][0].append(head)
        else:
            out.append(([head], text))
    return [f"{' / '.join(heads)}: {text}" for heads, text in out]


def score_rows(ev: ScoreEvaluation, bench: BenchmarkRecord | None) -> list[Row]:
    return [_vs_mean(ev), _gap(ev), _bge(ev), _truncation(ev), _probe(ev), _speed(ev, bench), _screening(ev)]


# -- the rows of a yes/no dataset --------------------------------------------------------------------
def yes_no_rows(ev: YesNoEvaluation, bench: BenchmarkRecord | None) -> list[Row]:
    v, p, m = ev.best_entry()
    d = m.vs_always_yes
    rows = [Row("Does the best probe learn anything (against saying yes to every article)?",
                "better" if d.verdict == "better" else f"{NULL_YES} ({d.verdict})",
                f"F1 {_s(d.difference)} {_ci_fmt(d.ci95, sign=True)}, paired (margin ±{d.margin:g})", "results")]
    q = "Is the best probe as good as the fine-tuned classifier?"
    r = ev.best.verdicts.vs_baseline
    if r is None:
        rows.append(Row(q, f"{CANNOT}: no fine-tuned baseline F1 (config baseline_f1 or --baseline-f1)",
                        f"test F1 {_f(m.f1)} {_ci_fmt(m.f1_ci95)}", "results"))
    else:
        rows.append(Row(q, f"{r.verdict} (unpaired, against its single F1)",
                        f"test F1 {_f(m.f1)} {_ci_fmt(m.f1_ci95)} against {_f(ev.baseline_f1)}", "results"))
    rows += [_probe(ev), _speed(ev, bench)]
    return rows


# -- the rest of page 1 -------------------------------------------------------------------------------
def verdict_sentence(ev, rows: list[Row]) -> str:
    v, p, m = ev.best_entry()
    if ev.best.verdicts.null_result:
        return (f"Do not replace the fine-tuned model on this evidence: the best model + probe ({v} + {p}) is "
                f"{ev.best.verdicts.null_result} on these test articles.")
    if ev.task == "regression":
        if not ev.baseline_mae:
            return (f"{v} + {p} learns the scores (better than the training mean), but without a fine-tuned baseline "
                    "the replacement question cannot be answered.")
        r = ev.best.verdicts.vs_baseline
        return (f"{v} + {p}: {ev.best.verdicts.band_reading}; against the fine-tuned model it is {r.verdict} "
                f"({'paired' if r.paired else 'unpaired'} comparison, margin ±{r.margin:g} MAE).")
    r = ev.best.verdicts.vs_baseline
    return (f"{v} + {p} beats saying yes to every article" + (f"; against the fine-tuned classifier: {r.verdict}."
                                                             if r else "; no fine-tuned F1 to compare with."))


def data_line(ev, training: TrainingSummary | None) -> str:
    n_train = n_val = None
    if training is not None:
        rec = training.models.get(ev.best.model, {}).get(ev.best.probe)
        n_train, n_val = (rec.n_train, rec.n_val) if rec else (None, None)
    langs = ", ".join(f"{k} {n}" for k, n in sorted(ev.language_counts.items(), key=lambda kv: -kv[1])[:8])
    split = (f"{n_train} training, {n_val} validation and {ev.n_test} test articles" if n_train is not None
             else f"{ev.n_test} test articles")
    return f"Data: {split}; test languages {langs}."


def caveats(ev) -> list[str]:
    n = ev.best.verdicts.candidates
    out = [f"The best was chosen on validation among {n} model + probe pairs: its validation score is optimistic, the "
           "test figure is the estimate; each comparison is a 95% test, not adjusted for the number made."]
    n, sd = seed_spread(ev)
    if sd is not None:
        out.append(f"The MLP and LightGBM probes are {n}-seed ensembles: across seeds a single seed's test score has an "
                   f"SD of up to {sd:.3f}; the ensemble averages that noise, the CIs do not include it.")
    elif any(k in ("mlp", "lightgbm") for _, k, _ in ev.entries()):
        out.append("Each probe was fitted with one seed: the MLP's and LightGBM's training noise is in no interval "
                   "here, so a difference of the size of the margin between them may be seed noise.")
    stand_in = sorted({v for v, e in ev.models.items() if e.model_name.startswith("python-package:")})
    if stand_in:
        out.append(f"{', '.join(stand_in)} is an English-only stand-in model, not one of the study's multilingual "
                   "models: the numbers show the pipeline, not the answer for them.")
    else:
        out.append("Speed figures depend on the machine that ran the benchmark (named in its row).")
    return out[:3]
