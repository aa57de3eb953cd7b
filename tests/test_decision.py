"""Page 1's answers (study/decision.py) follow from the recorded verdicts, on constructed records."""
import pytest
from records import as_model, model_entry, paired, score_evaluation, score_probe, screening

from study import decision
from study.schemas import ScreenedLanguage


def _screened(certified: bool, n_test=120, n_relevant=100):
    test = {"n": n_test, "n_skipped": 20, "skip_share": 20 / n_test, "recall": 0.99, "skipped_mae": 0.5,
            "n_relevant": n_relevant, "n_kept_relevant": n_relevant - 1, "skip_share_ci95": [0.1, 0.2],
            "skip_share_exact_ci95": [0.1, 0.25], "recall_ci95": [0.95, 1.0], "recall_exact_ci95": [0.94, 0.999],
            "skipped_mae_ci95": [0.4, 0.6], "recall_below_target": False, "skipped_too_few": True}
    g = {"threshold": 3.2 if certified else None, "confidence": 0.95, "n_relevant": 400 if certified else 52,
         "misses_allowed": 1 if certified else None, "articles_needed": 299, "certified": certified,
         "note": None if certified else "cannot be certified with 52 articles (needs 299)"}
    if certified:
        g.update(val={k: test[k] for k in ("n", "n_skipped", "skip_share", "recall", "skipped_mae")}, test=test)
    return {"target_recall": 0.99, "threshold": 3.5, "val": {k: test[k] for k in ("n", "n_skipped", "skip_share",
                                                                                      "recall", "skipped_mae")},
            "test": test, "n_relevant_val": g["n_relevant"], "guaranteed": g}


def _evaluation(mean_verdict="better", null=None, certified=True, n_relevant=100):
    probe = score_probe(1.0, vs_median_predictor=paired(-0.01, (-0.05, 0.03), mean_verdict),
                        screening=screening([_screened(certified, n_relevant=n_relevant)]))
    ev = score_evaluation({"m": model_entry("m", {"ridge": probe})},
                          config={"min_group_articles": 30})
    ev["best"]["verdicts"] = {"candidates": 1, "vs_median_predictor": mean_verdict, "vs_mean_predictor": "better",
                              "null_result": null}
    return as_model(ev)


def test_a_null_result_is_named_on_page_1():
    ev = _evaluation("inconclusive", "not shown to beat a constant (the training median) (inconclusive)")
    rows = {r.question: r for r in decision.score_rows(ev, None)}
    answer = rows["Does the best probe learn anything (against a constant (the training median))?"].answer
    # -0.01 [-0.05, +0.03] on 50 articles: SE 0.08 / 3.92, SD 0.144; (2.80 * 0.144 / 0.02)^2 = 408.2 -> 409
    assert answer == ("not shown to beat a constant (the training median) (inconclusive; a difference of ±0.02 would "
                      "need about 409 test articles to be told from none, here 50)")
    assert "no better than" not in answer
    assert decision.decision(ev) == (decision.UNDECIDED, "the best probe (m + ridge) is not shown to beat a constant "
                                                         "(the training median) (inconclusive)")
    assert rows["Does the best probe close the gap to the fine-tuned model?"].answer.startswith(decision.CANNOT)


@pytest.mark.parametrize("certified, n_relevant, expected", [
    (True, 80, "99%: 16.7% skip (guaranteed at 95% confidence)"),
    (False, 80, "99%: cannot be judged on this data (a guarantee needs 299 medium+ validation articles)"),
    (True, 110, "99%: cannot be judged on this data (only 10 of 120 test articles below medium)"),
    (False, 110, "99%: cannot be judged on this data (only 10 of 120 test articles below medium; a guarantee "
                 "needs 299 medium+ validation articles)")])
def test_screening_answers_the_guarantee_or_says_why_not(certified, n_relevant, expected):
    row = next(r for r in decision.score_rows(_evaluation(certified=certified, n_relevant=n_relevant), None)
               if r.question.startswith("What share can skip"))
    assert row.answer == expected


def test_targets_with_the_same_answer_are_said_once():
    assert decision._grouped([("99%", "a"), ("98%", "a"), ("95%", "b")]) == ["99% / 98%: a", "95%: b"]


