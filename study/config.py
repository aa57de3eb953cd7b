"""config.yaml: schema, loading and the lookups every script shares.

The schema is strict: an unknown key, a missing required key or a value of the wrong
type stops the script at start with a message naming the key (`StudyError`).
"""
from __future__ import annotations

import importlib.util
import logging
import math
import reprlib
from dataclasses import dataclass
from pathlib import Path
import re
from typing import Annotated, Literal, Optional, Sequence, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from study.errors import StudyError
from study.tasks import TASKS

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"
PACKAGE_SCHEME = "python-package:"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")   # dataset and model names become parts of file names


MAX_SEED = 2**31 - 1           # the largest seed LightGBM (a C int), numpy and torch all take
MAX_BOOTSTRAP = 100_000        # resamples of a CI: 10,000 is plenty; more only burns hours


def is_device(text: str) -> bool:
    """A device the study can run on: auto, cpu, cuda, cuda:N or mps (config `device` and every --device)."""
    return text in ("auto", "cpu", "cuda", "mps") or bool(re.fullmatch(r"cuda:\d{1,3}", text))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


class EmbeddingModel(_Strict):
    source: Literal["sentence-transformers", "transformers"]
    model_name: str
    dimensions: int = Field(gt=0)
    max_tokens: int = Field(gt=1)
    # Tokens the model's position table holds; a --max-tokens sweep skips (with a note) the values above it
    positions: Optional[int] = Field(default=None, gt=1)
    prefix: str = ""
    # How the published sentence-transformers configuration pools and normalises; phase 1 checks
    # the loaded model against them (a folder with only Hugging Face files silently becomes mean
    # pooling without normalisation in sentence-transformers).
    pooling: Literal["mean", "cls", "max", "lasttoken", "weightedmean"]
    normalize: bool
    trust_remote_code: bool = False
    batch_size: Optional[int] = Field(default=None, gt=0)
    # Upper bound on batch_rows x padded_length; long-context models use it so that a
    # batch of short articles is large and a batch of 8k-token articles is small.
    token_budget: Optional[int] = Field(default=None, gt=0)
    # frozen_base: the fine-tuned model's own base model, frozen: the clean test of whether the gap
    # comes from task-specific learning
    role: Literal["embedding", "frozen_base"] = "embedding"
    # The languages the model reads: `multilingual`, or language codes such as [en]. A model that does not read
    # every test language is a control (study/languages.py); models the study knows by name need no entry.
    languages: Optional[Union[Literal["multilingual"], list[str]]] = None
    note: str = ""

    @model_validator(mode="after")
    def _languages(self):
        from study.languages import contradiction
        if isinstance(self.languages, list) and (not self.languages or not all(
                isinstance(c, str) and c.strip() and c == c.strip().lower() and len(c) <= 12 for c in self.languages)):
            raise ValueError("languages must be `multilingual` or a non-empty list of lower-case language codes "
                             f"such as [en], found {self.languages!r}")
        why = contradiction(self)
        if why:
            raise ValueError(why)
        return self


class Tiers(_Strict):
    """Article-score tiers: medium and high articles are the ones the fine-tuned model must see."""
    medium: float
    high: float

    @model_validator(mode="after")
    def _ordered(self):
        if not self.medium < self.high:
            raise ValueError(f"tiers: medium ({self.medium:g}) must be below high ({self.high:g})")
        return self


