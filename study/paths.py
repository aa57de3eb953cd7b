"""Every artifact's file name, in one place: no other module builds one.

Embedding caches live under `embeddings_dir`, everything else under `results_dir` (both
from config.yaml). Every name starts with the dataset's name, so several datasets share
one `results/` without touching each other's files. A variant is a config model name,
with `-t<N>` when it was embedded at another max tokens than the config's.

Figures are recorded by name in the JSON of the phase that drew them (`relative`) and
found again from that record (`recorded`), never by listing a folder.
"""
from __future__ import annotations

from pathlib import Path

from study.config import TEACHER_SUFFIX, Config


# -- phase 1 ------------------------------------------------------------------------------
def embedding_cache(cfg: Config, dataset: str, variant: str, split: str) -> Path:
    """A variant's embeddings of a split; a teacher variant (`<variant>+teacher`) reads its base variant's."""
    variant = variant.removesuffix(TEACHER_SUFFIX)
    return cfg.embeddings_path / f"{dataset}_{variant}_{split}.npz"


def runtime_models(cfg: Config) -> Path:
    """The encoders exported for another runtime (--backend onnx / openvino), one file per model and setting."""
    return cfg.embeddings_path / "runtimes"


def data_checks(cfg: Config, dataset: str) -> Path:
    """What phase 1 found in the data itself (articles in more than one split)."""
    return cfg.results_path / f"{dataset}_data_checks.json"


def partial_cache(cache: Path) -> Path:
    """The partial work of an embedding cache being written (removed once the cache is complete)."""
    cache = Path(cache)
    return cache.with_name(f".{cache.stem}.partial.npz")


# -- phase 2 ------------------------------------------------------------------------------
def probe(cfg: Config, dataset: str, variant: str, kind: str) -> Path:
    return cfg.results_path / f"{dataset}_{variant}_{kind}.pkl"


def subset_probe(cfg: Config, dataset: str, variant: str, kind: str, n_train: int) -> Path:
    """A learning-curve probe, trained on the first `n_train` rows of the seeded permutation of the
    training split (train_probes.py --train-fractions); the full-data probe keeps `probe`'s name."""
    return cfg.results_path / f"{dataset}_{variant}_{kind}_n{int(n_train)}.pkl"


def transfer_probe(cfg: Config, dataset: str, variant: str, kind: str, languages) -> Path:
    """A probe trained on the articles of some languages only (train_probes.py --train-languages)."""
    return cfg.results_path / f"{dataset}_{variant}_{kind}_from-{'+'.join(sorted(languages))}.pkl"


def finetuned(cfg: Config, dataset: str, variant: str) -> Path:
    """The fine-tuned encoder of a variant (finetune_encoder.py): model.safetensors, recipe.json, checkpoint.pt."""
    return cfg.results_path / f"{dataset}_{variant}_finetuned"


def lock(path: Path) -> Path:
    """The lock file that writers of `path` take turns on."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def checksum(path: Path) -> Path:
    """The `.sha256` sidecar of a pickle: '<hex>  <file name>'."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def training_summary(cfg: Config, dataset: str) -> Path:
    return cfg.results_path / f"{dataset}_training_summary.json"


# -- phase 3 ------------------------------------------------------------------------------
def evaluation(cfg: Config, dataset: str) -> Path:
    return cfg.results_path / f"{dataset}_evaluation_results.json"


def predictions(cfg: Config, dataset: str, variant: str, kind: str, split: str = "test") -> Path:
    return cfg.results_path / "predictions" / f"{dataset}_{variant}_{kind}_{split}.npz"


# -- score_articles.py (Stage 1 as a tool) --------------------------------------------------
def stage1(cfg: Config, dataset: str, variant: str, kind: str) -> Path:
    """Phase 3's Stage 1 bundle of a probe, a folder (study/stage1.py): the probe and the thresholds, weights and
    tiers chosen for it on validation, as JSON + safetensors + LightGBM text, a model card and SHA256SUMS."""
    return cfg.results_path / f"{dataset}_stage1_{variant}_{kind}"


def scoring_partial(output: Path) -> Path:
    """The scored lines of an unfinished score_articles.py run, beside its output (renamed onto it when done)."""
    output = Path(output)
    return output.with_name(f".{output.name}.partial")


def scoring_lock(output: Path) -> Path:
    """Held by the one score_articles.py run writing `output` (pid, host and command inside)."""
    output = Path(output)
    return output.with_name(f".{output.name}.lock")


def scoring_checkpoint(output: Path) -> Path:
    """How far that partial file got: articles, bytes, counts and the settings it is bound to."""
    output = Path(output)
    return output.with_name(f".{output.name}.checkpoint.json")


# -- phase 3b -----------------------------------------------------------------------------
def comparison_markdown(cfg: Config, dataset: str) -> Path:
    return cfg.results_path / f"{dataset}_comparison_report.md"


def comparison_record(cfg: Config, dataset: str) -> Path:
    """compare_results.py's JSON: the figures it drew, by name."""
    return cfg.results_path / f"{dataset}_comparison.json"


def comparison_figure(cfg: Config, dataset: str, name: str) -> Path:
    return cfg.results_path / "figures" / f"{dataset}_{name}.png"


# -- phase 4 ------------------------------------------------------------------------------
def benchmark(cfg: Config, dataset: str) -> Path:
    return cfg.results_path / "benchmarks" / f"{dataset}_benchmarks.json"


# -- phase 5 ------------------------------------------------------------------------------
def error_summary(cfg: Config, dataset: str) -> Path:
    return cfg.results_path / "analysis" / f"{dataset}_error_summary.json"


def error_figure(cfg: Config, dataset: str, kind: str, name: str) -> Path:
    return cfg.results_path / "analysis" / f"{dataset}_{kind}_{name}.png"


# -- phase 6 ------------------------------------------------------------------------------
def report(cfg: Config, dataset: str) -> Path:
    return cfg.results_path / f"{dataset}_report.docx"


def report_figure(report_path: Path, name: str) -> Path:
    """A chart drawn for the report itself, in a folder beside the .docx."""
    report_path = Path(report_path)
    return report_path.with_name(f"{report_path.stem}_figures") / f"{name}.png"


# -- recording figures in JSON --------------------------------------------------------------
def relative(cfg: Config, path: Path) -> str:
    """`path` as recorded in a phase's JSON: relative to results_dir, so a copied folder still works."""
    return Path(path).resolve().relative_to(cfg.results_path.resolve()).as_posix()


def recorded(cfg: Config, rel: str) -> Path:
    """The file a JSON record names (see `relative`)."""
    return cfg.results_path / rel


# -- run_all.py ---------------------------------------------------------------------------
def run_log(cfg: Config, dataset: str, started: str) -> Path:
    """The log of one run_all.py run on one dataset; `started` is its UTC start time."""
    return cfg.results_path / "logs" / f"{started}_{dataset}.log"


def summary_markdown(cfg: Config) -> Path:
    """The cross-dataset summary of a run over several datasets."""
    return cfg.results_path / "summary.md"


def summary_record(cfg: Config) -> Path:
    return cfg.results_path / "summary.json"


def summary_figure(cfg: Config) -> Path:
    return cfg.results_path / "figures" / "summary_mae_by_dataset.png"
