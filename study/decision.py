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
from study import languages
from study.tasks import ARM
from study.findings import controls, layer_curves, teacher_rows, margin as findings_margin, min_articles, paired_figures, seed_spread, study_models, undeclared
from study.formats import MISSING, ci as _ci_fmt, num as _f, pct as _pct, pct_ci as _pct_ci, signed as _s
from study.verdicts import (ALWAYS_YES, CONSTANT, WORSE, band_phrase, bands_spanned, multiplicity_note,
                            reading_phrase, unpaired_note)

CANNOT = "cannot be judged on this data"   # only for a limit of the data; a step not run says not_run()

# page 1's decision words
REPLACE, STAGE1, KEEP, UNDECIDED = ("Replace the fine-tuned model", "Use the probe as Stage 1 (screening)",
                                    "Keep the fine-tuned model", "Not decidable from this run")


def not_run(command: str) -> str:
    """A page-1 answer for a step this run did not take: how to take it."""
    return f"not run (to answer it: {command})"


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
    d, mean, pooled = m.vs_median_predictor, m.vs_mean_predictor, m.resplits
    where = f"paired on {d.n_articles} articles"
    if pooled:   # the re-splits carry the verdict (study/resplits.py); the test split's is shown beside
        one = d
        d, s = pooled.vs_median_predictor, pooled.difference_spread
        where = (f"pooled over {pooled.k} re-splits of all {d.n_articles} labelled articles (per split "
                 f"{_s(s.mean)} ± {_f(s.sd)}); the test split alone {_s(one.mae_difference)} "
                 f"{_ci_fmt(one.difference_ci95, sign=True)} ({one.verdict})")
    answer = reading_phrase(d.verdict, CONSTANT, ci=d.difference_ci95, n=d.n_articles, margin=d.equivalence_margin)
    return Row(f"Does the best probe learn anything (against {CONSTANT})?", answer,
               f"{_s(d.mae_difference)} {_ci_fmt(d.difference_ci95, sign=True)} MAE, {where} "
               f"(margin ±{d.equivalence_margin:g}); against the training mean {_s(mean.mae_difference)} "
               f"{_ci_fmt(mean.difference_ci95, sign=True)} ({mean.verdict})", "results")


def _gap(ev: ScoreEvaluation) -> Row:
    q = "Does the best probe close the gap to the fine-tuned model?"
    b = ev.best
    if not ev.baseline_mae:
        return Row(q, f"{CANNOT}: no fine-tuned baseline MAE (config baseline_mae, --baseline-mae or "
                      "--baseline-predictions)", f"test MAE {_f(b.test_mae)} {_ci_fmt(b.mae_ci95)}", "results")
    r = b.verdicts.vs_baseline
    how = "paired on the fine-tuned model's predictions" if r.paired else unpaired_note(r)
    answer = (f"{b.verdicts.band_reading} (the whole CI read against the bands); "
              + reading_phrase(r.verdict, "the fine-tuned model", ci=r.ci95, n=ev.n_test, margin=r.margin))
    return Row(q, answer, f"test MAE {_f(b.test_mae)} {_ci_fmt(b.mae_ci95)} against {_f(ev.baseline_mae)}; "
                          f"difference {_s(r.difference)} {_ci_fmt(r.ci95, sign=True)} ({how})", "results")


def _bge(ev: ScoreEvaluation) -> Row:
    q = "Does bge-m3 close the gap?"
    bge = [(v, p, m) for v, p, m in ev.chosen_entries() if is_bge(v, ev.models[v])]
    if not bge:
        return Row(q, not_run(f"run_all.py --dataset {ev.dataset} --models bge-m3"), MISSING, "bge")
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
        longer = ", ".join(f"{_pct(share)} longer than {t}" for t, share in (e.longer_than or {}).items())
        return Row(q, not_run(f"run_all.py --dataset {ev.dataset} --models {e.model} --max-tokens 128 {e.max_tokens}"
                              if e.max_tokens > 128 else f"run_all.py --dataset {ev.dataset} --models {e.model} --chunks"),
                   f"{_pct(e.truncated_fraction)} of test articles cut at {e.max_tokens} tokens"
                   + (f"; {longer} (its tokenizer)" if longer else ""), "truncation")
    answer = "; ".join(f"{what}: {d.verdict}" for what, d in items)
    number = "; ".join(f"{_s(d.mae_difference)} {_ci_fmt(d.difference_ci95, sign=True)}" for _, d in items)
    return Row(q, answer, number + " MAE (paired)", "truncation")