class DatasetEntry(_Strict):
    """A dataset of config.yaml. `task: regression` (the default): 0-10 scores on `dimensions` dimensions,
    judged against `baseline_mae`. `task: classification`: one 0/1 label per article (dimensions 1),
    judged against `baseline_f1` (a fine-tuned classifier's test F1); baseline_mae is then not used."""
    path: str
    dimensions: int = Field(gt=0)
    task: Literal["regression", "classification"] = "regression"
    baseline_mae: Optional[float] = Field(default=None, gt=0)   # required for regression
    baseline_f1: Optional[float] = Field(default=None, gt=0, le=1)   # required for classification
    baseline_n: Optional[int] = Field(default=None, gt=0)   # test articles the baseline figure was measured on
    description: str = ""
    success_bands: Optional["SuccessBands"] = None          # default: the top-level margins
    dimension_weights: Optional[dict[str, float]] = None    # article score = weighted mean; default: equal
    tiers: Optional[Tiers] = None                           # default: the top-level tiers

    @field_validator("dimension_weights")
    @classmethod
    def _weights(cls, v):
        if v is not None and (not v or any(not 0 <= w < math.inf for w in v.values()) or not 0 < sum(v.values()) < math.inf):
            raise ValueError("dimension_weights must map dimension names to finite weights >= 0, not all 0")
        return v

    @model_validator(mode="after")
    def _task_fields(self):
        if self.task == "regression":
            if self.baseline_mae is None:
                raise ValueError("baseline_mae is required for a regression dataset (task: regression, the default)")
            if self.baseline_f1 is not None:
                raise ValueError("baseline_f1 belongs to a classification dataset: add task: classification")
        else:
            if self.baseline_f1 is None:
                raise ValueError("baseline_f1 (the fine-tuned classifier's test F1, in (0, 1]) is required for a "
                                 "classification dataset")
            if self.baseline_mae is not None:
                raise ValueError("baseline_mae has no meaning for a classification dataset: give baseline_f1")
            if self.dimensions != 1:
                raise ValueError(f"a classification dataset has one 0/1 label per article: dimensions must be 1, "
                                 f"found {self.dimensions}")
            if self.dimension_weights or self.tiers or self.success_bands:
                raise ValueError("dimension_weights, tiers and success_bands are regression settings; a "
                                 "classification dataset takes none")
        return self


class DatasetSpec(_Strict):
    """`dataset.yaml` in a dataset folder given by --data-dir (not named in config.yaml): its task and baseline."""
    task: Literal["regression", "classification"] = "regression"
    baseline_mae: Optional[float] = Field(default=None, gt=0)
    baseline_f1: Optional[float] = Field(default=None, gt=0, le=1)
    baseline_n: Optional[int] = Field(default=None, gt=0)   # test articles the baseline figure was measured on
    description: str = ""

    @model_validator(mode="after")
    def _task_fields(self):
        if self.task == "classification" and self.baseline_mae is not None:
            raise ValueError("baseline_mae has no meaning for a classification dataset: give baseline_f1")
        if self.task == "regression" and self.baseline_f1 is not None:
            raise ValueError("baseline_f1 belongs to a classification dataset: add task: classification")
        return self


def _finite_positive(values: list[float], what: str) -> list[float]:
    """A regularisation grid: every value a finite number above 0."""
    if not all(0 < x < float("inf") for x in values):
        raise ValueError(f"every {what} must be a finite number above 0, found {values}")
    return values


class RidgeSettings(_Strict):
    alphas: list[float] = Field(min_length=1)

    _positive = field_validator("alphas")(lambda v: _finite_positive(v, "alpha"))


