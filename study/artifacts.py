"""Writing and reading artifacts: atomic files, JSON, `.npz`, probes (.pkl + .sha256).

Every write goes to a temporary file in the target folder and is renamed into place,
so a crash or Ctrl-C never leaves a truncated artifact. `.npz` files hold only plain
arrays (they load with `allow_pickle=False`).
"""
from __future__ import annotations

import contextlib
import contextvars
import errno
import fcntl
import glob
import hashlib
import io
import json
import math
import os
import pickle
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np

from study import paths
from study.errors import StudyError

STALE_TMP_SECONDS = 3600   # a temp file untouched this long was left by a killed write


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_stale_temps(path: Path) -> None:
    """Temp files of earlier writes of `path` that a kill left behind (a partial cache can be as big as a full one)."""
    now = time.time()
    for old in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        with contextlib.suppress(OSError):
            if now - old.stat().st_mtime > STALE_TMP_SECONDS:
                old.unlink()


def _temp_beside(path: Path) -> tuple[int, str]:
    """A new temp file in the target's folder (so the rename stays atomic), with a plain open's permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


def _stage(path: Path, data: bytes) -> str:
    """`data` in a complete, fsynced temp file beside `path`; the caller renames it."""
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


# Inside `staged_writes`: {target: its complete temp file}, renamed into place when the block succeeds.
_STAGING: contextvars.ContextVar[dict | None] = contextvars.ContextVar("staging", default=None)


@contextlib.contextmanager
def staged_writes():
    """Hold back every `atomic_path` write of the block (write_json, save_npz, figures) until it ends.

    Each write is complete in its temp file beside the target; when the block ends without an error
    they are renamed into place in the order written; on an error (or Ctrl-C) every one is removed,
    so a failing command leaves its folders as they were. Reads inside the block (read_json,
    read_npz, `current`) see the staged versions.
    """
    staged: dict[Path, str] = {}
    token = _STAGING.set(staged)
    try:
        yield
    except BaseException:
        _discard(staged.values())
        raise
    finally:
        _STAGING.reset(token)
    done = []
    try:
        for target, tmp in staged.items():
            os.replace(tmp, target)
            done.append(target)
    except BaseException:
        _discard(tmp for target, tmp in staged.items() if target not in done)
        raise


def _discard(temps) -> None:
    for tmp in list(temps):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def current(path: Path) -> Path:
    """What a read of `path` should open: the version staged in this `staged_writes` block, else the file."""
    staged = _STAGING.get()
    path = Path(path)
    return Path(staged[path.absolute()]) if staged and path.absolute() in staged else path


@contextlib.contextmanager
def atomic_path(path: Path, mode: str = "wb"):
    """Yield an open temp file beside `path`; on success fsync and rename it to `path` (inside
    `staged_writes`: at the end of that block).

    The file gets the permissions of a plain `open` (0666 less the umask), so colleagues in the
    group can read results/ where the umask lets them.
    """
    path = Path(path)
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        staged = _STAGING.get()
        if staged is None:
            os.replace(tmp, path)
        else:   # a second write of the same file replaces the first staged one and moves to the end
            _discard([staged.pop(path.absolute())] if path.absolute() in staged else [])
            staged[path.absolute()] = tmp
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


JSON_MAX_DEPTH = 100         # arrays and objects inside each other
JSON_MAX_NUMBER_CHARS = 100  # digits of one number


class _BadJSON(ValueError):
    pass


def _json_int(text: str) -> int:
    if len(text) > JSON_MAX_NUMBER_CHARS:
        raise _BadJSON(f"a number of {len(text):,} digits")
    return int(text)


def _json_float(text: str) -> float:
    if len(text) > JSON_MAX_NUMBER_CHARS:
        raise _BadJSON(f"a number of {len(text):,} characters")
    value = float(text)
    if not math.isfinite(value):
        raise _BadJSON(f"{text[:20]}, beyond the range of a float")
    return value


def _json_constant(text: str):
    raise _BadJSON(f"{text}, which is no number of JSON")


def _json_checked(data) -> None:
    """Depth at most JSON_MAX_DEPTH, no lone surrogate in a string or key (walked without recursion)."""
    todo = [(data, 0)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise _BadJSON(f"a lone surrogate (\\u{ord(value[_surrogate_at(value)]):04x}, no character)") from None
        elif isinstance(value, (dict, list)):
            if depth >= JSON_MAX_DEPTH:
                raise _BadJSON(f"nested more than {JSON_MAX_DEPTH} deep")
            items = list(value.items()) if isinstance(value, dict) else [(None, v) for v in value]
            for key, v in items:
                todo.append((v, depth + 1))
                if key is not None:
                    todo.append((key, depth + 1))


def _surrogate_at(text: str) -> int:
    return next(i for i, c in enumerate(text) if 0xD800 <= ord(c) <= 0xDFFF)


def parse_json(text: str, where) -> object:
    """JSON text of a file the study did not necessarily write, guarded: nesting (JSON_MAX_DEPTH), number length
    (JSON_MAX_NUMBER_CHARS), NaN / Infinity / numbers beyond a float, lone surrogates are each one StudyError
    naming `where`, never a RecursionError or a traceback further on."""
    try:
        data = json.loads(text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant)
        _json_checked(data)
        return data
    except json.JSONDecodeError as exc:
        raise StudyError(f"{where}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise StudyError(f"{where}: not valid JSON (nested too deeply)") from None
    except _BadJSON as exc:
        raise StudyError(f"{where}: refused JSON ({exc})") from None
    except ValueError as exc:   # an integer of more digits than Python converts
        raise StudyError(f"{where}: refused JSON ({str(exc).split(':')[0]})") from None


def read_json(path: Path, what: str = "file"):
    """A JSON file, read through `parse_json` (one StudyError naming the file for anything hostile)."""
    path = Path(path)
    if not current(path).is_file():
        raise StudyError(f"{what} not found: {path}")
    try:
        text = current(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise StudyError(f"{path}: not UTF-8 (byte {exc.start + 1})") from None
    return parse_json(text, path)


def deep_merge(old: dict, new: dict) -> dict:
    out = dict(old)
    for key, value in new.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


_HELD = threading.local()   # the lock files this thread holds (a lock is re-entrant within its thread)


@contextlib.contextmanager
def locked(path: Path, shared: bool = False):
    """A lock on `<path>.lock` for the block: exclusive (writers of the same file wait for each other and
    for readers), or `shared` (readers, who wait only for writers).

    Re-entrant within a thread: a probe's writer holds its lock around the pickle, the checksum and its
    summary entry. A shared lock needs no lock file: where there is none (no writer has come by) or it
    cannot be opened (a read-only results/), the block runs without one.
    """
    lock = paths.lock(path).absolute()
    held = _HELD.__dict__.setdefault("paths", set())
    if lock in held:
        yield
        return
    fh = None
    if shared:
        try:
            fh = open(lock, "r")
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.EACCES, errno.EROFS, errno.EPERM):
                raise
    else:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fh = open(lock, "a")
    if fh is None:
        yield
        return
    with fh:
        fcntl.flock(fh, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        held.add(lock)
        try:
            yield
        finally:
            held.discard(lock)
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_json_object(path: Path, what: str, remedy: str) -> dict:
    """A JSON object (not a list, not a number); StudyError naming the file and the way out otherwise."""
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise StudyError(f"{path}: expected a JSON object, found {type(data).__name__}; {remedy}")
    return data


def merge_json(path: Path, update: dict) -> dict:
    """Merge `update` into the JSON object at `path` (created if absent) and write it back, under a lock
    so that concurrent runs lose no entry."""
    with locked(path):
        old = read_json_object(path, "file", "remove it and rerun") if Path(path).exists() else {}
        merged = deep_merge(old, update)
        write_json(path, merged)
    return merged


UTF8, OFFSETS = "__utf8", "__offsets"


def _pack_strings(arrays: dict) -> dict:
    """1-D string arrays as UTF-8 bytes + offsets: the size follows the text, not n x the longest string,
    and the file still loads with allow_pickle=False."""
    out = {}
    for key, value in arrays.items():
        a = value if isinstance(value, np.ndarray) else np.asarray(value)
        if a.ndim == 1 and a.dtype.kind in "UO":
            encoded = [str(x).encode("utf-8") for x in a]
            out[key + UTF8] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
            out[key + OFFSETS] = np.cumsum([0] + [len(e) for e in encoded], dtype=np.int64)
        else:
            out[key] = a
    return out


def _unpack_strings(data: dict) -> dict:
    for key in [k for k in data if k.endswith(UTF8)]:
        name = key[:-len(UTF8)]
        buf, offsets = data.pop(key).tobytes(), data.pop(name + OFFSETS)
        data[name] = np.array([buf[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])], dtype=object)
    return data


def save_npz(path: Path, **arrays) -> None:
    """Arrays to an .npz, atomically; 1-D string arrays packed (read them back with read_npz).

    Built in memory first, so a full disk surfaces as its own OSError (not as zipfile's
    "seek of closed file").
    """
    buffer = io.BytesIO()
    np.savez(buffer, **_pack_strings(arrays))
    with atomic_path(path, "wb") as fh:
        fh.write(buffer.getbuffer())


NPZ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def read_npz(path: Path, what: str, remedy: str) -> dict:
    """Every array of an .npz (`allow_pickle=False`); StudyError naming the file if absent or damaged."""
    path = Path(path)
    if not current(path).is_file():
        raise StudyError(f"{what} not found: {path} ({remedy})")
    try:
        with np.load(current(path), allow_pickle=False) as z:
            return _unpack_strings({k: z[k] for k in z.files})
    except (*NPZ_ERRORS, UnicodeDecodeError) as exc:
        raise StudyError(f"{path}: unreadable {what} ({exc}); {remedy}") from None


# -- probes -----------------------------------------------------------------------------
def save_pickle(path: Path, obj) -> str:
    """Pickle `obj` atomically and write `<path>.sha256` ('<hex>  <name>'); returns the digest.

    Under the pair's exclusive lock (`locked`): two writers of one probe take turns, and no reader
    reads the pair half-renamed.
    """
    path = Path(path)
    blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    digest = hashlib.sha256(blob).hexdigest()
    with locked(path):
        staged = [_stage(path, blob)]
        try:
            staged.append(_stage(paths.checksum(path), f"{digest}  {path.name}\n".encode()))
            os.replace(staged[1], paths.checksum(path))
            staged.pop()
        except BaseException:   # nothing renamed yet: the old pair stands
            _discard(staged)
            raise
        # A kill here leaves the new checksum beside the complete staged pickle: load_pickle finishes the rename.
        os.replace(staged[0], path)
    return digest


def _finish_interrupted_save(path: Path, expected: str) -> bytes | None:
    """The staged pickle a killed save_pickle left, renamed into place, when it matches the new checksum.
    Called under the pair's exclusive lock only, so the staged file is never a live writer's."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        with contextlib.suppress(OSError):
            blob = tmp.read_bytes()
            if hashlib.sha256(blob).hexdigest() == expected:
                os.replace(tmp, path)
                return blob
    return None