def _layers(ev: ScoreEvaluation) -> Row | None:
    """Does a middle layer beat the last? Only where a layer sweep ran: the layer chosen on validation against the
    sweep's highest layer, same probe, by the paired rule (`vs_last`)."""
    curves = layer_curves(ev)
    if not curves:
        return None
    answers, numbers = [], []
    for c in curves.values():
        best, last = c["chosen"], c["last"]
        if best is last:
            answers.append(f"{last['variant']}: no, the last layer is chosen on validation")
            numbers.append(f"{last['variant']} + {last['probe']}: test MAE {_f(last['mae'])} {_ci_fmt(last['ci'])}")
            continue
        d = best["vs_last"]
        answers.append(f"{best['variant']} (chosen on validation) against {last['variant']}: "
                       + (d.verdict if d is not None else f"{CANNOT}: not paired (different probes)"))
        numbers.append(f"{best['variant']} + {best['probe']}: test MAE {_f(best['mae'])} {_ci_fmt(best['ci'])}"
                       + (f"; − last {_s(d.mae_difference)} {_ci_fmt(d.difference_ci95, sign=True)} MAE (paired)"
                          if d is not None else ""))
    return Row("Does a middle layer beat the last?", "; ".join(answers), "; ".join(numbers), "probes")


def _teacher(ev: ScoreEvaluation) -> Row | None:
    """Do the fine-tuned model's scores help train the probe? Only where a teacher variant ran: its probe chosen on
    validation against the same probe trained on labels only, by the paired rule (`vs_label_only`)."""
    rows = [r for r in teacher_rows(ev) if r["probe"] == ev.models[r["variant"]].chosen_probe]
    if not rows:
        return None
    answer = "; ".join(f"{r['variant']} + {r['probe']} against {r['label_only']}: {r['vs'].verdict}" for r in rows)
    number = "; ".join(f"{_s(r['vs'].mae_difference)} {_ci_fmt(r['vs'].difference_ci95, sign=True)} MAE (paired; "
                       f"{r['teacher'].n_teacher} teacher-scored articles, weight {r['teacher'].weight:g})" for r in rows)
    return Row("Do the fine-tuned model's scores help train the probe?", answer, number, "probes")


def _probe(ev) -> Row:
    """Which probe? The chosen one against each other probe of the best model, by the paired rule (MAE for scores,
    F1 for yes/no labels; vs_chosen is the other probe minus the chosen one)."""
    v, chosen, m = ev.best_entry()
    q = "Which probe?"
    what = "MAE" if ev.task == "regression" else "F1"
    def pooled(o):   # the re-splits' pooled difference carries the verdict where they ran (study/resplits.py)
        r = getattr(o, "resplits", None)
        return r.vs_chosen if r is not None and r.vs_chosen is not None else o.vs_chosen

    others = [(k, pooled(o)) for k, o in ev.models[v].probes.items()
              if k not in (chosen, ARM) and o.vs_chosen is not None]
    resplit = getattr(ev, "resplits", None) if any(pooled(o) is not o.vs_chosen for o in ev.models[v].probes.values()) \
        else None
    if not others:
        value = m.overall_mae if ev.task == "regression" else m.f1
        return Row(q, f"{chosen} (the only probe evaluated for {v})", f"test {what} {_f(value)}", "probes")
    flip = {"worse": "better", "better": "worse"}   # vs_chosen is the other minus the chosen: its verdict turned
    answer = f"{chosen}, chosen on validation: " + "; ".join(
        reading_phrase(flip.get(d.verdict, d.verdict), k, margin=findings_margin(ev)) for k, d in others)
    number = "; ".join(f"{k} − {chosen}: {_s(x)} {_ci_fmt(c, sign=True)}"
                       for k, (x, c) in ((k, paired_figures(ev, d)) for k, d in others))
    return Row(q, answer, number + f" {what} (paired" + (f", pooled over {resplit.k} re-splits of all {resplit.n_articles} "
                                                          "labelled articles)" if resplit else ")"), "probes")


