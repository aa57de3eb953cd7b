"""The results contract: one typed model per JSON artifact, and its one reader.

Every phase builds its record, validates it against its model here (`write_record`) and writes
`model_dump()`; every consumer reads it back through `read_record` (or `results.read_evaluation`) and
uses attributes. The models are strict (`extra="forbid"`, every field required unless it is optional by nature) and
carry a `schema_version`: a file of another version or shape is refused with one `error:` line
naming the file, the field and what was expected, so a renamed key fails loudly instead of
printing an empty cell.

Free-form parts stay typed as plain dicts on purpose, where their keys are data (dimension names,
languages, variants, probes) or a record of what produced the file (hyper-parameters, the benchmark's
settings, library versions): they are copied or shown whole, never looked up field by field by a consumer.
What a consumer reads field by field has a model: the configuration an evaluation ran with (`Config`
itself, so each default is written once, in study/config.py), the benchmark's per-model, per-probe and
end-to-end figures, the error summary's bins and listed articles, cache fingerprints and split leaks.

| file (study/paths.py)                 | model              | written by            |
|---------------------------------------|--------------------|-----------------------|
| `<ds>_training_summary.json`          | TrainingSummary    | train_probes.py       |
| `<ds>_evaluation_results.json`        | ScoreEvaluation / YesNoEvaluation (by `task`) | evaluate.py |
| `<ds>_comparison.json`                | ComparisonRecord   | compare_results.py    |
| `benchmarks/<ds>_benchmarks.json`     | BenchmarkRecord    | benchmark_speed.py    |
| `analysis/<ds>_error_summary.json`    | ErrorSummary / YesNoErrorSummary (by `task`) | analyze_error_distribution.py |
| `summary.json`                        | CrossDatasetSummary | run_all.py (several datasets) |
| `<ds>_data_checks.json`               | DataChecks         | embed_articles.py     |
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from study.artifacts import deep_merge, locked, read_json, write_json
from study.config import Config
from study.errors import StudyError
from study.selection import at_grid_edge

SCHEMA_VERSION = 2   # 2: the training median beside the mean, the whole-CI band in `best.band`, baseline_n

Ci = tuple[Optional[float], Optional[float]]   # a 95% interval; None where it is undefined


class Record(BaseModel):
    """Strict: an unknown key is an error, as in config.yaml."""
    model_config = ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=())


class Versioned(Record):
    schema_version: int


class CodeVersion(Record):
    """The git commit the results were made with and whether tracked files differed from it (None outside git)."""
    commit: Optional[str]
    dirty: Optional[bool] = None


class Provenance(Record):
    code: CodeVersion
    host: str
    device: Optional[str]
    versions: dict[str, Optional[str]]
    created_at: str


# -- evaluation: the shared parts ------------------------------------------------------------
class DimensionScores(Record):
    mae: float
    rmse: float
    spearman: Optional[float]


class Scores(Record):
    overall_mae: float
    overall_rmse: float
    overall_spearman: Optional[float]
    per_dimension: dict[str, DimensionScores]
    mae_ci95: Ci
    mae_ci_method: Optional[Literal["percentile", "BCa"]] = None   # evaluation.ci_method; None: percentile


class BaselineScores(Scores):
    n_articles: int
    source: str


class GroupError(Record):
    n: int
    mae: Optional[float]
    bias: Optional[float] = None


class Truncation(Record):
    max_tokens: int
    truncated: GroupError
    not_truncated: GroupError


Verdict = Literal["better", "worse", "equivalent", "inconclusive"]


class PairedDifference(Record):
    """Per-article MAE of one side minus the other on the same articles (metrics.paired_difference), read by the
    comparison rule (study/verdicts.py) against the equivalence margin."""
    n_articles: int
    probe_mae: float
    baseline_mae: float
    mae_difference: float
    difference_ci95: Ci
    verdict: Verdict
    equivalence_margin: float
    ci_method: Optional[Literal["percentile", "BCa"]] = None   # the bootstrap CI; None: percentile


class Reading(Record):
    """A comparison read by the rule (verdicts.paired_reading / unpaired_reading)."""
    difference: Optional[float]
    ci95: Ci
    margin: float
    better: Literal["lower", "higher"]
    paired: bool
    reference: Optional[float] = None
    baseline_n: Optional[int] = None      # unpaired: the reference's test size; None: not known
    descriptive: Optional[bool] = None    # unpaired: True when the reference's own uncertainty is not in the CI
    verdict: Verdict


class CurveReading(PairedDifference):
    """The learning curve's last doubling: the paired difference against the point it doubles, per doubling."""
    n_reference: int
    n_last: int
    doublings: float
    per_doubling: float
    per_doubling_ci95: Ci
    margin: float
    reading: str
    bootstrap_agreement: Optional[float] = None   # share of 10 other bootstrap seeds giving the same reading
    seed_readings: Optional[list[str]] = None     # a seed ensemble: the reading of each seed's probe alone