# The only globals a probe file may name (study/probes.py `to_bundle`): numpy arrays and scalars, a
# StandardScaler, an OrderedDict. Nothing of torch: a pickled tensor's storage reduces to
# torch.storage._load_from_bytes, a full torch.load that runs whatever the bytes say.
PICKLE_ALLOWED = {
    ("collections", "OrderedDict"), ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy._core.multiarray", "scalar"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.numeric", "_frombuffer"),
    ("sklearn.preprocessing._data", "StandardScaler"),
}
# numpy's own reconstructors, given crafted arguments, read bytes of the file as pointers (an object field
# hidden in a dtype's state) or past a buffer's end (strides, shapes). So none of them is called as the file
# says: each name stands for a stand-in below that admits only plain numeric arrays built from exactly as
# many bytes as their shape needs.
NUMERIC_DTYPES = {f"{kind}{size}" for kind, sizes in (("b", (1,)), ("i", (1, 2, 4, 8)), ("u", (1, 2, 4, 8)),
                                                      ("f", (2, 4, 8)), ("c", (8, 16))) for size in sizes}
PICKLE_MAX_BYTES = 1 << 30    # a probe file or Stage 1 bundle larger than this is refused unread
PICKLE_MAX_NODES = 1_000_000  # containers and values of a loaded file, counted as a tree (shared ones each time)
PICKLE_MAX_DEPTH = 64