def _speed(ev, bench: BenchmarkRecord | None) -> Row:
    q = "How fast is Stage 1 (embedding + probe) against the fine-tuned model?"
    if bench is None:
        return Row(q, not_run(f"benchmark_speed.py --dataset {ev.dataset}, on the GPU server"), MISSING, "speed")
    v, p, _ = ev.best_entry()
    e2e = bench.stage1(v, p)
    ft = bench.fine_tuned_ms_per_article
    note = ""
    if e2e is not None:
        ms, (lo, hi) = e2e.ms_per_article, e2e.speedup_vs_fine_tuned
    else:
        speed = bench.speed(v)
        if speed is None or not speed.articles_per_s or not ft:
            return Row(q, not_run(f"benchmark_speed.py --dataset {ev.dataset} --models {v}"), MISSING, "speed")
        ms = 1000.0 / speed.articles_per_s   # the benchmark timed the model on another dataset's probes: embedding only
        lo, hi, note = ft[0] / ms, ft[1] / ms, f" (embedding only: the {p} probe was not timed; a probe adds well under 1 ms)"
    where = f"{bench.device}" + (f", {bench.device_name}" if bench.device_name else "")
    answer = times(lo, hi) + note
    if bench.device == "cpu":
        answer += " (CPU against the fine-tuned model's GPU figure: rerun benchmark_speed.py on a GPU to compare)"
    return Row(q, answer, f"{_f(ms, 1)} ms/article ({where}) against {ft[0]:g}–{ft[1]:g} "
                          "ms/article (fine-tuned, config)", "speed")


def _screening(ev: ScoreEvaluation) -> Row:
    """One row for every recall target, of the probe page 1 quotes (the best, chosen on validation)."""
    v, p, m = ev.best_entry()
    min_n = min_articles(ev)
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
            numbers.append((head, f"plug-in {_pct(t.test.skip_share)} skip, no guarantee: kept "
                                  f"{t.test.n_kept_relevant} of {t.test.n_relevant} medium+ test articles "
                                  f"(recall {_pct(t.test.recall)})" if t.test else MISSING))
        else:
            flag = (", recall below the target on test" if g.test.recall_below_target else
                    ", this one test split's recall below the target, its CI reaching it (possible while the guarantee "
                    "holds)" if g.test.recall is not None and g.test.recall < t.target_recall else "")
            seeds = g.seed_spread
            answers.append((head, f"{_pct(g.test.skip_share)} skip (guaranteed at {g.confidence:.0%} "
                                  f"confidence{flag})"))
            numbers.append((head, f"skip {_pct_ci(g.test.skip_share_exact_ci95)}"
                                  + (f" (each seed alone {_pct(seeds.mean)} ± {_pct(seeds.sd)})"
                                     if seeds is not None and seeds.sd is not None else "")
                                  + f", recall {_pct(g.test.recall)} {_pct_ci(g.test.recall_exact_ci95)}"))
    needs = [t.guaranteed.articles_needed for t in m.screening.thresholds]
    if all(a.startswith(f"{CANNOT} (a guarantee needs ") and ";" not in a for _, a in answers) and all(needs):
        answers = [(" / ".join(h for h, _ in answers), f"{CANNOT} (a guarantee needs "
                    f"{' / '.join(map(str, needs))} medium+ validation articles)")]   # said once for every target
    answers, numbers = _grouped(answers), _grouped(numbers)
    short = screening_shortfalls(ev)
    if short:   # the target is kept overall, not for every language
        answers.append("not for every language: " + "; ".join(short))
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