@pytest.mark.parametrize("low, high, words", [(2.0, 4.0, "2.0–4.0 times faster"), (0.25, 0.5, "2.0–4.0 times slower"),
                                              (0.5, 2.0, "between 2.0 times slower and 2.0 times faster"),
                                              (12.0, 12.2, "12 times faster")])
def test_speed_in_plain_words(low, high, words):
    assert decision.times(low, high) == words


def test_a_setting_missing_from_an_older_record_falls_back_to_the_config_default():
    """The recorded config is a `Config`: the recorded value wins; where a record lacks a setting, validation fills in
    Config's default (study/config.py, the one place each default is written: findings.py and decision.py hold no
    copy), and page 1 reads whatever the record then says."""
    from records import repository_config

    from study import findings
    from study.config import Config

    def with_config(**settings):
        ev = _evaluation().model_dump(mode="json", by_alias=True, exclude_unset=True)
        kept = {k: v for k, v in repository_config().items() if k not in settings}
        ev["config"] = {**kept, **{k: v for k, v in settings.items() if v is not None}}
        return as_model(ev)

    assert findings.min_articles(with_config(min_group_articles=7)) == 7
    older = with_config(min_group_articles=None, min_group_positives=None, equivalence_margin=None)
    assert "min_group_articles" not in older.config.model_fields_set
    defaults = {k: Config.model_fields[k].default for k in ("min_group_articles", "min_group_positives",
                                                            "equivalence_margin")}
    assert (findings.min_articles(older), findings.margin(older)) == (defaults["min_group_articles"],
                                                                      defaults["equivalence_margin"])
    least, few = defaults["min_group_articles"], defaults["min_group_positives"]
    assert findings.too_few(older, least - 1) and not findings.too_few(older, least)
    assert findings.too_few(older, 2 * least, positives=few - 1) and not findings.too_few(older, 2 * least,
                                                                                          positives=few)
    # page 1's screening row reads the same setting: 120 test articles, 20 of them below medium
    for least, judged in ((25, False), (15, True)):
        answer = next(r.answer for r in decision.score_rows(with_config(min_group_articles=least), None)
                      if r.evidence == "screening")
        assert ("only 20 of 120 test articles below medium" not in answer) is judged, (least, answer)


def _language(n, n_relevant, kept, ci, below):
    return {"n": n, "n_skipped": n // 2, "skip_share": 0.5, "n_relevant": n_relevant, "n_kept_relevant": kept,
            "recall": kept / n_relevant if n_relevant else None, "recall_exact_ci95": ci, "recall_below_target": below}


def test_a_language_whose_medium_plus_articles_the_screen_does_not_keep_is_named(monkeypatch):
    """The guaranteed threshold keeps 99% overall; per language, Dutch keeps 4 of 10 (its exact CI wholly below the
    target): page 1's screening answer names it; German, below the target too but with 5 test articles (under
    min_group_articles 30), is too few to judge and not named. Under the decision line it is said only where the
    decision is the screen (Stage 1)."""
    ev = _evaluation(n_relevant=80)
    g = ev.models["m"].probes["ridge"].screening.thresholds[0].guaranteed
    g.per_language = {k: ScreenedLanguage(**v) for k, v in {
        "en": _language(100, 70, 70, [0.95, 1.0], False), "nl": _language(40, 10, 4, [0.122, 0.738], True),
        "de": _language(5, 2, 0, [0.0, 0.84], True)}.items()}
    short = decision.screening_shortfalls(ev)
    assert short == ["nl (Dutch) keeps 4 of its 10 medium+ test articles at the 99% threshold: recall 40.0% "
                     "[12.2%, 73.8%], and 50.0% of its 40 articles skip the fine-tuned model"]
    row = next(r for r in decision.score_rows(ev, None) if r.question.startswith("What share can skip"))
    assert row.answer == "99%: 16.7% skip (guaranteed at 95% confidence); not for every language: " + short[0]
    monkeypatch.setattr(decision, "evidence_decision", lambda ev: (decision.STAGE1, "partial"))
    assert decision.language_gap(ev) == f"As a screen: {short[0]} (the exact 95% CI wholly below the target; 2.7)."
    monkeypatch.setattr(decision, "evidence_decision", lambda ev: (decision.REPLACE, "closes the gap"))
    assert decision.language_gap(ev) is None