class VsLongest(PairedDifference):
    longest: str
    max_tokens: int


class VsLast(PairedDifference):
    last: str          # the same model's highest layer of the sweep (the last layer when it was asked for)
    layer: int


class VsChosen(PairedDifference):
    chosen: str


class VsTruncated(Record):
    truncated: str
    all: PairedDifference
    cut: Optional[PairedDifference]


class ReadingVsChosen(Reading):
    """A yes/no probe against its model's probe chosen on validation: paired test F1 difference (this minus chosen)."""
    chosen: str


class Spread(Record):
    """Per-seed scores summarised: mean, sample sd (ddof 1; None with one score), lowest, highest (undefined
    scores left out; all None when none is defined)."""
    mean: Optional[float]
    sd: Optional[float]
    min: Optional[float]
    max: Optional[float]


class TrainingSeeds(Record):
    """How a probe used seeds (probes.seed_record): the members' seeds (random_seed, +1, ...) and each member's
    validation score (MAE; yes/no: log-loss). A deterministic probe (ridge, logistic): n 1, no seed."""
    n: int
    seeds: list[int]
    stochastic: bool
    val: list[float]


class SeedRecord(TrainingSeeds):
    """The seed spread of a probe on the test split: each member alone (MAE; yes/no: F1 at the member's own
    validation threshold) beside its validation score; the probe itself is the members' ensemble."""
    val_metric: str
    test_metric: str
    test: list[Optional[float]]
    val_spread: Spread
    test_spread: Spread


class ResplitSplit(Record):
    """One fold of the re-splits: its test articles, the probe's MAE there, the constant's, and their difference."""
    n_test: int
    test_mae: float
    median_mae: float
    mae_difference: float


class ResplitProbe(Record):
    """A probe fitted again on K folds of the pooled labelled articles (study/resplits.py): every article predicted
    once; the pooled paired differences (these carry the verdicts) and the per-fold spread."""
    k: int
    n_articles: int
    test_mae: float
    mae_ci95: Ci
    mae_ci_method: Optional[Literal["percentile", "BCa"]] = None
    vs_median_predictor: PairedDifference
    vs_chosen: Optional[VsChosen] = None
    per_split: list[ResplitSplit]
    difference_spread: Spread
    test_mae_spread: Spread


class Resplits(Record):
    """The evaluation's re-splits: how many folds, over how many labelled articles, why they ran, the rule."""
    k: int
    n_articles: int
    why: str
    rule: str


class CurveStep(PairedDifference):
    n_train: int


class CurvePoint(Record):
    fraction: float
    n_train: int
    test_mae: float
    mae_ci95: Ci
    val_mae: float
    file: str
    vs_previous: Optional[CurveStep] = None
    vs_doubling: Optional[CurveReading] = None
    seed_spread: Optional[Spread] = None   # a seed ensemble: the test MAE of each seed's probe alone at this point


class ArticleScores(Record):
    n: int
    weighted_mae: float
    weighted_mae_ci95: Ci
    tier_accuracy: float
    tier_accuracy_ci95: Ci
    within_05: float = Field(alias="within_0.5")
    within_05_ci95: Ci = Field(alias="within_0.5_ci95")
    within_10: float = Field(alias="within_1.0")
    within_10_ci95: Ci = Field(alias="within_1.0_ci95")
    tier_accuracy_exact_ci95: Ci
    within_05_exact_ci95: Ci = Field(alias="within_0.5_exact_ci95")
    within_10_exact_ci95: Ci = Field(alias="within_1.0_exact_ci95")
    tier_confusion: list[list[int]]


class ScreenedVal(Record):
    n: int
    n_skipped: int
    skip_share: float
    recall: Optional[float]
    skipped_mae: Optional[float]


class ScreenedTest(ScreenedVal):
    n_relevant: int
    n_kept_relevant: int
    skip_share_ci95: Ci
    skip_share_exact_ci95: Ci
    recall_ci95: Ci
    recall_exact_ci95: Ci
    skipped_mae_ci95: Ci
    recall_below_target: Optional[bool]
    skipped_too_few: bool


class ScreenedLanguage(Record):
    """One test language at a screening threshold applied to the whole test set (screening.per_language): the share
    of its articles that skip the fine-tuned model, and the recall of its medium+ articles with the exact CI, read
    against the target (`recall_below_target`: the CI wholly below it; None without medium+ articles)."""
    n: int
    n_skipped: int
    skip_share: float
    n_relevant: int
    n_kept_relevant: int
    recall: Optional[float]
    recall_exact_ci95: Ci
    recall_below_target: Optional[bool]


class GuaranteedThreshold(Record):
    """The one-sided Clopper-Pearson threshold (screening.guaranteed_threshold); `val`/`test` when certified, and
    `per_language` on test when the test articles' languages were given."""
    threshold: Optional[float]
    confidence: float
    n_relevant: int
    misses_allowed: Optional[int]
    articles_needed: Optional[int]
    certified: bool
    note: Optional[str]
    val: Optional[ScreenedVal] = None
    test: Optional[ScreenedTest] = None
    seed_spread: Optional[Spread] = None   # a seed ensemble: the test skip share of each seed's probe alone
    per_language: Optional[dict[str, ScreenedLanguage]] = None