def _languages(ev: ScoreEvaluation) -> Row:
    """Does every language work? The best model's probe per test language against the constant reference, by the
    paired rule; a language below min_group_articles is too few to judge. "yes" only where no language falls short
    of the fine-tuned model either (`lagging_languages`, said under the decision line); with its predictions each
    language's paired difference from it is shown too."""
    q = "Does every language work?"
    v, p, m = ev.best_entry()
    by = m.by_language or {}
    if not by:
        return Row(q, f"{CANNOT}: no per-language record (rerun evaluate.py)", MISSING, "languages")
    if len(by) == 1:
        lang = next(iter(by))
        return Row(q, f"{CANNOT}: every test article is {languages.name(lang)} ({lang})", MISSING, "languages")
    groups: dict[str, list[str]] = {}
    for lang, r in by.items():
        groups.setdefault("too few to judge" if r.too_few else r.vs_reference.verdict, []).append(lang)
    judged = [k for k in groups if k != "too few to judge"]
    lagging = [lang for lang, _ in lagging_languages(ev)]
    if ev.best.control:
        head = "not for this model: a control (the banner above)"
    elif judged and all(k == "better" for k in judged) and lagging:
        head = "not everywhere"
    elif judged and all(k == "better" for k in judged):
        head = "yes" if "too few to judge" not in groups else "yes where there are enough articles"
    elif any(k in ("worse", "equivalent") for k in judged):
        head = "no"
    else:
        head = "not shown"
    words = {k: reading_phrase(k, CONSTANT) for k in ("better", "worse", "equivalent", "inconclusive")}
    answer = f"{head}: " + "; ".join(f"{', '.join(langs)}: {words.get(k, k)}" for k, langs in groups.items())
    if lagging:   # none for a control
        answer += f"; {', '.join(lagging)}: short of the fine-tuned model (under the decision)"
    tuned = any(r.vs_baseline is not None for r in by.values())   # --baseline-predictions: per language too
    number = "; ".join(f"{lang} (n {r.n}) MAE {_f(r.mae)} {_ci_fmt(r.mae_ci95)}, {_s(r.vs_reference.mae_difference)} "
                       f"{_ci_fmt(r.vs_reference.difference_ci95, sign=True)}"
                       + (f", {_s(r.vs_baseline.mae_difference)} {_ci_fmt(r.vs_baseline.difference_ci95, sign=True)}"
                          if r.vs_baseline is not None else "")
                       for lang, r in by.items() if not r.too_few)   # each language's own MAE: one may lag the rest
    against = f"against {CONSTANT}" + (" and against the fine-tuned model" if tuned else "")
    return Row(q, answer, (number + f" (test MAE, then {against}, paired), {v} + {p}") if number else MISSING,
               "languages")


def _finetuned(ev: ScoreEvaluation) -> Row:
    """The third arm: the fine-tuned encoder with the lowest validation MAE, its band (whole CI) and against the
    best frozen model + probe, paired."""
    q = "Does a fine-tuned small encoder close the gap?"
    arms = [(v, e.probes[ARM]) for v, e in ev.models.items() if ARM in e.probes]
    if not arms:
        return Row(q, not_run(f"run_all.py --dataset {ev.dataset} --finetune {ev.best.model}"),
                   MISSING, "results")
    v, m = min(arms, key=lambda a: a[1].val_mae)
    d = m.vs_best
    band = band_phrase(bands_spanned(m.mae_ci95, ev.baseline_mae, ev.success_bands)) if ev.baseline_mae else \
        "no baseline to read bands against"
    against = f"against the best frozen probe: {d.verdict}" if d is not None else "it is the best model"
    return Row(q, f"{band}; {against}", f"{v}: test MAE {_f(m.overall_mae)} {_ci_fmt(m.mae_ci95)}"
               + (f"; − {ev.best.model} + {ev.best.probe}: {_s(d.mae_difference)} "
                  f"{_ci_fmt(d.difference_ci95, sign=True)} (paired)" if d is not None else ""), "results")


def _tiers(ev: ScoreEvaluation) -> Row:
    """Tier accuracy of the best probe beside saying the training's majority tier for every article: the numbers
    with their exact CIs, no verdict word (the two are not compared by the paired rule)."""
    v, p, m = ev.best_entry()
    a, ref = m.article_scores, ev.mean_predictor.majority_tier
    return Row("How often is an article put in the right tier?",
               f"{_pct(a.tier_accuracy)}, against {_pct(ref.accuracy)} for always '{ref.tier}' (the training's "
               "majority tier); not tested",
               f"{_pct_ci(a.tier_accuracy_exact_ci95)} against {_pct_ci(ref.accuracy_exact_ci95)} (exact CIs)",
               "screening")


def score_rows(ev: ScoreEvaluation, bench: BenchmarkRecord | None) -> list[Row]:
    return [_vs_mean(ev), _gap(ev), _languages(ev), _bge(ev), _truncation(ev), *filter(None, [_layers(ev), _teacher(ev)]), _probe(ev), _finetuned(ev),
            _speed(ev, bench), _screening(ev), _tiers(ev)]


