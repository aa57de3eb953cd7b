"""Input data: `<dataset dir>/{train,val,test}.jsonl`, validated line by line.

Each line: {"id", "title", "content", "url", "labels": [...], "dimension_names": [...],
"language" (optional)}. Errors name the file, the line and the field at fault.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from study.config import SAFE_NAME, Config, _format_validation_error, load_yaml, short_repr
from study.errors import StudyError

SPLITS = ("train", "val", "test")
UNLABELLED = "unlabelled"   # optional `unlabelled.jsonl` beside the splits: articles without labels (teacher-scored)
DATASET_FILE = "dataset.yaml"   # optional, in a dataset folder: declares its task (see dataset_spec)


@dataclass(frozen=True)
class Dataset:
    name: str
    path: Path
    baseline_mae: float | None  # the fine-tuned model's test MAE from config, if known
    settings: DatasetSettings | None = None  # bands, weights, tiers (config's defaults when None)
    task: str = "regression"    # "classification": one 0/1 label per article (config `task` or dataset.yaml)
    baseline_f1: float | None = None   # classification: the fine-tuned classifier's test F1, if known
    task_source: str | None = None     # where the task was declared; None: nothing declared (regression)
    baseline_n: int | None = None      # test articles the baseline figure was measured on (config baseline_n)


@dataclass
class Split:
    name: str
    path: Path
    sha256: str
    ids: np.ndarray            # str
    titles: np.ndarray         # str
    texts: list[str]           # title + blank line + content (no model prefix)
    labels: np.ndarray         # float32, (n, n_dims)
    dimension_names: list[str]
    languages: np.ndarray      # str; detected where the file has none
    language_detected: np.ndarray  # bool, True where `languages` was detected

    def __len__(self) -> int:
        return len(self.ids)


def dataset_name(name: str | None, data_dir: str | None) -> str:
    """What names a dataset's outputs: --dataset, else the --data-dir folder's name.

    The phases that only read results/ use it, so they also work where the data is not.
    """
    if not name and not data_dir:
        raise StudyError("give --dataset NAME or --data-dir DIR (its folder name names the results)")
    name = name or Path(data_dir).expanduser().resolve().name
    if not SAFE_NAME.fullmatch(name):
        raise StudyError(f"dataset name '{name}' would become part of file names: use letters, digits, '.', '_', "
                         "'+', '-' (give --dataset NAME to name a folder with other characters)")
    return name


@dataclass(frozen=True)
class DatasetSettings:
    """What judges a dataset's results: success-band margins, dimension weights, tiers."""
    bands: dict                        # {"closes_gap": margin, "partial": margin}
    weights: dict[str, float] | None   # None: equal weights
    tiers: dict                        # {"medium": score, "high": score}


def dataset_settings(cfg: Config, name: str) -> DatasetSettings:
    """The dataset's own bands, weights and tiers from config.yaml, else the top-level defaults."""
    entry = cfg.datasets.get(name)
    bands = (entry and entry.success_bands) or cfg.success_bands
    tiers = (entry and entry.tiers) or cfg.tiers
    return DatasetSettings(bands=bands.model_dump(), weights=entry.dimension_weights if entry else None,
                           tiers=tiers.model_dump())