class ScreeningThreshold(Record):
    """One recall target: the plug-in threshold (a reference) and the guaranteed one."""
    target_recall: float
    threshold: Optional[float]
    val: Optional[ScreenedVal] = None
    test: Optional[ScreenedTest] = None
    n_relevant_val: int
    guaranteed: GuaranteedThreshold


class ScreeningCurve(Record):
    threshold: list[float]
    skip_share: list[float]
    recall: list[Optional[float]]


class Screening(Record):
    thresholds: list[ScreeningThreshold]
    curve: ScreeningCurve


class ScreeningSetup(Record):
    weights: dict[str, float]
    tiers: dict[str, float]
    recall_targets: list[float]
    thresholds_chosen_on: str
    confidence: float
    threshold_rule: str
    fine_tuned_ms_per_article: list[float]
    fine_tuned_training_hours: list[float]


class EmbeddingCost(Record):
    """What embedding one split cost, as phase 1 recorded it in the cache (`embed_stats`: study/embedding.py; for a
    side-by-side pair the sum of its parts', study/cache.py). Every field is optional: older caches recorded fewer.
    The fields are in alphabetical order, as the cache stores them (sorted keys), so the evaluation JSON keeps it."""
    articles_per_s: Optional[float] = None
    backend: Optional[str] = None             # torch, onnx, openvino
    batching: Optional[str] = None            # the encode loop's batching, in words
    capped_articles: Optional[int] = None     # a chunked variant: articles with more windows than its cap
    devices: Optional[list[str]] = None
    dtype: Optional[str] = None
    layers_in_pass: Optional[int] = None      # a layer sweep: the layers pooled in one pass
    packed: Optional[bool] = None
    part_sha256: Optional[dict[str, str]] = None        # side by side: {part variant: its cache's hash}
    parts: Optional[dict[str, EmbeddingCost]] = None    # side by side: {part variant: its cost}
    seconds: Optional[float] = None
    token_capacity: Optional[int] = None      # chunked or side by side: the tokens it covers
    tokenize_seconds: Optional[float] = None
    tokens_per_s: Optional[float] = None
    windows: Optional[int] = None             # a chunked variant: the windows embedded


class EmbeddingCosts(Record):
    """{split: what embedding it cost} of a variant; a split is None (or absent) where its cache has no record."""
    train: Optional[EmbeddingCost] = None
    val: Optional[EmbeddingCost] = None
    test: Optional[EmbeddingCost] = None


class Chunks(Record):
    window: int
    overlap: int
    max_windows: int
    token_capacity: int
    windows_per_article: float
    capped_fraction: float


class VsBest(PairedDifference):
    """This probe's per-article test MAE minus that of the best model + probe, on the same articles."""
    best: str


class LanguageReading(Record):
    """One test language of a probe: its MAE there, and against the reference predictor, the best model and (with
    --baseline-predictions) the fine-tuned model on the same articles; no interval or verdict for a language too
    few to judge (for the fine-tuned model: too few of its articles among those the fine-tuned model scored)."""
    n: int
    mae: float
    mae_ci95: Optional[Ci]
    too_few: bool
    vs_reference: Optional[PairedDifference]
    vs_best: Optional[PairedDifference] = None
    vs_baseline: Optional[PairedDifference] = None


class TransferLanguage(Record):
    """A probe trained on some languages only, on one test language: against the same probe trained on every
    language, and against the reference predictor, paired on that language's test articles."""
    n: int
    mae: float
    mae_all: float
    too_few: bool
    vs_all: Optional[PairedDifference]
    vs_reference: Optional[PairedDifference]


class Transfer(Record):
    """train_probes.py --train-languages: the probe trained on `train_languages` (train and validation articles
    of those languages only), tested per language."""
    train_languages: list[str]
    n_train: int
    n_val: int
    val_mae: float
    test_mae: float
    file: str
    per_language: dict[str, TransferLanguage]


class TeacherTraining(Record):
    """How a teacher variant's probe (`<variant>+teacher`, train_probes.py --teacher-predictions) was trained: the
    labelled training articles plus `n_teacher` articles of unlabelled.jsonl with the teacher's scores as targets,
    each weighing `weight` (chosen on validation labels among `val_mae_by_weight`)."""
    file: str                 # the teacher predictions file
    sha256: str
    unlabelled_sha256: str
    n_labelled: int
    n_teacher: int
    ids_sha256: str           # of the teacher-scored articles trained on
    weight: float
    val_mae_by_weight: dict[str, float]


class VsLabelOnly(PairedDifference):
    """A teacher variant's probe minus the same probe of its base variant trained on labels only, same test
    articles; with how the teacher probe was trained."""
    label_only: str
    teacher: TeacherTraining