def _refuse(msg: str):
    raise pickle.UnpicklingError(msg)


class _Dtype:
    """numpy.dtype(code, align, copy) of a pickle, then its state (BUILD): kept only as a plain numeric dtype."""

    def __init__(self, code=None, align=False, copy=True, *rest):
        if not isinstance(code, str) or code not in NUMERIC_DTYPES or rest:
            _refuse(f"a dtype {str(code)[:40]!r}: a probe file holds plain numeric arrays only")
        self.code, self.order = code, "="

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 8 and state[0] == 3 and state[1] in ("<", ">", "|", "=")
                and state[2:] == (None, None, None, -1, -1, 0)):
            _refuse("a dtype with fields, a sub-array or flags: a probe file holds plain numeric arrays only")
        self.order = state[1]

    def real(self) -> np.dtype:
        dt = np.dtype(self.code)
        return dt.newbyteorder(self.order) if self.order in "<>" else dt


def _dtype_of(dt) -> np.dtype:
    if not isinstance(dt, _Dtype):
        _refuse("an array or scalar without a plain numeric dtype")
    return dt.real()


def _shape(shape) -> tuple:
    if not isinstance(shape, tuple) or len(shape) > 8 or not all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n < PICKLE_MAX_BYTES for n in shape):
        _refuse(f"an array of shape {str(shape)[:40]}")
    return shape