def resolve_dataset(cfg: Config, name: str | None, data_dir: str | None, need_folder: bool = True) -> Dataset:
    """`--dataset NAME` from config, `--data-dir DIR` for any folder, or both (name + folder).

    need_folder=False: the data may be absent (results copied home); the caches stand in for it.
    """
    if not name and not data_dir:
        raise StudyError("give --dataset NAME (one of: " + ", ".join(cfg.datasets) + ") or --data-dir DIR")
    entry = cfg.datasets.get(name) if name else None
    if name and not data_dir and entry is None:
        raise StudyError(f"dataset '{name}' is not in config.yaml datasets "
                         f"(known: {', '.join(cfg.datasets)}); or point --data-dir at a folder")
    path = Path(data_dir).expanduser().resolve() if data_dir else cfg.resolve(entry.path)
    if need_folder and not path.is_dir():
        raise StudyError(f"dataset folder not found: {path}")
    name = dataset_name(name, str(path))
    entry = entry or cfg.datasets.get(name)
    spec, source = (entry, "config.yaml") if entry else (dataset_spec(path), str(path / DATASET_FILE))
    return Dataset(name=name, path=path, baseline_mae=spec.baseline_mae if spec else None,
                   settings=dataset_settings(cfg, name), task=spec.task if spec else "regression",
                   baseline_f1=spec.baseline_f1 if spec else None, task_source=source if spec else None,
                   baseline_n=spec.baseline_n if spec else None)


def dataset_spec(folder: Path):
    """The folder's `dataset.yaml` (study.config.DatasetSpec: task, baseline_mae, baseline_f1), or None.

    How a folder given by --data-dir, and not named in config.yaml, declares `task: classification`;
    a dataset named in config.yaml takes its task from there and this file is not read."""
    from study.config import DatasetSpec

    path = Path(folder) / DATASET_FILE
    if not path.is_file():
        return None
    raw = load_yaml(path) or {}
    if not isinstance(raw, dict):
        raise StudyError(f"{path}: expected a mapping (task: classification, baseline_f1: ...)")
    try:
        return DatasetSpec(**raw)
    except ValidationError as exc:
        raise StudyError(_format_validation_error(exc, path)) from None


TEXT_RECIPE = ("title + blank line + content, each stripped of surrounding whitespace; either alone when the "
               "other is empty; the model's prefix in front")


def clip_text(text: str, tokens: int) -> str:
    """`text` cut where no tokenizer reading at most `tokens` tokens can reach: after its (tokens + 16)th word (every
    tokenizer the study uses splits words at white space first and gives each word one token at least), and at
    200 characters a word on average at most. So a 20 MB article costs the memory of a short one, and its
    embedding is the same unless its words average over 200 characters."""
    words = tokens + 16
    cap = 200 * words
    if len(text) <= words:
        return text
    for k, m in enumerate(_WORD.finditer(text, 0, cap), 1):
        if k == words:
            return text[:m.end()]
    return text[:cap]


_WORD = re.compile(r"\S+")


def build_text(title: str, content: str) -> str:
    """The text the production screening stage embeds: title, blank line, content."""
    title, content = (title or "").strip(), (content or "").strip()
    if title and content:
        return f"{title}\n\n{content}"
    return title or content