class TeacherScreening(Record):
    """Screening read against the fine-tuned model's own medium+ decisions (its scores as the truth) on the
    validation / test articles it scored: thresholds chosen on those validation articles, recall on those test ones."""
    n_val: int
    n_test: int
    screening: Screening


class _ProbeCommon(Record):
    selected: dict[str, Any]
    inference_ms_per_article: float
    train_seconds: float
    predictions_files: dict[str, str]
    seeds: Optional[SeedRecord] = None   # the seed spread; evaluate.py writes it for every probe

    @property
    def at_grid_edge(self) -> bool:
        """Whether validation chose the ridge alpha (logistic C) at the edge of its grid (`selected`, the probe's
        hyper-parameters, records it; study/selection.py)."""
        return at_grid_edge(self.selected)


class ScoreProbe(_ProbeCommon, Scores):
    """One probe of a score dataset on the test split (and its validation MAE, which chooses)."""
    per_language: dict[str, GroupError]
    truncation: Truncation
    val_mae: float
    article_scores: ArticleScores
    screening: Screening
    vs_mean_predictor: PairedDifference
    vs_median_predictor: PairedDifference   # against a constant, the training median: "does it learn anything?"
    vs_baseline: Optional[PairedDifference] = None
    vs_chosen: Optional[VsChosen] = None
    vs_longest: Optional[VsLongest] = None
    vs_last: Optional[VsLast] = None
    vs_truncated: Optional[VsTruncated] = None
    vs_parts: Optional[dict[str, PairedDifference]] = None
    learning_curve: Optional[list[CurvePoint]] = None
    resplits: Optional[ResplitProbe] = None   # evaluate.py --resplits: pooled over K folds of all labelled articles
    by_language: Optional[dict[str, LanguageReading]] = None
    vs_best: Optional[VsBest] = None
    transfer: Optional[list[Transfer]] = None
    vs_label_only: Optional[VsLabelOnly] = None          # a teacher variant's probe against the label-only one
    screening_vs_teacher: Optional[TeacherScreening] = None   # recall of the teacher's own medium+ decisions

    @property
    def validation_score(self) -> float:
        return self.val_mae


class YesNoGroup(Record):
    n: int
    positives: int
    f1: Optional[float]
    precision: Optional[float] = None
    recall: Optional[float] = None


class YesNoTruncation(Record):
    max_tokens: int
    truncated: YesNoGroup
    not_truncated: YesNoGroup


class Confusion(Record):
    tp: int
    fp: int
    fn: int
    tn: int


class BinaryScores(Record):
    f1: Optional[float]
    precision: Optional[float]
    recall: Optional[float]
    roc_auc: Optional[float]
    accuracy: float
    confusion: Confusion
    n: int
    positives: int
    predicted_positives: int
    f1_ci95: Ci


class YesNoProbe(_ProbeCommon, BinaryScores):
    threshold: float
    precision_ci95: Ci
    recall_ci95: Ci
    roc_auc_ci95: Ci
    per_language: dict[str, YesNoGroup]
    truncation: YesNoTruncation
    val_log_loss: float
    val_f1: float
    vs_always_yes: Reading
    vs_chosen: Optional[ReadingVsChosen] = None   # every probe but the model's chosen one

    @property
    def validation_score(self) -> float:
        return self.val_log_loss


class _ModelEntry(Record):
    model: str
    model_name: str
    role: str
    embedding_dim: int
    max_tokens: int
    truncated_fraction: float
    mean_token_count: float
    longer_than: Optional[dict[str, float]] = None   # share of test articles longer than N tokens (its tokenizer)
    embedding_cost: EmbeddingCosts
    chunked: Optional[bool] = None
    chunks: Optional[Chunks] = None
    parts: Optional[list[str]] = None
    teacher: Optional[bool] = None   # `<variant>+teacher`: probes trained on labels + teacher-scored articles
    layer: Optional[int] = None    # the hidden layer pooled (hidden_states[layer]); None: the model's own output
    languages: Optional[Union[Literal["multilingual"], list[str]]] = None   # None: nobody declared them
    control: bool = False          # does not read every test language (study/languages.py)
    control_reason: Optional[str] = None
    chosen_probe: str


class ScoreModelEntry(_ModelEntry):
    probes: dict[str, ScoreProbe]


class YesNoModelEntry(_ModelEntry):
    probes: dict[str, YesNoProbe]


class HolmChange(Record):
    where: str       # the record's place in the evaluation JSON (models.<variant>.probes.<probe>.vs_chosen, ...)
    verdict: Verdict
    p: float         # the claim's two-sided p-value (normal approximation from its CI)


class Holm(Record):
    alpha: float
    would_change: list[HolmChange]   # decided verdicts Holm's adjustment would turn to 'inconclusive'


class Multiplicity(Record):
    """The comparisons one evaluation read by the rule (each a 95% test, not adjusted) and, on request, which
    verdicts Holm's adjustment would change; the verdict words stay the rule's."""
    comparisons: int
    by_kind: dict[str, int]
    holm: Optional[Holm] = None