def _frombuffer(buf, dtype, shape, order):
    dt, shape = _dtype_of(dtype), _shape(shape)
    if not isinstance(buf, (bytes, bytearray)) or order not in ("C", "F"):
        _refuse("an array not built from plain bytes")
    if len(buf) != math.prod(shape) * dt.itemsize:
        _refuse(f"an array of shape {shape} ({dt}) from {len(buf)} bytes")
    return np.frombuffer(bytes(buf), dtype=dt).reshape(shape, order=order).copy()


def _scalar(dtype, data=None):
    dt = _dtype_of(dtype)
    if not isinstance(data, bytes) or len(data) != dt.itemsize:
        _refuse(f"a {dt} scalar from {len(data) if isinstance(data, bytes) else 'no'} bytes")
    return np.frombuffer(data, dtype=dt)[0]


class _NdarrayName:
    """What `numpy.ndarray` stands for in a probe file: an argument of _reconstruct, never called."""

    def __init__(self, *args, **kwargs):
        _refuse("numpy.ndarray called directly (shape, buffer and strides as the file says)")


class _PendingArray:
    """An array of `_reconstruct` + BUILD (the pickle of a non-contiguous array); made real in `_plain`."""

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1 and isinstance(state[3], bool)):
            _refuse("an array state of another layout")
        _, shape, dtype, fortran, raw = state
        self.array = _frombuffer(raw, dtype, shape, "F" if fortran else "C")


def _reconstruct(subtype, shape, dtype_char):
    if subtype is not _NdarrayName or shape != (0,) or dtype_char not in (b"b", "b"):
        _refuse("an ndarray subclass or a crafted reconstruction")
    return _PendingArray()


_STAND_INS = {"dtype": _Dtype, "ndarray": _NdarrayName, "scalar": _scalar, "_reconstruct": _reconstruct,
              "_frombuffer": _frombuffer}
PLAIN = (str, bytes, int, float, bool, type(None), np.ndarray, np.generic)