# -- the rows of a yes/no dataset --------------------------------------------------------------------
def yes_no_rows(ev: YesNoEvaluation, bench: BenchmarkRecord | None) -> list[Row]:
    v, p, m = ev.best_entry()
    d = m.vs_always_yes
    rows = [Row(f"Does the best probe learn anything (against {ALWAYS_YES})?",
                reading_phrase(d.verdict, ALWAYS_YES, ci=d.ci95, n=ev.n_test, margin=d.margin),
                f"F1 {_s(d.difference)} {_ci_fmt(d.ci95, sign=True)}, paired (margin ±{d.margin:g})", "results")]
    q = "Is the best probe as good as the fine-tuned classifier?"
    r = ev.best.verdicts.vs_baseline
    if r is None:
        rows.append(Row(q, f"{CANNOT}: no fine-tuned baseline F1 (config baseline_f1 or --baseline-f1)",
                        f"test F1 {_f(m.f1)} {_ci_fmt(m.f1_ci95)}", "results"))
    else:
        rows.append(Row(q, f"{reading_phrase(r.verdict, 'the fine-tuned classifier', ci=r.ci95, n=ev.n_test, margin=r.margin)}"
                           f" ({unpaired_note(r)})",
                        f"test F1 {_f(m.f1)} {_ci_fmt(m.f1_ci95)} against {_f(ev.baseline_f1)}", "results"))
    rows += [_probe(ev), _speed(ev, bench)]
    return rows


# -- the rest of page 1 -------------------------------------------------------------------------------
def banner(ev) -> str | None:
    """When no model that reads every test language ran: why this run is not valid for the decision."""
    if not ev.best.control:
        return None
    reasons = list(dict.fromkeys(controls(ev).values()))
    return (f"Not valid for this decision: {'; '.join(reasons)}. No model that reads every test language was "
            "evaluated, so nothing on this page answers the study's question; the figures show the pipeline and "
            "what an English-only model loses.")


def decision(ev) -> tuple[str, str]:
    """(the decision word, its reason): Replace the fine-tuned model / Use the probe as Stage 1 / Keep the
    fine-tuned model / Not decidable from this run. It follows from the recorded verdicts of the best model that
    reads every test language: no better than a constant -> keep; the worst band its test MAE's CI allows:
    closes the gap -> replace, partial -> Stage 1, no improvement -> keep. It is 'not decidable' when only
    controls ran, when the comparison with a constant is inconclusive, without a fine-tuned baseline, or when
    none of the study's models ran (then the reason says what this run's evidence points to)."""
    word, why = evidence_decision(ev)
    ran, _ = study_models(ev)
    if not ran and word != UNDECIDED:
        return UNDECIDED, f"none of the study's models ran; on this run's evidence alone: {word.lower()} ({why})"
    return word, why


def evidence_decision(ev) -> tuple[str, str]:
    """`decision` on this run's evidence alone, whether or not the study's own models ran."""
    if ev.best.control:
        return UNDECIDED, "only models that do not read every test language ran (the banner above)"
    v, p, m = ev.best_entry()
    verdicts = ev.best.verdicts
    if ev.task == "classification":
        return _yes_no_decision(ev)
    ref = verdicts.vs_median_predictor
    if ref in ("equivalent", "worse", "inconclusive"):
        word = KEEP if ref != "inconclusive" else UNDECIDED
        why = f"the best probe ({v} + {p}) is {reading_phrase(ref, CONSTANT)}"
    elif not ev.baseline_mae:
        word, why = UNDECIDED, "no fine-tuned baseline MAE to compare with (--baseline-mae or --baseline-predictions)"
    else:
        worst, r = verdicts.bands_spanned[-1], verdicts.vs_baseline
        word = {"closes the gap": REPLACE, "partial": STAGE1}.get(worst, KEEP)
        how = "paired" if r.paired else "unpaired" + ("" if getattr(r, "baseline_n", None) else
                                                       ", descriptive: --baseline-n makes it a test")
        why = (f"{v} + {p}: {verdicts.band_reading} (the whole 95% CI of its test MAE against the bands); against "
               f"the fine-tuned model {r.verdict} ({how}, margin ±{r.margin:g} MAE)")
    return word, why