class ScoreVerdicts(Record):
    candidates: int
    vs_median_predictor: Verdict   # what `null_result` reads: the best constant for MAE
    vs_mean_predictor: Verdict
    null_result: Optional[str]
    against_constant_from: Optional[str] = None   # where vs_median_predictor was read: the test split, or re-splits
    vs_baseline: Optional[Reading] = None
    bands_spanned: Optional[list[str]] = None
    band_reading: Optional[str] = None


class YesNoVerdicts(Record):
    candidates: int
    vs_always_yes: Verdict
    null_result: Optional[str]
    vs_baseline: Optional[Reading] = None


class MajorityTier(Record):
    tier: str
    accuracy: float
    accuracy_exact_ci95: Ci


class MeanPredictor(Scores):
    """Predicting the training mean of every dimension: the reference a probe must beat."""
    article_scores: ArticleScores
    majority_tier: MajorityTier


class ScoreBest(Record):
    model: str
    probe: str
    val_mae: float
    test_mae: float
    mae_ci95: Ci
    chosen_by: str
    gap_to_baseline: Optional[float] = None
    band: Optional[str] = None
    band_limits: Optional[list[float]] = None
    control: bool = False    # every model evaluated is a control: the best of them decides nothing
    verdicts: ScoreVerdicts


class YesNoBest(Record):
    model: str
    probe: str
    val_log_loss: float
    val_f1: float
    threshold: float
    chosen_by: str
    test_f1: Optional[float]
    test_precision: Optional[float]
    test_recall: Optional[float]
    test_roc_auc: Optional[float]
    f1_ci95: Ci
    precision_ci95: Ci
    recall_ci95: Ci
    roc_auc_ci95: Ci
    gap_to_baseline: Optional[float] = None
    against_baseline: Optional[str] = None
    control: bool = False
    verdicts: YesNoVerdicts


class _Evaluation(Versioned):
    dataset: str
    random_seed: int
    bootstrap_samples: int
    n_test: int
    dimension_names: list[str]
    language_counts: dict[str, int]
    evaluated_at: str
    provenance: Provenance
    config: Config   # the configuration this evaluation ran with (study/phase3.py run_config); absent keys: Config's defaults
    multiplicity: Optional[Multiplicity] = None   # evaluate.py writes it

    def entries(self):
        """(variant, probe, metrics) for every scored probe, in the order of the file."""
        return [(v, p, m) for v, e in self.models.items() for p, m in e.probes.items()]

    def best_entry(self):
        """(variant, probe, metrics) of the best model + probe chosen on validation."""
        return self.best.model, self.best.probe, self.models[self.best.model].probes[self.best.probe]

    def chosen_entries(self):
        """(variant, chosen probe, its metrics) for every model."""
        return [(v, e.chosen_probe, e.probes[e.chosen_probe]) for v, e in self.models.items()]


class ScoreEvaluation(_Evaluation):
    task: Literal["regression"] = "regression"
    success_bands: dict[str, float]
    mean_predictor: MeanPredictor
    median_predictor: Scores       # predicting each dimension's training median: the best constant for MAE
    baseline_mae: Optional[float]
    baseline_source: Optional[str]
    baseline_n: Optional[int] = None   # the test articles the single baseline MAE was measured on, when known
    baseline: Optional[BaselineScores] = None
    resplits: Optional[Resplits] = None   # evaluate.py --resplits (config resplits): None when none ran
    screening_setup: ScreeningSetup
    models: dict[str, ScoreModelEntry]
    best: ScoreBest


class YesNoEvaluation(_Evaluation):
    task: Literal["classification"]
    positive_rate: float
    always_yes: BinaryScores
    baseline_f1: Optional[float]
    baseline_source: Optional[str]
    baseline_n: Optional[int] = None   # the test articles the single baseline F1 was measured on, when known
    models: dict[str, YesNoModelEntry]
    best: YesNoBest


Evaluation = Union[ScoreEvaluation, YesNoEvaluation]


# -- training summary ------------------------------------------------------------------------
class Fingerprint(Record):
    """What produced an embedding cache (study/cache.py `fingerprint`), as a probe records it: the model side, the
    input side (split, data hash) and the cache layout. A concatenation records its parts' model sides (`parts`)
    and no model of its own; the fine-tuned encoder arm records none (it embeds nothing beforehand): every field is
    optional, and an absent one stays absent in the file."""
    source: Optional[str] = None
    model_name: Optional[str] = None
    max_tokens: Optional[int] = None
    prefix: Optional[str] = None
    pooling: Optional[str] = None
    normalize: Optional[bool] = None
    dtype: Optional[Union[str, list[Optional[str]]]] = None   # one per part for a concatenation
    revision: Optional[str] = None
    chunks: Optional[dict[str, int]] = None   # a chunked variant's windowing (study/config.py ChunkSettings)
    layer: Optional[int] = None
    backend: Optional[str] = None   # the encoder's runtime when not torch (study/backends.py): onnx, onnx-int8, openvino
    parts: Optional[list["Fingerprint"]] = None
    split: Optional[str] = None
    data_sha256: Optional[str] = None
    layout: Optional[int] = None

    @property
    def recorded(self) -> bool:
        """Whether it records any embedding (the fine-tuned arm's is empty)."""
        return bool(self.model_fields_set)