class MLPSettings(_Strict):
    hidden_sizes: list[Annotated[int, Field(gt=0)]] = Field(min_length=1)
    dropout: float = Field(ge=0, lt=1)
    learning_rate: float = Field(gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    epochs: int = Field(gt=0)
    patience: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    loss: Literal["l1", "mse"] = "l1"   # the metric is MAE, and the production trainer uses L1


class LightGBMSettings(_Strict):
    params: dict[str, float | int | str | bool]
    early_stopping_rounds: int = Field(gt=0)

    @field_validator("params")
    @classmethod
    def _ranges(cls, v):   # the settings LightGBM would otherwise take silently or spin on
        floors = {"num_leaves": 2, "n_estimators": 1, "min_child_samples": 1, "max_bin": 2}
        for key, floor in floors.items():
            if key in v and (isinstance(v[key], (bool, str)) or v[key] < floor):
                raise ValueError(f"params.{key} must be a number >= {floor}, found {v[key]!r}")
        for key in ("learning_rate", "subsample", "colsample_bytree"):
            if key in v and (isinstance(v[key], (bool, str)) or not 0 < v[key] <= (1 if key != "learning_rate" else 10)):
                raise ValueError(f"params.{key} must lie in (0, 1] ((0, 10] for learning_rate), found {v[key]!r}")
        return v


class LogisticSettings(_Strict):
    """The logistic-regression probe of classification datasets: C (inverse L2 strength) chosen on validation
    log-loss from `Cs`."""
    Cs: list[float] = Field(min_length=1)

    _positive = field_validator("Cs")(lambda v: _finite_positive(v, "C"))


class FinetuneSettings(_Strict):
    """The fine-tuned encoder arm (finetune_encoder.py): end-to-end training with a regression head."""
    epochs: int = Field(default=4, gt=0, le=100)
    learning_rate: float = Field(default=2e-5, gt=0, lt=1)        # the encoder's
    head_learning_rate: float = Field(default=1e-3, gt=0, lt=1)   # the new head's
    batch_size: int = Field(default=16, gt=0, le=4096)
    patience: int = Field(default=2, gt=0)         # epochs without a better validation MAE before it stops
    weight_decay: float = Field(default=0.01, ge=0, lt=1)
    lora_r: int = Field(default=8, gt=0, le=256)   # --lora: the adapters' rank


DEFAULT_LOGISTIC = LogisticSettings(Cs=[0.001, 0.01, 0.1, 1.0, 10.0, 100.0])


class ProbeMethods(_Strict):
    ridge: RidgeSettings
    mlp: MLPSettings
    lightgbm: LightGBMSettings
    logistic: LogisticSettings = DEFAULT_LOGISTIC   # classification only; mlp and lightgbm serve both tasks


PROBES = ("ridge", "mlp", "lightgbm", "logistic")   # every probe name (one probe_methods section each)
TASK_PROBES = {name: t.probes for name, t in TASKS.items()}   # the probes of each task, in tie-break order


def task_probes(task: str, asked: list[str] | None = None) -> list[str]:
    """The probes of `task` (all of them when `asked` is empty); a probe of the other task is an error."""
    allowed = TASK_PROBES[task]
    wrong = [p for p in asked or [] if p not in allowed]
    if wrong:
        raise StudyError(f"probe {', '.join(wrong)} does not fit a {task} dataset; its probes: {', '.join(allowed)}")
    return list(asked) if asked else list(allowed)


DTYPE_NAMES = ("float32", "bfloat16", "float16")


class SuccessBands(_Strict):
    """Margins over a dataset's own fine-tuned baseline MAE (0.07 / 0.17: 0.75 / 0.85 for a baseline of 0.68)."""
    closes_gap: float = Field(ge=0)
    partial: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self):
        if not self.closes_gap < self.partial:
            raise ValueError("closes_gap must be below partial")
        return self


class ChunkSettings(_Strict):
    """Chunk-and-average variants (`<model>-c<N>`): windows of N tokens overlapping by `overlap` tokens, at most
    `max_windows` per article (an article needing more is cut after them, and counted)."""
    overlap: int = Field(default=32, ge=0)
    max_windows: int = Field(default=16, gt=0)


MAX_PROBE_SEEDS = 50   # seeds per stochastic probe: each one is a whole fit


class DemoSettings(_Strict):
    model: str
    data_dir: str
    probe_seeds: int = Field(default=2, ge=1, le=MAX_PROBE_SEEDS)   # the demo's datasets: fewer seeds, faster


