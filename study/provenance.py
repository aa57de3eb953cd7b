"""Where and with what an artifact was made: code version, host, device, library versions, model revision.

Every cache, JSON and report records `record()`, so results copied home still say which
server, GPU, libraries and model weights produced them; the model's revision is also part
of each cache's fingerprint, so changed weights rebuild the cache.
"""
from __future__ import annotations

import functools
import hashlib
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIBRARIES = {"torch": "torch", "transformers": "transformers", "sentence-transformers": "sentence-transformers",
             "tokenizers": "tokenizers", "lightgbm": "lightgbm", "sklearn": "scikit-learn", "numpy": "numpy",
             "scipy": "scipy", "matplotlib": "matplotlib", "python-docx": "python-docx", "pydantic": "pydantic"}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx")


@functools.lru_cache(maxsize=1)
def code_version() -> dict:
    """The git commit of this checkout and whether its tracked files differ from it (None outside git)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10)
    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


@functools.lru_cache(maxsize=1)
def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for key, dist in LIBRARIES.items():
        try:
            out[key] = version(dist)
        except PackageNotFoundError:
            out[key] = None
    torch = sys.modules.get("torch")   # the CUDA build of a phase that runs torch; the others (the comparison,
    if torch is not None:              # the report) do not import it for this line
        out["cuda"] = torch.version.cuda
        out["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return out


def record(device: str | None = None) -> dict:
    """The provenance block every artifact carries."""
    return {"code": code_version(), "host": platform.node(), "device": device, "versions": versions(),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


@functools.lru_cache(maxsize=32)
def model_revision(location: str) -> str | None:
    """The model's revision: the hub commit of a downloaded model (its snapshot folder), else a sha256 of the
    weight files of a local folder; None when neither can be known (a hub model not downloaded yet)."""
    path = Path(location).expanduser()
    if not path.is_dir():
        try:
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(location, local_files_only=True))
        except Exception:   # not in the hub cache (or not a hub id): unknown until downloaded
            return None
        if path.parent.name == "snapshots":
            return f"hub:{path.name}"
    digest, found = hashlib.sha256(), False
    for weights in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES):
        found = True
        digest.update(weights.relative_to(path).as_posix().encode())
        with open(weights, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
    return f"sha256:{digest.hexdigest()[:16]}" if found else None