class SubsetProbe(Record):
    """A learning-curve probe trained on the first n_train rows of one seeded permutation."""
    fraction: float
    n_train: int
    file: str
    sha256: str
    ids_sha256: str
    val_mae: float
    selected: dict[str, Any]
    seeds: Optional[TrainingSeeds] = None
    warnings: list[str] = []
    train_seconds: float


class TransferProbe(Record):
    """A probe trained on the training and validation articles of some languages only (--train-languages)."""
    languages: list[str]
    n_train: int
    n_val: int
    ids_sha256: str
    file: str
    sha256: str
    val_mae: float
    selected: dict[str, Any]
    seeds: Optional[TrainingSeeds] = None
    warnings: list[str] = []
    train_seconds: float


class TrainedProbe(Record):
    """One probe file as train_probes.py recorded it (what it was trained on, how, and its checksum)."""
    dataset: str
    model: str
    variant: str
    probe: str
    dimension_names: list[str]
    embedding: dict[str, Any]
    data_sha256: dict[str, str]
    embedding_fingerprint: Fingerprint
    hyperparameters: dict[str, Any]
    selected: dict[str, Any]
    seeds: Optional[TrainingSeeds] = None   # train_probes.py writes it for every probe
    warnings: list[str] = []                # degenerate fits (probes.fit_warnings), as printed
    task: Optional[Literal["regression", "classification"]] = None
    val_mae: Optional[float] = None
    val_log_loss: Optional[float] = None
    val_f1: Optional[float] = None
    threshold: Optional[float] = None
    train_seconds: float
    n_train: int
    n_val: int
    embedding_dim: int
    random_seed: int
    trained_at: str
    provenance: Provenance
    file: str
    sha256: str
    train_subsets: list[SubsetProbe] = []
    transfers: list[TransferProbe] = []
    teacher: Optional[TeacherTraining] = None   # a teacher variant's probe

    @property
    def task_name(self) -> str:
        return self.task or "regression"


class TrainingSummary(Versioned):
    dataset: str
    models: dict[str, dict[str, TrainedProbe]]

    def probe(self, variant: str, probe: str) -> Optional[TrainedProbe]:
        """The record of `probe` trained on `variant`; None where it was not trained."""
        return self.models.get(variant, {}).get(probe)


# -- comparison, error analysis, benchmark, cross-dataset summary ---------------------------------
class ComparisonRecord(Versioned):
    dataset: str
    report: str
    figures: dict[str, str]
    provenance: Provenance
    evaluation_sha256: Optional[str] = None


class ErrorQuantiles(Record):
    """Quantiles of |prediction − truth| over every (article, dimension) pair."""
    p50: float
    p90: float
    p99: float


class TokenBin(Record):
    """Articles of [low, high) tokens: how many, and their mean per-article MAE."""
    low: int
    high: int
    n: int
    mae: float


class ScoreBin(Record):
    """(article, dimension) pairs whose true score lies in [low, high) (the last bin closed): how many, their MAE
    and mean signed error (prediction − truth)."""
    low: float
    high: float
    n: int
    mae: float
    bias: float


class WorstArticle(Record):
    """One of the worst-scored test articles: its per-article MAE, true and predicted scores per dimension."""
    id: str
    language: str
    title: str
    mae: float
    true: list[float]
    pred: list[float]


class ErrorModel(Record):
    n: int
    max_tokens: int
    overall_mae: float
    bias: float
    abs_error_quantiles: ErrorQuantiles
    per_dimension_mae: dict[str, float]
    per_language: dict[str, GroupError]
    token_bins: list[TokenBin]
    truncated: GroupError
    not_truncated: GroupError
    score_bins: list[ScoreBin]
    worst: list[WorstArticle]


class LanguageErrors(Record):
    n: int
    positives: int
    false_positives: int
    false_negatives: int


class ListedArticle(Record):
    """A confidently wrong yes/no article: its P(yes) and true label."""
    id: str
    language: str
    title: str
    p_yes: float
    true: int


class YesNoErrorModel(Record):
    n: int
    threshold: float
    max_tokens: int
    confusion: Confusion
    per_language: dict[str, LanguageErrors]
    false_positives: list[ListedArticle]
    false_negatives: list[ListedArticle]


class ErrorSummary(Versioned):
    task: Literal["regression"] = "regression"
    dataset: str
    probe: str
    figures: dict[str, str]
    models: dict[str, ErrorModel]
    provenance: Provenance
    evaluation_sha256: Optional[str] = None


class YesNoErrorSummary(Versioned):
    task: Literal["classification"]
    dataset: str
    probe: str
    figures: dict[str, str]
    models: dict[str, YesNoErrorModel]
    provenance: Provenance
    evaluation_sha256: Optional[str] = None