class Config(_Strict):
    random_seed: int = Field(ge=0, le=MAX_SEED)
    device: str
    batch_size: int = Field(gt=0)
    score_range: tuple[float, float]
    embeddings_dir: str
    results_dir: str
    bootstrap_samples: int = Field(gt=0, le=MAX_BOOTSTRAP)
    success_bands: SuccessBands
    tiers: Tiers
    screening_recall: list[float] = Field(min_length=1)
    # The one reading of every comparison and proportion (study/verdicts.py, study/screening.py)
    screening_confidence: float = Field(default=0.95, gt=0, lt=1)   # one-sided, of each screening threshold
    equivalence_margin: float = Field(default=0.02, ge=0)       # MAE: a paired difference inside ±it is "equivalent"
    equivalence_margin_f1: float = Field(default=0.02, ge=0)    # ... F1, for yes/no datasets
    min_group_articles: int = Field(default=30, gt=0)           # a smaller group is "too few to judge"
    min_group_positives: int = Field(default=10, gt=0)          # ... or one with fewer yes articles (yes/no)
    # train_probes.py --teacher-predictions: the weights of a teacher-scored article (a labelled one weighs 1) tried,
    # the one with the lowest validation MAE (on labels) kept
    teacher_weights: list[float] = Field(default=[0.25, 0.5, 1.0], min_length=1)
    holm: bool = False   # record which verdicts Holm's adjustment over every comparison would change (evaluate.py --holm)
    # evaluate.py --resplits: K-fold re-splits of the labelled articles (study/resplits.py); auto: 5 folds below 500
    resplits: Union[Literal["auto"], Annotated[int, Field(ge=0, le=100)]] = "auto"
    bca_below: int = Field(default=200, ge=0)   # a test MAE over fewer articles gets a BCa CI (evaluation.ci_method)
    # The MLP and LightGBM are fitted with this many seeds (random_seed, +1, ...) and saved as their ensemble
    probe_seeds: int = Field(default=5, ge=1, le=MAX_PROBE_SEEDS)
    fine_tuned_ms_per_article: tuple[float, float]
    fine_tuned_training_hours: tuple[float, float]
    default_models: list[str] = Field(min_length=1)
    embedding_models: dict[str, EmbeddingModel] = Field(min_length=1)
    datasets: dict[str, DatasetEntry]
    probe_methods: ProbeMethods
    chunking: ChunkSettings = ChunkSettings()
    finetune: FinetuneSettings = FinetuneSettings()
    demo: DemoSettings
    # Folder of the config file: relative paths inside it resolve against it.
    root: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _known_defaults(self):
        unknown = [m for m in self.default_models if m not in self.embedding_models]
        if unknown:
            raise ValueError(f"default_models names models not in embedding_models: {', '.join(unknown)} "
                             f"(known: {', '.join(self.embedding_models)})")
        unsafe = [m for m in list(self.embedding_models) + list(self.datasets) if not SAFE_NAME.fullmatch(m)]
        if unsafe:
            raise ValueError(f"names {unsafe} may become parts of file names: use letters, digits, '.', '_', '+', '-'")
        joined = [m for m in self.embedding_models if "+" in m]
        if joined:
            raise ValueError(f"model names {joined} hold '+', which joins models into a concatenation (a+b): rename them")
        if self.demo.model not in self.embedding_models:
            raise ValueError(f"demo.model '{self.demo.model}' is not in embedding_models")
        return self

    @field_validator("score_range")
    @classmethod
    def _range(cls, v):
        if not -math.inf < v[0] < v[1] < math.inf:
            raise ValueError("score_range must be [low, high], finite numbers with low < high")
        return v

    @field_validator("teacher_weights")
    @classmethod
    def _teacher_weights(cls, v):
        if not all(0 < w < float("inf") for w in v):
            raise ValueError("teacher_weights must be positive numbers (the weight of a teacher-scored article)")
        return sorted(set(v))

    @field_validator("screening_recall")
    @classmethod
    def _recall(cls, v):
        if not all(0 < r <= 1 for r in v):
            raise ValueError("screening_recall values must lie in (0, 1]")
        return sorted(v, reverse=True)

    @model_validator(mode="after")
    def _tiers_in_range(self):
        low, high = self.score_range
        for where, tiers in [("tiers", self.tiers)] + [(f"datasets.{n}.tiers", d.tiers) for n, d in self.datasets.items()]:
            if tiers is not None and not low < tiers.medium < tiers.high <= high:
                raise ValueError(f"{where}: medium {tiers.medium:g} and high {tiers.high:g} must lie inside "
                                 f"score_range [{low:g}, {high:g}]")
        return self

    @field_validator("device")
    @classmethod
    def _device(cls, v):
        if not is_device(v):
            raise ValueError("device must be auto, cpu, cuda, cuda:N or mps")
        return v

    # -- lookups ---------------------------------------------------------------
    def resolve(self, path: str | Path) -> Path:
        path = Path(path).expanduser()
        return path if path.is_absolute() else (self.root / path).resolve()

    @property
    def embeddings_path(self) -> Path:
        return self.resolve(self.embeddings_dir)

    @property
    def results_path(self) -> Path:
        return self.resolve(self.results_dir)

    def seeds_for(self, dataset_path: str | Path) -> int:
        """The seeds of the stochastic probes on the dataset in `dataset_path`: `demo.probe_seeds` for the demo's
        datasets (the folder `demo.data_dir` and the folders inside it), else `probe_seeds`."""
        demo = self.resolve(self.demo.data_dir)
        path = Path(dataset_path).expanduser().resolve()
        return self.demo.probe_seeds if path == demo or demo in path.parents else self.probe_seeds

    def model(self, name: str) -> EmbeddingModel:
        if name not in self.embedding_models:
            raise StudyError(f"model '{name}' is not in embedding_models of {self.root / 'config.yaml'}; "
                             f"known: {', '.join(self.embedding_models)}")
        return self.embedding_models[name]

    def variant(self, model: str, max_tokens: int | None = None, chunked: bool = False,
                layer: int | None = None) -> "Variant":
        """`model` at `max_tokens` (default: its config value); named `model-t<N>` when that differs, or
        `model-c<N>` when chunked (windows of N tokens, averaged); `-L<k>` added for the output of hidden layer
        `layer` (transformers' hidden_states[k], 0 the embedding layer), pooled as the model pools."""
        configured = self.model(model).max_tokens
        tokens = configured if max_tokens is None else int(max_tokens)
        if chunked:
            if layer is not None:
                raise StudyError(f"{model}-c{tokens}-L{layer}: a chunked variant is taken at the model's own output "
                                 "only (layers: the truncating path)")
            return Variant(model, tokens, f"{model}-c{tokens}", chunked=True)
        name = model if tokens == configured else f"{model}-t{tokens}"
        return Variant(model, tokens, name if layer is None else f"{name}-L{int(layer)}",
                       layer=None if layer is None else int(layer))

    def parse_variant(self, text: str) -> "Variant":
        """A config model name, its max-tokens spelling `bge-m3-t512`, its chunked spelling `bge-m3-c512`, or
        two or more of these joined by '+' (their embeddings side by side: `multilingual-e5-large+bge-m3`)."""
        if text in self.embedding_models:
            return self.variant(text)
        if text.endswith(TEACHER_SUFFIX) and text != TEACHER_SUFFIX:   # probes trained with teacher scores too
            base = self.parse_variant(text.removesuffix(TEACHER_SUFFIX))
            if base.teacher:
                raise StudyError(f"--models {text}: '{TEACHER_SUFFIX}' once")
            return Variant(base.model, base.max_tokens, text, chunked=base.chunked, parts=base.parts, layer=base.layer,
                           teacher=True)
        model, _, tail = text.rpartition("-")
        if tail[:1] == "L" and tail[1:].isdigit() and "+" not in text and model:
            base = self.parse_variant(model)
            if base.chunked:
                raise StudyError(f"--models {text}: a chunked variant is taken at the model's own output only")
            return self.variant(base.model, base.max_tokens, layer=int(tail[1:]))
        if model in self.embedding_models and tail[:1] in ("t", "c") and tail[1:].isdigit() and int(tail[1:]) > 0:
            return self.variant(model, int(tail[1:]), chunked=tail[0] == "c")
        if "+" in text:
            parts = tuple(self.parse_variant(p) for p in text.split("+"))
            if len({p.name for p in parts}) < len(parts):
                raise StudyError(f"--models {text}: a concatenation names the same variant twice")
            return Variant("+".join(p.model for p in parts), min(p.max_tokens for p in parts), text, parts=parts)
        self.model(text)   # raises the "not in embedding_models" error
        raise AssertionError("unreachable")

    def select_variants(self, names: Sequence[str] | None, max_tokens: Sequence[int] | None,
                        available: list[str] | None = None, chunks: bool = False,
                        layers: Sequence[int] | None = None) -> list["Variant"]:
        """What `--models`, `--max-tokens` and `--chunks` mean in every phase.

        names: config model names, `model-t<N>` / `model-c<N>` spellings or `a+b` concatenations; each
        plain model is taken at every value of `max_tokens` (default: its config max tokens; an explicit
        `-t<N>` / `-c<N>` keeps its own; a concatenation keeps its parts'). `chunks`: each plain variant
        also as its chunked twin `model-c<N>`. `layers`: each plain or `-t<N>` variant taken instead at each
        of these hidden layers (`model-L<k>`, a layer sweep). Without names: the `available` variants (phases that read
        what an earlier phase made), kept where their max tokens is among `max_tokens`; else default_models.
        Lists or tuples (a phase's frozen Options); empty means not given.
        """
        names, max_tokens, layers = (list(x) if x else None for x in (names, max_tokens, layers))
        if not names and available is not None:
            found = [self.parse_variant(v) for v in available]
            return [v for v in found if not max_tokens or v.max_tokens in max_tokens]
        out = []
        for text in names or self.default_models:
            parsed = self.parse_variant(text)
            if parsed.layer is not None and parsed.name.startswith(f"{parsed.model}-L") and max_tokens:
                out += [self.variant(parsed.model, t, layer=parsed.layer) for t in max_tokens]   # model-L<k> at each
                continue
            if parsed.name != parsed.model and max_tokens and max_tokens != [parsed.max_tokens] and not parsed.parts:
                raise StudyError(f"--models {text} names its max tokens ({parsed.max_tokens}); it contradicts "
                                 f"--max-tokens {' '.join(map(str, max_tokens))}: give one or the other")
            if parsed.parts or parsed.name != parsed.model or not max_tokens:   # a pair keeps its parts' tokens
                out.append(parsed)
            else:
                out += [self.variant(parsed.model, t) for t in max_tokens]
        if layers:
            out = [x for v in out for x in ([v] if v.parts or v.chunked or v.layer is not None else
                                             [self.variant(v.model, v.max_tokens, layer=k) for k in layers])]
        if chunks:
            out = [x for v in out for x in ([v] if v.parts or v.chunked or v.layer is not None
                                            else [v, self.variant(v.model, v.max_tokens, True)])]
        fits, skipped = [], []
        for v in dict.fromkeys(out):
            (fits if all(self._fits(p) for p in v.parts or [v]) else skipped).append(v)
        for v in skipped:
            bad = next(p for p in v.parts or [v] if not self._fits(p))
            logging.getLogger(__name__).warning(
                f"note: {v.name} skipped: {bad.model} holds {self.model(bad.model).positions} positions, fewer than "
                f"{bad.max_tokens} tokens (never truncated differently than asked)")
        if out and not fits:
            raise StudyError(f"every variant asked for exceeds its model's positions: {', '.join(v.name for v in out)}")
        return fits

    def _fits(self, v: "Variant") -> bool:
        positions = self.model(v.model).positions
        return not positions or v.max_tokens <= positions

    def describe(self, v: "Variant") -> dict:
        """What the evaluation and the report say of a variant: model name(s), role, dimensions; for a
        concatenation its parts' names joined by ' + ' and their summed dimensions."""
        specs = [self.model(p.model) for p in v.parts or [v]]
        return {"model_name": " + ".join(s.model_name for s in specs),
                "role": "frozen_base" if any(s.role == "frozen_base" for s in specs) else "embedding",
                "dimensions": sum(s.dimensions for s in specs),
                **({"chunked": True} if v.chunked else {}),
                **({"layer": v.layer} if v.layer is not None else {}),
                **({"parts": [p.name for p in v.parts]} if v.parts else {}),
                **({"teacher": True} if v.teacher else {})}

    def model_location(self, name: str) -> str:
        """HF id, or an absolute local folder for relative paths and python-package: names."""
        ref = self.model(name).model_name
        if ref.startswith(PACKAGE_SCHEME):
            package, _, sub = ref[len(PACKAGE_SCHEME):].partition("/")
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                raise StudyError(f"model '{name}': python package '{package}' is not installed "
                                 f"(pip install -r requirements.txt)")
            return str(Path(list(spec.submodule_search_locations)[0]) / sub)
        if ref.startswith((".", "/", "~")) or (self.root / ref).exists():
            return str(self.resolve(ref))
        return ref