def _yes_no_decision(ev) -> tuple[str, str]:
    v, p, m = ev.best_entry()
    verdicts = ev.best.verdicts
    if verdicts.vs_always_yes != "better":
        word = KEEP if verdicts.vs_always_yes != "inconclusive" else UNDECIDED
        why = f"the best probe ({v} + {p}) is {reading_phrase(verdicts.vs_always_yes, ALWAYS_YES)}"
    elif verdicts.vs_baseline is None:
        word, why = UNDECIDED, "no fine-tuned baseline F1 to compare with (--baseline-f1)"
    else:
        r = verdicts.vs_baseline.verdict
        word = {"better": REPLACE, "equivalent": REPLACE, "worse": KEEP}.get(r, UNDECIDED)
        why = f"{v} + {p} against the fine-tuned classifier's F1: {r} (unpaired)"
    return word, why


def scope_line(ev) -> str:
    """What this run can decide: which of the study's models ran, the others and the controls, where the baseline
    comes from and whether a learning curve ran (the split sizes: `data_line`)."""
    ran, missing = study_models(ev)
    parts = [f"the study's models run: {len(ran)} of {len(ran) + len(missing)}"
             + (f" ({', '.join(ran)})" if ran else "") + (f"; not run: {', '.join(missing)}" if missing else "")]
    others = [v for v, e in ev.models.items() if not set(e.model.split("+")) & set(ran) and not e.control]
    if others:
        parts.append(f"also run: {', '.join(others)} (not study models; their notes: annex E)")
    ctl = controls(ev)
    if ctl:
        parts.append("controls, never the answer: " + ", ".join(ctl))
    blind = undeclared(ev)
    if blind:
        parts.append(f"languages not declared (config `languages`): {', '.join(blind)}")
    if ev.task == "regression":
        if ev.baseline is not None:
            parts.append(f"baseline measured on {ev.baseline.n_articles} of these test articles (its predictions)")
        elif ev.baseline_mae:
            parts.append(f"baseline {_f(ev.baseline_mae, 2)} given ({ev.baseline_source}), not measured on these "
                         "test articles")
        else:
            parts.append("no fine-tuned baseline")
    elif ev.baseline_f1:
        parts.append(f"baseline F1 {_f(ev.baseline_f1)} given ({ev.baseline_source}), not measured here")
    if ev.task == "regression":
        curve = any(m.learning_curve for _, _, m in ev.entries())
        parts.append("learning curve run" if curve else "learning curve " + not_run(
            f"run_all.py --dataset {ev.dataset} --train-fractions 0.25 0.5 1.0"))
    return "Scope: " + "; ".join(parts) + "."

def data_line(ev, training: TrainingSummary | None) -> str:
    n_train = n_val = rec = None
    if training is not None:
        rec = training.probe(ev.best.model, ev.best.probe)
        n_train, n_val = (rec.n_train, rec.n_val) if rec else (None, None)
    langs = ", ".join(f"{k} {n}" for k, n in sorted(ev.language_counts.items(), key=lambda kv: -kv[1])[:8])
    if rec is not None and rec.teacher is not None:   # the best was trained on teacher-scored articles too
        n_train = f"{rec.teacher.n_labelled} labelled + {rec.teacher.n_teacher} teacher-scored"
    split = (f"{n_train} training, {n_val} validation and {ev.n_test} test articles" if n_train is not None
             else f"{ev.n_test} test articles")
    return f"Data: {split}; test languages {langs}."


def lagging_languages(ev) -> list[tuple[str, str]]:
    """[(language, what shows it)]: the test languages where the best model + probe is shown to fall short of the
    fine-tuned model. With its predictions (paired): the language's own paired difference is "worse". With its
    overall MAE only: the language's own test MAE has its whole 95% CI above that MAE. [] without a fine-tuned
    baseline, for a control (said in the banner), and where the best is worse overall (then no language is news)."""
    base, vb = ev.baseline_mae, ev.best.verdicts.vs_baseline
    if not base or not vb or ev.best.control or vb.verdict == WORSE:
        return []
    _, _, m = ev.best_entry()
    out = []
    for lang, r in (m.by_language or {}).items():
        mae = f"{lang} ({languages.name(lang)}, n {r.n}): test MAE {_f(r.mae)} {_ci_fmt(r.mae_ci95)}"
        d = r.vs_baseline
        if vb.paired and d is not None and d.verdict == WORSE:
            out.append((lang, f"{mae}, − fine-tuned {_s(d.mae_difference)} {_ci_fmt(d.difference_ci95, sign=True)} "
                              f"on its {d.n_articles} articles the fine-tuned model scored"))
        elif not vb.paired and not r.too_few and r.mae_ci95[0] is not None and r.mae_ci95[0] > base:
            out.append((lang, mae))
    return out