class ReferenceTiming(Record):
    """The reference setting's run (study/benchmark.py REFERENCE: fp32, batch 32, no token budget)."""
    dtype: str
    batch_size: int
    token_budget: Optional[int]
    articles_per_s: float
    tokens_per_s: float
    tflops: float
    peak_tflops: Optional[float]
    share_of_peak: Optional[float]
    run_seconds: list[float]
    peak_memory_mb: Optional[float]
    n_batches: int
    padding_overhead: float


class EncodeTiming(Record):
    """--st-compare: plain SentenceTransformer.encode on the same model and texts."""
    batch_size: int
    articles_per_s: float
    run_seconds: list[float]
    cosine_min: float
    cosine_mean: float


class QualityCheck(Record):
    """--quality-check: half precision against fp32, or with --backend that runtime against torch fp32 (its name in
    `half_dtype`; study/benchmark.py quality_check)."""
    half_dtype: str
    n_articles: int
    cosine_min: float
    cosine_mean: float
    ridge_test_mae_float32: float
    ridge_test_mae_half: float
    delta_mae: float
    target: dict[str, float]
    meets_target: bool


class _ModelSpeed(Record):
    """What every benchmarked model states, timed or composed: what the report and page 1 read."""
    articles_per_s: float
    dtype: str
    peak_memory_mb: Optional[float]
    random_weights: bool = False


class TimedModel(_ModelSpeed):
    """A model timed by study/benchmark.py benchmark_model (see its METHOD for how each figure is measured)."""
    random_weights: bool
    load_seconds_cold: Optional[float]
    load_seconds_warm: Optional[float]
    load_time_meaningful: bool
    location: Optional[str] = None       # real weights: where they were loaded from
    build_seconds: Optional[float] = None   # random weights: the twin's build time ...
    architecture: Optional[str] = None      # ... and its config.json
    n_params_non_embedding: int
    n_params_total: int
    layers: int
    hidden: int
    model_type: Optional[str]
    batch_size: int
    token_budget: Optional[int]
    max_tokens: int
    n_articles: int
    n_tokens: int
    mean_tokens: float
    truncated_fraction: float
    windows: Optional[int] = None          # a chunked variant: windows embedded, and their settings
    chunks: Optional[dict[str, int]] = None
    tokens_per_s: float
    run_seconds: list[float]
    tflops: float
    peak_tflops: Optional[float]
    share_of_peak: Optional[float]
    memory_kind: Literal["gpu", "rss"]
    tokenize_seconds: float
    tokenize_share: float
    tokenize_seconds_two_pass: Optional[float] = None
    packed: bool
    n_batches: int
    padded_tokens: int
    padding_overhead: float
    oom_retries: int
    sentence_transformers_encode: Optional[EncodeTiming] = None
    speedup_vs_sentence_transformers: Optional[float] = None
    quality_check: Optional[QualityCheck] = None   # with --backend: that runtime against torch fp32
    backend: str = "torch"   # the encoder's runtime (study/backends.py): torch, onnx, onnx-int8, openvino
    reference: Optional[ReferenceTiming]
    speedup_vs_reference: Optional[float]


class ComposedModel(_ModelSpeed):
    """A side-by-side pair, not timed itself: its parts' costs summed (study/benchmark.py composed)."""
    composed_of: list[str]
    batch_size: str          # the parts' batch sizes joined by '+' (dtype too)


def _model_kind(value) -> str:
    composed = value.get("composed_of") if isinstance(value, dict) else getattr(value, "composed_of", None)
    return "composed" if composed is not None else "timed"


ModelSpeed = Annotated[Union[Annotated[TimedModel, Tag("timed")], Annotated[ComposedModel, Tag("composed")]],
                       Discriminator(_model_kind)]


class ProbeTiming(Record):
    train_seconds: float
    predict_ms_per_article: float     # one single-article predict call (median)
    predict_ms_per_1000: float        # one call on 1000 articles (median)
    n_train: int
    embedding_dim: int


class EndToEnd(Record):
    """Stage 1's cost per article (embedding at the batched throughput + the probe in batches of 1000), and the
    fine-tuned model's cost range over it."""
    ms_per_article: float
    embedding_ms_per_article: float
    probe_ms_per_article: float
    speedup_vs_fine_tuned: tuple[float, float]


class BenchmarkRecord(Versioned):
    """The speed benchmark: per model its load/embedding figures, per probe its training and prediction cost,
    and the end-to-end cost per article against the fine-tuned model's. `settings` records what the run was asked
    (copied into the report's annex whole)."""
    dataset: str
    device: str
    device_name: Optional[str]
    versions: dict[str, Optional[str]]
    provenance: Provenance
    settings: dict[str, Any]
    fine_tuned_ms_per_article: list[float]
    models: dict[str, ModelSpeed]
    probes: dict[str, dict[str, ProbeTiming]]
    probes_skipped: dict[str, str]
    end_to_end: dict[str, dict[str, EndToEnd]]

    def speed(self, variant: str) -> Optional[Union[TimedModel, ComposedModel]]:
        """The figures of `variant`; None where it was not benchmarked."""
        return self.models.get(variant)

    def stage1(self, variant: str, probe: str) -> Optional[EndToEnd]:
        """Stage 1's cost per article with `probe` on `variant`; None where it was not timed."""
        return self.end_to_end.get(variant, {}).get(probe)