@dataclass(frozen=True)
class Variant:
    """A config model embedded at a max tokens; `name` names its caches, probes and results.

    chunked: windows of `max_tokens` tokens covering the whole article, their embeddings averaged
    (`model-c<N>`). parts: a concatenation's variants, side by side (`a+b`); then `model` is their
    model names joined by '+' and `max_tokens` the smallest of theirs. layer: the output of that hidden
    layer (hidden_states[layer], 0 the embedding layer) pooled as the model pools (`model-L<k>`); None: the
    model's own output.
    """
    model: str
    max_tokens: int
    name: str
    chunked: bool = False
    parts: tuple["Variant", ...] = ()
    layer: int | None = None
    teacher: bool = False   # `<variant>+teacher`: the same embeddings, probes trained on labels + teacher scores


TEACHER_SUFFIX = "+teacher"


def with_teacher_twins(variants: list[Variant], wanted=lambda name: True) -> list[Variant]:
    """`variants`, each followed by its teacher twin `<variant>+teacher` (the same embeddings, probes trained on labels
    plus teacher-scored articles) where `wanted(its name)`: train_probes.py --teacher-predictions trains every twin,
    phase 3 evaluates those trained."""
    out = []
    for v in variants:
        twin = Variant(v.model, v.max_tokens, v.name + TEACHER_SUFFIX, chunked=v.chunked, parts=v.parts, layer=v.layer,
                       teacher=True)
        out += [v] if v.teacher or not wanted(twin.name) else [v, twin]
    return list(dict.fromkeys(out))


