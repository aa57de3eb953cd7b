"""Writing and reading artifacts: atomic files, JSON, `.npz`, probes (.pkl + .sha256).

Every write goes to a temporary file in the target folder and is renamed into place,
so a crash or Ctrl-C never leaves a truncated artifact. `.npz` files hold only plain
arrays (they load with `allow_pickle=False`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from study import paths
from study.errors import StudyError

@contextlib.contextmanager
def atomic_path(path: Path, mode: str = "wb"):
    """Yield an open temp file beside `path`; on success fsync and rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Path, data) -> None:
    with atomic_path(path, "w") as fh:
        json.dump(_jsonable(data), fh, indent=2, ensure_ascii=False)
        fh.write("\n")


def read_json(path: Path, what: str = "file"):
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StudyError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None


def deep_merge(old: dict, new: dict) -> dict:
    out = dict(old)
    for key, value in new.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def merge_json(path: Path, update: dict) -> dict:
    """Merge `update` into the JSON object at `path` (created if absent) and write it back."""
    merged = deep_merge(read_json(path) if Path(path).exists() else {}, update)
    write_json(path, merged)
    return merged


def save_npz(path: Path, **arrays) -> None:
    with atomic_path(path, "wb") as fh:
        np.savez(fh, **arrays)


NPZ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def read_npz(path: Path, what: str, remedy: str) -> dict:
    """Every array of an .npz (`allow_pickle=False`); StudyError naming the file if absent or damaged."""
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"{what} not found: {path} ({remedy})")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except NPZ_ERRORS as exc:
        raise StudyError(f"{path}: unreadable {what} ({exc}); {remedy}") from None


# -- probes -----------------------------------------------------------------------------
def save_pickle(path: Path, obj) -> str:
    """Pickle `obj` atomically and write `<path>.sha256` ('<hex>  <name>'); returns the digest."""
    path = Path(path)
    blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    digest = hashlib.sha256(blob).hexdigest()
    with atomic_path(path, "wb") as fh:
        fh.write(blob)
    with atomic_path(paths.checksum(path), "w") as fh:
        fh.write(f"{digest}  {path.name}\n")
    return digest


def load_pickle(path: Path):
    """Load a pickle after checking it against its `.sha256` file."""
    path = Path(path)
    sidecar = paths.checksum(path)
    if not path.is_file():
        raise StudyError(f"probe not found: {path} (run train_probes.py first)")
    if not sidecar.is_file():
        raise StudyError(f"{sidecar} is missing: refusing to unpickle {path} without its checksum")
    blob = path.read_bytes()
    expected = sidecar.read_text().split()[0] if sidecar.read_text().split() else ""
    if hashlib.sha256(blob).hexdigest() != expected:
        raise StudyError(f"{path}: checksum differs from {sidecar.name}; the file was changed or damaged")
    return pickle.loads(blob)