class SummaryRow(Record):
    dataset: str
    model: str
    probe: str
    val_mae: float
    test_mae: float
    mae_ci95: Ci
    baseline_mae: Optional[float]
    band: Optional[str]
    bands: Optional[str]
    n_test: int
    control: bool = False              # the chosen model does not read every test language (page 1's banner)
    decision: Optional[str] = None     # page 1's decision word
    short_languages: list[str] = []    # test languages where it falls short of the fine-tuned model (page 1)


class SummaryYesNoRow(Record):
    dataset: str
    model: str
    probe: str
    threshold: float
    test_f1: Optional[float]
    f1_ci95: Ci
    test_roc_auc: Optional[float]
    baseline_f1: Optional[float]
    n_test: int
    control: bool = False
    decision: Optional[str] = None


class CrossDatasetSummary(Versioned):
    datasets: list[SummaryRow]
    models: dict[str, dict[str, dict[str, Any]]]
    yes_no: list[SummaryYesNoRow]
    markdown: str
    figures: dict[str, str]


class LeakExample(Record):
    splits: list[str]
    ids: list[str]


class SplitLeaks(Record):
    """Articles in more than one split (study/data.py split_leaks): by id, by identical title + content under
    different ids, and a few examples."""
    same_id: int
    same_text: int
    examples: list[LeakExample]


class DataChecks(Versioned):
    dataset: str
    splits: list[str]
    split_leaks: SplitLeaks


# -- reading and writing ---------------------------------------------------------------------------
M = TypeVar("M", bound=Versioned)

_BY_TASK = {"evaluation": {"regression": ScoreEvaluation, "classification": YesNoEvaluation},
            "error summary": {"regression": ErrorSummary, "classification": YesNoErrorSummary}}


def _problem(exc: ValidationError) -> str:
    """The first validation error as 'field a.b.c: what (found X)', short whatever the input."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    found = err.get("input")
    shown = json.dumps(found, ensure_ascii=False, default=str)[:60] if err["type"] != "missing" else None
    what = {"missing": "missing", "extra_forbidden": "not a field of this file"}.get(err["type"], err["msg"])
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"field {where}: {what}" + (f" (found {shown})" if shown and err["type"] != "extra_forbidden" else "") + more


def validate(model: type[M], data: dict, where: str, remedy: str) -> M:
    """`data` as `model`; StudyError '<where>: ...' naming the version or the first field at fault."""
    if not isinstance(data, dict):
        raise StudyError(f"{where}: expected a JSON object, found {type(data).__name__}; {remedy}")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        found = "no schema_version (an older version of this project wrote it)" if version is None \
            else f"schema_version {json.dumps(version)[:20]}"
        raise StudyError(f"{where}: expected schema_version {SCHEMA_VERSION}, found {found}; {remedy}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise StudyError(f"{where}: not the expected {model.__name__} ({_problem(exc)}); {remedy}") from None


def model_for(kind: str, data) -> type[Versioned]:
    """The model of a file whose shape depends on its task (`kind`: 'evaluation' or 'error summary')."""
    task = data.get("task", "regression") if isinstance(data, dict) else "regression"
    return _BY_TASK[kind].get(task, _BY_TASK[kind]["regression"])


def read_record(path: Path, model: type[M], what: str, remedy: str) -> M:
    """The one reader: the JSON file at `path` as `model` (absent, not JSON, of another version or shape:
    one StudyError naming the file)."""
    data = read_json(path, f"{what} ({remedy})")
    return validate(model, data, str(path), remedy)


def merge_record(path: Path, model: type[M], update: dict, remedy: str) -> M:
    """Merge `update` into the record at `path` (created if absent) under a lock, so that concurrent runs lose no
    entry; the merged record is validated as `model` before it is written."""
    with locked(path):
        old = (read_record(path, model, "file", remedy).model_dump(mode="json", by_alias=True, exclude_unset=True)
               if Path(path).exists() else {})
        return write_record(path, model, deep_merge(old, update))


def write_record(path: Path, model: type[M], data: dict) -> M:
    """Validate `data` as `model` (with this schema_version) and write its dump atomically; returns the model.
    A producer whose record does not match its model fails here, before anything is written."""
    record = validate(model, {**data, "schema_version": SCHEMA_VERSION}, f"{path} (about to be written)",
                      "this is a bug: the producer and its model disagree")
    write_json(path, record.model_dump(mode="json", by_alias=True, exclude_unset=True))   # absent stays absent
    return record