def with_parts(variants: list[Variant]) -> list[Variant]:
    """`variants` with the parts of each concatenation placed before it (once): the order to embed or time them."""
    return list(dict.fromkeys(x for v in variants for x in (*v.parts, v)))


_SHORT = reprlib.Repr()   # what an error line shows of a value: a few items, a few dozen characters
_SHORT.maxstring = _SHORT.maxother = _SHORT.maxlong = 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 4
_SHORT.maxlevel = 2


def short_repr(value) -> str:
    """A bounded repr: never builds the repr of a huge input (a long list, a 5,000-digit number) in full."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"a {'negative ' if value < 0 else ''}whole number of about {int(value.bit_length() * 0.30103)} digits"
    try:
        return _SHORT.repr(value)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__} too large to show"


def _format_validation_error(err: ValidationError, path: Path) -> str:
    parts = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown key '{key}'")
        elif e["type"] == "missing":
            parts.append(f"missing required key '{key}'")
        else:
            parts.append(f"key '{key}': {e['msg']} (found {short_repr(e.get('input'))})")
    return f"{path}: " + "; ".join(parts)


MAX_YAML_BYTES = 1 << 20   # config.yaml is a few kB; a dataset.yaml a few lines
MAX_YAML_DEPTH = 50


class _OneKeyOnce:
    """A key given twice in one mapping is refused (the last would win silently)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise _Refused(key_node.start_mark, f"key {short_repr(key)} given twice in one mapping (first "
                                                        f"on line {seen[key]}): the last would win silently")
                seen[key] = key_node.start_mark.line + 1
            except TypeError:   # an unhashable key: PyYAML's own error follows
                continue
        return super().construct_mapping(node, deep)