def screening_shortfalls(ev) -> list[str]:
    """The best model + probe's guaranteed screening thresholds, per test language with at least min_group_articles
    test articles: where the exact 95% CI of the recall of that language's medium+ articles lies wholly below the
    target (the threshold keeps the target overall, not for that language). One text per language and target."""
    _, _, m = ev.best_entry()
    out = []
    for t in m.screening.thresholds:
        for lang, r in (t.guaranteed.per_language or {}).items():
            if r.recall_below_target and r.n >= min_articles(ev):
                out.append(f"{lang} ({languages.name(lang)}) keeps {r.n_kept_relevant} of its {r.n_relevant} medium+ "
                           f"test articles at the {t.target_recall:.0%} threshold: recall {_pct(r.recall)} "
                           f"{_pct_ci(r.recall_exact_ci95)}, and {_pct(r.skip_share)} of its {r.n} articles skip the "
                           "fine-tuned model")
    return out


def language_lines(ev) -> list[str]:
    """The console's lines (evaluate.py, compare_results.py) naming what page 1 says under its decision and in its
    screening answer: each language where the best falls short of the fine-tuned model, or where a guaranteed
    screening threshold misses its target of that language's medium+ articles."""
    lagging = lagging_languages(ev)
    why = ("" if not lagging else ": worse (paired)" if ev.best.verdicts.vs_baseline.paired else
           f", its whole 95% CI above the fine-tuned model's overall MAE {ev.baseline_mae:g}")
    return ([f"short of the fine-tuned model: {text}{why}" for _, text in lagging]
            + [f"screening, not for every language: {text}" for text in screening_shortfalls(ev)])


def language_gap(ev) -> str | None:
    """Page 1's caveat under the decision line: the languages of `lagging_languages`, and why the overall answer does
    not carry to their articles; None when there are none."""
    lagging = lagging_languages(ev)
    screen = screening_shortfalls(ev) if evidence_decision(ev)[0] == STAGE1 else []
    said = "; ".join(text for _, text in lagging)
    if not lagging:
        out = None
    elif ev.best.verdicts.vs_baseline.paired:
        out = (f"{said}: worse than the fine-tuned model on these articles (paired on its own predictions, read "
               f"against ±{findings_margin(ev):g} MAE), so the overall answer does not carry to them.")
    else:
        out = (f"{said}: the whole 95% CI lies above the fine-tuned model's overall MAE {ev.baseline_mae:g}, so the "
               "overall answer does not carry to these articles. The fine-tuned model's own MAE on them is unknown: "
               "give --baseline-predictions to compare per language, paired.")
    if screen:   # the decision is a screen: a language whose medium+ articles it does not keep
        out = ((out + " ") if out else "") + ("As a screen: " + "; ".join(screen)
                                              + " (the exact 95% CI wholly below the target; 2.7).")
    return out


def caveats(ev, bench: BenchmarkRecord | None = None) -> list[str]:
    n = ev.best.verdicts.candidates
    out = [f"The best was chosen on validation among {n} model + probe pairs: its validation score is optimistic, the "
           f"test figure is the estimate; {multiplicity_note(ev.multiplicity)}"]
    n, sd = seed_spread(ev)
    if sd is not None:
        out.append(f"The MLP and LightGBM probes are {n}-seed ensembles: across seeds a single seed's test score has an "
                   f"SD of up to {sd:.3f}; the ensemble averages that noise, the CIs do not include it.")
    elif any(k in ("mlp", "lightgbm") for _, k, _ in ev.entries()):
        out.append("Each probe was fitted with one seed: the MLP's and LightGBM's training noise is in no interval "
                   "here, so a difference of the size of the margin between them may be seed noise.")
    if bench is not None and not controls(ev):
        out.append(f"Speed was measured on {bench.device_name or bench.device}: other hardware gives other figures.")
    return out[:3]   # a control is said in the scope line and the banner