def file_sha256(path: Path) -> str:
    """sha256 of a file, read once per process while its size and modification time stay the same
    (phases check the same split files against several caches)."""
    st = Path(path).stat()
    return _sha256_of(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def detect_languages(texts: list[str]) -> list[str]:
    """ISO 639-1 codes from py3langid (offline, deterministic)."""
    import py3langid

    return [py3langid.classify(t[:2000])[0] for t in texts]


LANGUAGE = re.compile(r"[a-z]{2,3}(?:[-_][a-z0-9]{1,8})*")


def language_code(value) -> str | None | bool:
    """A split's `language` as one spelling ('EN', ' en' and 'en' are one language: 'en'); None when absent or
    blank (then detected); False when it is no language code ('|', a line break, prose)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        return False
    code = value.strip().lower()
    return code if LANGUAGE.fullmatch(code) else False


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def table_safe(name: str) -> bool:
    """A name the markdown and docx tables can show as it is: no '|', no control character, no lone surrogate."""
    return "|" not in name and _encodable(name) and not any(unicodedata.category(c).startswith("C") for c in name)


def _finite(v) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:   # an integer beyond float range (a 401-digit label)
        return False


def _fail(path: Path, line: int, msg: str):
    raise StudyError(f"{path}:{line}: {msg}")


MAX_LINE_BYTES = 64 << 20   # one article's line of a JSON-lines file; a longer one is refused, unread


def jsonl_records(path: Path, digest=None):
    """(line number, object) of each non-blank line of a JSON-lines file: the one reader of splits and of Stage 1's
    input. StudyError naming the file and line at the first line that is over MAX_LINE_BYTES, not UTF-8, not
    JSON (malformed, cut short, nested too deeply, an over-long number) or not an object. `digest`: a hashlib
    object given every byte read (what was scored is what was checked)."""
    with open(path, "rb") as fh:
        lineno = 0
        while True:
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            lineno += 1
            if digest is not None:
                digest.update(raw)
            if len(raw) > MAX_LINE_BYTES:
                _fail(path, lineno, f"the line is over {MAX_LINE_BYTES >> 20} MiB (one article may take that much; "
                                    "cut its content)")
            try:   # a UTF-8 byte-order mark on the first line is accepted
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                _fail(path, lineno, f"not UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line)")
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                where = "the line is cut short" if exc.pos >= len(line.rstrip("\r\n")) else f"column {exc.colno}"
                _fail(path, lineno, f"malformed JSON ({exc.msg}; {where})")
            except RecursionError:
                _fail(path, lineno, "malformed JSON (nested too deeply)")
            except ValueError as exc:   # an integer of more digits than Python converts
                _fail(path, lineno, f"unreadable JSON ({str(exc).split(':')[0]})")
            if not isinstance(rec, dict):
                _fail(path, lineno, "expected a JSON object")
            yield lineno, rec


def article_of(path: Path, lineno: int, rec: dict) -> tuple[str | int, str, str]:
    """(id, title, text) of an article's line: an id, `title` and `content` strings without lone surrogates, and
    some text; StudyError naming the file, line and field otherwise."""
    if "id" not in rec:
        _fail(path, lineno, "field 'id' is missing")
    title, content = rec.get("title") or "", rec.get("content") or ""
    if not isinstance(title, str) or not isinstance(content, str):
        _fail(path, lineno, "fields 'title' and 'content' must be strings")
    for field in ("id", "title", "content", "language"):
        if isinstance(rec.get(field), str) and not _encodable(rec[field]):
            _fail(path, lineno, f"field '{field}' holds a lone surrogate (an escape such as \\ud800 "
                                "that is no character)")
    text = build_text(title, content)
    if not text:
        _fail(path, lineno, f"article '{rec['id']}' has neither 'title' nor 'content'")
    if not isinstance(rec["id"], (str, int)) or isinstance(rec["id"], bool) or not str(rec["id"]).strip():
        _fail(path, lineno, f"field 'id' must be a non-empty string or a whole number, found "
                            f"{short_repr(rec['id'])}")
    return rec["id"], title, text


def load_split(dataset: Dataset, split: str, score_range: tuple[float, float],
               dimension_names: list[str] | None = None) -> Split:
    """One split's articles, validated line by line. `split` UNLABELLED: the article format without `labels` and
    `dimension_names` (`dimension_names`: the labelled splits'; its labels are NaN)."""
    path = dataset.path / f"{split}.jsonl"
    if not path.is_file():
        raise StudyError(f"split '{split}' missing: {path} does not exist")
    if split == UNLABELLED:
        return _unlabelled(path, dimension_names)
    ids, titles, texts, labels, langs = [], [], [], [], []
    dims: list[str] | None = None
    low, high = score_range
    first_line: dict[str, int] = {}
    for lineno, rec in jsonl_records(path):
        for key in ("id", "labels", "dimension_names"):
            if key not in rec:
                _fail(path, lineno, f"field '{key}' is missing")
        _, title, text = article_of(path, lineno, rec)
        names = rec["dimension_names"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            _fail(path, lineno, "field 'dimension_names' must be a non-empty list of non-empty strings")
        odd = next((n for n in names if not table_safe(n)), None)
        if odd is not None:
            _fail(path, lineno, f"field 'dimension_names': {short_repr(odd)} holds '|', a line break, another "
                                "control character or a lone surrogate (it would break the report's tables)")
        if len(set(names)) != len(names):
            twice = next(n for n, k in Counter(names).items() if k > 1)
            _fail(path, lineno, f"field 'dimension_names' names '{twice}' more than once")
        if dims is None:
            dims = names
        elif names != dims:
            _fail(path, lineno, f"field 'dimension_names' {names} differs from the first line's {dims}")
        y = rec["labels"]
        if not isinstance(y, list) or len(y) != len(dims):
            _fail(path, lineno, f"field 'labels' must be a list of {len(dims)} numbers "
                                f"(one per dimension name), found {short_repr(y)}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v) for v in y):
            _fail(path, lineno, f"field 'labels' must hold only numbers (finite ones), found {short_repr(y)}")
        if dataset.task == "classification" and (len(y) != 1 or y[0] not in (0, 1)):
            _fail(path, lineno, f"field 'labels' must be [0] or [1] (one yes/no label: the dataset's task is "
                                f"classification), found {y!r}")
        bad = [(dims[i], v) for i, v in enumerate(y) if not low <= v <= high]
        if bad:
            _fail(path, lineno, f"field 'labels' outside score_range [{low:g}, {high:g}]: "
                                + ", ".join(f"{d}={v}" for d, v in bad))
        lang = _language_and_id(path, lineno, rec, first_line)
        ids.append(str(rec["id"]))
        titles.append(title)
        texts.append(text)
        labels.append(y)
        langs.append(lang)
    return _split(split, path, ids, titles, texts, np.asarray(labels, dtype=np.float32), list(dims or []), langs)


def _language_and_id(path: Path, lineno: int, rec: dict, first_line: dict) -> str | None:
    """A line's language code (None: to be detected), its id recorded in `first_line` as unique (else the error)."""
    lang = language_code(rec.get("language"))
    if lang is False:
        _fail(path, lineno, f"field 'language' must be a language code such as 'en' or 'pt-br', found "
                            f"{short_repr(rec['language'])}")
    if str(rec["id"]) in first_line:
        _fail(path, lineno, f"article id '{rec['id']}' already appears on line {first_line[str(rec['id'])]}")
    first_line[str(rec["id"])] = lineno
    return lang


def _split(name, path, ids, titles, texts, labels, dims, langs) -> Split:
    if not ids:
        raise StudyError(f"{path}: no articles")
    missing = [i for i, lang in enumerate(langs) if lang is None]
    if missing:
        for i, code in zip(missing, detect_languages([texts[i] for i in missing])):
            langs[i] = code
    detected = np.zeros(len(ids), dtype=bool)
    detected[missing] = True
    return Split(name=name, path=path, sha256=file_sha256(path), ids=np.array(ids, dtype=object),
                 titles=np.array(titles, dtype=object), texts=texts, labels=labels,
                 dimension_names=list(dims), languages=np.array(langs, dtype=object), language_detected=detected)


def _unlabelled(path: Path, dims: list[str] | None) -> Split:
    """`unlabelled.jsonl`: id, title, content (url, language optional), no labels; labels NaN (n, len(dims))."""
    if not dims:
        raise AssertionError("the unlabelled split takes the labelled splits' dimension_names")
    ids, titles, texts, langs, first_line = [], [], [], [], {}
    for lineno, rec in jsonl_records(path):
        if "labels" in rec:
            _fail(path, lineno, "field 'labels' is not expected in unlabelled.jsonl (an article with labels belongs "
                                "in train.jsonl; this file holds the articles only a teacher scored)")
        _, title, text = article_of(path, lineno, rec)
        lang = _language_and_id(path, lineno, rec, first_line)
        ids.append(str(rec["id"]))
        titles.append(title)
        texts.append(text)
        langs.append(lang)
    return _split(UNLABELLED, path, ids, titles, texts, np.full((len(ids), len(dims)), np.nan, np.float32), dims, langs)


def splits_present(dataset: Dataset) -> tuple[str, ...]:
    """The splits phase 1 embeds: train, val, test, and `unlabelled` where the folder holds unlabelled.jsonl."""
    return SPLITS + ((UNLABELLED,) if (dataset.path / f"{UNLABELLED}.jsonl").is_file() else ())


def load_splits(dataset: Dataset, score_range, splits=SPLITS) -> dict[str, Split]:
    out = {}
    for s in splits:   # the unlabelled split takes the first labelled split's dimension names
        first = next(iter(out.values()), None) if s == UNLABELLED else None
        if s == UNLABELLED and first is None:
            first = load_split(dataset, "train", score_range)
        out[s] = load_split(dataset, s, score_range, first.dimension_names if first else None)
    first = out[splits[0]]
    for s in splits[1:]:
        if out[s].dimension_names != first.dimension_names:
            raise StudyError(f"{out[s].path}: dimension_names {out[s].dimension_names} differ from "
                             f"{first.path}'s {first.dimension_names}")
    return out


def split_leaks(splits: dict[str, Split], examples: int = 3) -> dict:
    """Articles in more than one split: the same id, or the same title + content under another id.

    {"same_id": n, "same_text": n, "examples": [{"splits", "ids"}]}; both inflate test scores.
    """
    by_id, by_text = {}, {}
    for name, split in splits.items():
        for article_id, text in zip(split.ids, split.texts):
            by_id.setdefault(article_id, []).append(name)
            by_text.setdefault(hashlib.sha256(text.encode("utf-8")).hexdigest(), []).append((name, article_id))
    same_id = {i: s for i, s in by_id.items() if len(set(s)) > 1}
    same_text = [v for v in by_text.values() if len({s for s, _ in v}) > 1 and len({i for _, i in v}) > 1]
    shown = [{"splits": sorted(set(s)), "ids": [i]} for i, s in list(same_id.items())[:examples]]
    shown += [{"splits": sorted({s for s, _ in v}), "ids": sorted({i for _, i in v})} for v in same_text[:examples]]
    return {"same_id": len(same_id), "same_text": len(same_text), "examples": shown}


def read_predictions(path, dimension_names: list[str], what: str = "baseline predictions"):
    """A fine-tuned model's predictions file, the layout of the LLM Distillery training scripts
    (`benchmarks/test_set_predictions.json`): {predictions: [[...]], labels: [[...]], article_ids: [...],
    dimension_names: [...]}; `labels` and `article_ids` optional. (ids as strings or None when absent, predictions
    (n, dims) in the order of `dimension_names`, labels in that order or None). The one parser of --baseline-predictions
    and --teacher-predictions; StudyError naming the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"{what} not found: {path}")
    from study.artifacts import read_json

    raw = read_json(path, what)
    if not isinstance(raw, dict) or "predictions" not in raw:
        raise StudyError(f"{path}: expected an object with a 'predictions' field")
    names = raw.get("dimension_names") or dimension_names
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise StudyError(f"{path}: 'dimension_names' must be a list of strings, found {short_repr(names)}")
    try:
        preds = np.asarray(raw["predictions"], dtype=np.float64)
    except (TypeError, ValueError):
        preds = np.zeros(0)
    if preds.ndim != 2 or preds.shape[1] != len(names) or not np.isfinite(preds).all():
        raise StudyError(f"{path}: 'predictions' must be a list of {len(names)}-number lists (finite numbers)")
    if sorted(names) != sorted(dimension_names):
        raise StudyError(f"{path}: dimension_names {names} differ from the dataset's {dimension_names}")
    order = [names.index(d) for d in dimension_names]
    labels = raw.get("labels")
    if labels is not None:
        try:
            labels = np.asarray(labels, dtype=np.float64)[:, order]
        except (TypeError, ValueError, IndexError):
            raise StudyError(f"{path}: 'labels' must be a list of {len(names)}-number lists") from None
    ids = raw.get("article_ids")
    if ids is not None:
        if not isinstance(ids, list) or not all(isinstance(a, (str, int)) and not isinstance(a, bool) for a in ids):
            raise StudyError(f"{path}: 'article_ids' must be a list of strings or whole numbers")
        ids = [str(a) for a in ids]
        if len(ids) != len(preds):
            raise StudyError(f"{path}: {len(ids)} article_ids but {len(preds)} predictions")
    return ids, preds[:, order], labels


def load_baseline_predictions(path, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """The fine-tuned model's test predictions, aligned to `split`: (row indices, predictions).

    Layout: `read_predictions`. Ids are matched to the test file's; ids of the form `article_<i>` (or no ids) mean
    the i-th test article, accepted only where the file's labels agree with the test labels.
    """
    path = Path(path)
    ids, preds, labels = read_predictions(path, split.dimension_names)
    ids = ids or [f"article_{i}" for i in range(len(preds))]
    position = {a: i for i, a in enumerate(split.ids)}
    if all(a in position for a in ids):
        rows = np.array([position[a] for a in ids])
    elif all(a.startswith("article_") and a[8:].isdigit() and int(a[8:]) < len(split) for a in ids):
        rows = np.array([int(a[8:]) for a in ids])
        if labels is None or not np.allclose(labels, split.labels[rows], atol=1e-3):
            raise StudyError(f"{path}: ids are positions (article_<i>) but its labels do not agree with "
                             f"{split.path} in that order; cannot match the articles safely")
    else:
        unknown = next(a for a in ids if a not in position)
        raise StudyError(f"{path}: article id '{unknown}' is not in {split.path}")
    if len(set(rows.tolist())) != len(rows):
        raise StudyError(f"{path}: some articles appear more than once")
    return rows, preds


@dataclass(frozen=True)
class TeacherScores:
    """The fine-tuned model's scores of any articles (--teacher-predictions): by article id, clipped to the score
    range as its serving code clips them."""
    path: Path
    sha256: str
    ids: dict[str, int]      # article id -> row of `scores`
    scores: np.ndarray       # (n, dims), float64

    def rows(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """(positions in `ids` that the teacher scored, their teacher scores)."""
        found = [(i, self.ids[str(a)]) for i, a in enumerate(ids) if str(a) in self.ids]
        where = np.array([i for i, _ in found], dtype=np.int64)
        return where, self.scores[[r for _, r in found]].reshape(len(found), self.scores.shape[1])


def load_teacher_predictions(path, dimension_names: list[str], score_range, known_ids=None) -> TeacherScores:
    """--teacher-predictions: the format of --baseline-predictions (`read_predictions`) with `article_ids` required
    (the articles of any split and of unlabelled.jsonl, matched by id). `known_ids`: every article id of the
    dataset's files; a file that scores none of them is refused."""
    path = Path(path)
    ids, preds, _ = read_predictions(path, dimension_names, "teacher predictions")
    if ids is None:
        raise StudyError(f"{path}: teacher predictions need 'article_ids' (the ids of the articles scored, as in "
                         "train.jsonl and unlabelled.jsonl)")
    twice = next((a for a, k in Counter(ids).items() if k > 1), None)
    if twice is not None:
        raise StudyError(f"{path}: article id '{twice}' appears more than once")
    if known_ids is not None and not set(ids) & {str(a) for a in known_ids}:
        raise StudyError(f"{path}: none of its {len(ids)} article ids is an article of the dataset (e.g. "
                         f"'{ids[0]}')" if ids else f"{path}: no predictions")
    return TeacherScores(path=path, sha256=file_sha256(path), ids={a: i for i, a in enumerate(ids)},
                         scores=np.clip(preds, *score_range))