class _StrictLoader(_OneKeyOnce, yaml.SafeLoader):
    """safe_load without what only lets a small file grow huge or say two things: anchors and aliases
    (`&a`, `*a`, `<<: *a`: a few hundred bytes can expand to gigabytes), nesting deeper than MAX_YAML_DEPTH,
    and a key given twice in one mapping (the last would win silently). Pure Python: where libyaml is missing."""

    depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        _refuse_alias(event)
        self.depth += 1
        if self.depth > MAX_YAML_DEPTH:
            raise _Refused(event.start_mark, f"nested more than {MAX_YAML_DEPTH} levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_FAST = hasattr(yaml, "CSafeLoader")   # libyaml: parsing and composing in C, about 10x faster


if _FAST:
    class _StrictCLoader(_OneKeyOnce, yaml.CSafeLoader):
        """_StrictLoader's rules with libyaml's parser: anchors, aliases and depth are refused by `_check_events`
        before anything is composed (libyaml composes in C, recursively, where no hook can stop it)."""


def _refuse_alias(event) -> None:
    if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
        raise _Refused(event.start_mark, "anchors and aliases (&name, *name, <<) are not accepted: write the values out")


def _check_events(text: str) -> None:
    """The event stream's anchors, aliases and nesting, as _StrictLoader.compose_node checks them node by node: a node
    (scalar, sequence, mapping) at more than MAX_YAML_DEPTH levels is refused."""
    depth, deep = 0, f"nested more than {MAX_YAML_DEPTH} levels deep"
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            _refuse_alias(event)
            if isinstance(event, (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                if depth + 1 > MAX_YAML_DEPTH:
                    raise _Refused(event.start_mark, deep)
                if not isinstance(event, yaml.ScalarEvent):
                    depth += 1
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.MarkedYAMLError as exc:   # libyaml's scanner reads flow brackets ahead, up to its own limit (1000)
        if "nesting depth" in str(exc.problem) and exc.problem_mark is not None:
            raise _Refused(exc.problem_mark, deep) from None
        raise


class _Refused(Exception):
    def __init__(self, mark, message):
        super().__init__(message)
        self.line, self.message = mark.line + 1, message


def load_yaml(path: Path):
    """A small YAML file (config.yaml, dataset.yaml) read by _StrictLoader; one StudyError naming the file and
    the line otherwise."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise StudyError(f"{path}: {size:,} bytes, more than a settings file holds ({MAX_YAML_BYTES:,} at most)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise StudyError(f"{path}: not UTF-8 (byte 0x{exc.object[exc.start]:02x} at byte {exc.start + 1})") from None
    loader = None
    try:
        if _FAST:
            _check_events(text)
        loader = (_StrictCLoader if _FAST else _StrictLoader)(text)
        return loader.get_single_data()
    except _Refused as exc:
        raise StudyError(f"{path}:{exc.line}: {exc.message}") from None
    except yaml.YAMLError as exc:
        raise StudyError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    except (ValueError, RecursionError) as exc:   # e.g. an integer of more digits than Python converts
        raise StudyError(f"{path}: a value cannot be read ({str(exc).split(':')[0][:120]})") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_config(path: str | Path | None = None) -> Config:
    path = Path(path or DEFAULT_CONFIG).resolve()
    if not path.is_file():
        raise StudyError(f"config file not found: {path}")
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise StudyError(f"{path}: expected a mapping of settings at the top level")
    try:
        return Config(**raw, root=path.parent)
    except ValidationError as exc:
        raise StudyError(_format_validation_error(exc, path)) from None