class _PlainUnpickler(pickle.Unpickler):
    """Admits only PICKLE_ALLOWED (a pickle naming anything else, os.system say, is refused, not run), numpy's
    names through the stand-ins above."""

    def find_class(self, module, name):
        if (module, name) not in PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a probe file never holds")
        return _STAND_INS.get(name) or super().find_class(module, name)


def _plain(obj, budget: list, depth: int = 0):
    """`obj` with every stand-in made real, counting what it holds as a tree (a list that holds one list many
    times counts it each time) so that a few kB of shared references cannot become gigabytes downstream."""
    budget[0] -= 1
    if budget[0] < 0 or depth > PICKLE_MAX_DEPTH:
        _refuse(f"it holds more than {PICKLE_MAX_NODES:,} values or nests deeper than {PICKLE_MAX_DEPTH} "
                "(shared or cyclic references)")
    if isinstance(obj, _PendingArray):
        if obj.array is None:
            _refuse("an array without its data")
        return obj.array
    if isinstance(obj, _Dtype):
        return obj.real()
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biufc":
            _refuse(f"an array of dtype {obj.dtype}")
        return obj
    if isinstance(obj, PLAIN):
        return obj
    if isinstance(obj, dict):   # OrderedDict too: replaced in place, its type and order kept
        for key in list(obj):
            if not isinstance(key, (str, int, float, type(None), tuple)):
                _refuse(f"a dict key of type {type(key).__name__}")
            obj[key] = _plain(obj[key], budget, depth + 1)
        return obj
    if isinstance(obj, list):
        obj[:] = [_plain(v, budget, depth + 1) for v in obj]
        return obj
    if isinstance(obj, tuple):
        return tuple(_plain(v, budget, depth + 1) for v in obj)
    from sklearn.preprocessing import StandardScaler

    if type(obj) is StandardScaler:
        _plain(obj.__dict__, budget, depth + 1)
        return obj
    _refuse(f"a value of type {type(obj).__name__}, which a probe file never holds")


def _read_pair(path: Path, sidecar: Path) -> tuple[bytes, str]:
    if not sidecar.is_file():
        raise StudyError(f"{sidecar} is missing: refusing to unpickle {path} without its checksum")
    if path.stat().st_size > PICKLE_MAX_BYTES:
        raise StudyError(f"{path}: refused ({path.stat().st_size:,} bytes, more than a probe file's "
                         f"{PICKLE_MAX_BYTES:,})")
    words = sidecar.read_text(encoding="utf-8", errors="replace").split()
    return path.read_bytes(), words[0] if words else ""


def load_pickle(path: Path):
    """Load a probe pickle after checking it against its `.sha256` file, admitting only plain objects."""
    path = Path(path)
    sidecar = paths.checksum(path)
    if not path.is_file():
        raise StudyError(f"probe not found: {path} (run train_probes.py first)")
    with locked(path, shared=True):   # no save of the pair is under way while it is read
        blob, expected = _read_pair(path, sidecar)
    if hashlib.sha256(blob).hexdigest() != expected:
        with locked(path):   # alone with the pair: a staged pickle now is a killed save's, never a live one's
            blob, expected = _read_pair(path, sidecar)
            if hashlib.sha256(blob).hexdigest() != expected:
                blob = _finish_interrupted_save(path, expected)
        if blob is None:
            raise StudyError(f"{path}: checksum differs from {sidecar.name}; the file was changed or damaged")
    try:
        return _plain(_PlainUnpickler(io.BytesIO(blob)).load(), [PICKLE_MAX_NODES])
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, TypeError,
            IndexError, KeyError, MemoryError, RecursionError) as exc:
        raise StudyError(f"{path}: refused ({exc}); retrain it with train_probes.py") from None


# -- LightGBM model strings -----------------------------------------------------------------------
_LGBM_CHECKED: set[str] = set()   # sha256 of the model strings this process wrote, or saw load and predict safely
_LGBM_CHILD = """
import json, sys
sys.modules.update(dict.fromkeys(("sklearn", "pandas")))   # lightgbm's optional glue, unused here: 1 s less to start
import numpy as np, lightgbm
for s in json.loads(sys.stdin.read()):
    b = lightgbm.Booster(model_str=s)
    X = np.random.default_rng(0).normal(size=(64, b.num_feature()))
    for it in (None, 0, b.current_iteration()):
        b.predict(X, num_iteration=it)
"""
LGBM_CHECK_SECONDS = 300


def check_lightgbm_models(strings) -> None:
    """Refuse LightGBM model strings that the library cannot read and predict with safely.

    LightGBM aborts or segfaults the whole process (SIGABRT, SIGSEGV) on some malformed model strings, where no
    Python exception can catch it. So the strings of a file are first loaded and made to predict in a child
    process (`python -I`, bounded in time); only when it exits cleanly does this process load them. A string
    checked once, or written by this process (`lightgbm_models_written`), is not checked again in this process."""
    strings = list(strings)
    if not all(isinstance(s, str) for s in strings):
        raise StudyError("refused (a LightGBM model that is not a string); retrain it with train_probes.py")
    digest = _lightgbm_digest(strings)
    if digest in _LGBM_CHECKED:
        return
    import subprocess
    import sys

    try:
        proc = subprocess.run([sys.executable, "-I", "-c", _LGBM_CHILD], input=json.dumps(strings).encode(),
                              capture_output=True, timeout=LGBM_CHECK_SECONDS)
    except subprocess.TimeoutExpired:
        raise StudyError(f"refused (its LightGBM models took over {LGBM_CHECK_SECONDS} s to load); "
                         "retrain it with train_probes.py") from None
    if proc.returncode != 0:
        import signal

        how = (f"the library crashed reading it ({signal.Signals(-proc.returncode).name})" if proc.returncode < 0
               else (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["it could not be read"])[-1][:200])
        raise StudyError(f"refused (a malformed LightGBM model string: {how}); retrain it with train_probes.py")
    _LGBM_CHECKED.add(digest)


def lightgbm_models_written(strings: list[str]) -> list[str]:
    """`strings`, made by this process's own boosters (`Booster.model_to_string`), noted as safe to read back:
    phase 3 in the process that trained (a test, a learning curve) then starts no check child for them. Only
    these exact strings: a file changed on disk since has another digest and is checked."""
    _LGBM_CHECKED.add(_lightgbm_digest(strings))
    return strings


def _lightgbm_digest(strings: list[str]) -> str:
    return hashlib.sha256("\0".join(strings).encode("utf-8", "surrogatepass")).hexdigest()


# -- one run at a time ----------------------------------------------------------------------------
_RUN_LOCKS: dict[Path, object] = {}   # the run locks this process holds, open until it exits (or `release_run`)


def hold_run(lock: Path, what: str) -> None:
    """Hold `lock` (an exclusive, non-blocking flock) until this process ends, writing into it who holds it (pid,
    host, command); StudyError naming the holder when another process has it. `what` says what is guarded.
    Taken twice in one process, it is held once. The kernel releases it when the holder dies, killed or not."""
    import socket
    import sys

    lock = Path(lock).absolute()
    if lock in _RUN_LOCKS:
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fh = open(lock, "a+", encoding="utf-8", errors="replace")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = " ".join(fh.read(1000).split()) or "another process"
            fh.close()
            raise StudyError(f"{what} is in use by {holder[:300]} (lock {lock}); wait until it ends, or use another "
                             "folder") from None
        try:   # the holder before removes the file as it leaves: a lock on that removed file guards nothing
            if os.stat(lock).st_ino == os.fstat(fh.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        fh.close()
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} on {socket.gethostname()}: {' '.join(sys.argv)[:500]}\n")
    fh.flush()
    _RUN_LOCKS[lock] = fh


def release_runs() -> None:
    """Give back every lock of `hold_run` (study.cli.run, when a script's main() ends: in-process calls too)."""
    while _RUN_LOCKS:
        lock, fh = _RUN_LOCKS.popitem()
        with contextlib.suppress(OSError):
            os.unlink(lock)   # still held: nothing is left behind (`hold_run` checks it locked the file in place)
        fh.close()
