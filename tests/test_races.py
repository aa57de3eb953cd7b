"""Writers and readers of one probe pair, interleaved on purpose (threads held at a chosen step by events).

Each test holds a writer between its two renames (the new checksum in place, the new pickle still staged),
lets the other party run into that moment, then releases the writer. Without the pair's lock the other
party acts in the gap; with it, it waits.
"""
import os
import threading

import pytest
from kills import killed_at_rename

from study import artifacts
from study.artifacts import load_pickle, save_pickle, staged_writes, write_json, read_json
from study.errors import StudyError

WAIT = 0.3   # how long the test lets the other party try to enter the gap (it must not get in): unlocked, it gets
#             in within milliseconds (a small pickle read), so 0.3 s tells waiting from not waiting with a wide margin


class HeldWriter:
    """os.replace that stops the first thread to rename a .pkl (after its .sha256 is in place) until released."""

    def __init__(self, monkeypatch):
        self.real, self.holder = os.replace, None
        self.in_gap, self.release, self.renames = threading.Event(), threading.Event(), []
        monkeypatch.setattr(os, "replace", self)

    def __call__(self, src, dst):
        me = threading.current_thread().name
        if str(dst).endswith(".pkl") and self.holder in (None, me) and not self.in_gap.is_set():
            self.holder = me
            self.in_gap.set()
            assert self.release.wait(30)
        self.renames.append((me, os.path.basename(str(dst))))
        self.real(src, dst)


def _thread(name, target, results):
    def run():
        try:
            results[name] = target()
        except BaseException as exc:   # noqa: BLE001 (the test reports what each thread met)
            results[name] = exc
    return threading.Thread(target=run, name=name, daemon=True)


def test_a_reader_waits_for_a_writer_and_never_renames_its_staged_file(tmp_path, monkeypatch):
    path = tmp_path / "p.pkl"
    save_pickle(path, {"version": "old"})
    held, results = HeldWriter(monkeypatch), {}
    writer = _thread("writer", lambda: save_pickle(path, {"version": "new"}), results)
    reader = _thread("reader", lambda: load_pickle(path), results)
    writer.start()
    assert held.in_gap.wait(30)           # the new checksum is in place, the new pickle still staged
    reader.start()
    reader.join(WAIT)
    assert reader.is_alive()              # the reader waits for the pair instead of reading it half-renamed
    held.release.set()
    writer.join(30), reader.join(30)
    assert isinstance(results["writer"], str), results       # the writer's own rename went through
    assert results["reader"] == {"version": "new"}, results
    assert [r for r in held.renames if r[0] == "reader"] == []   # the reader renamed nothing
    assert load_pickle(path) == {"version": "new"}
    assert not list(tmp_path.glob(".*.tmp"))


def test_two_writers_of_one_probe_leave_a_matching_pair(tmp_path, monkeypatch):
    path = tmp_path / "p.pkl"
    held, results = HeldWriter(monkeypatch), {}
    first = _thread("first", lambda: save_pickle(path, {"run": "first"}), results)
    second = _thread("second", lambda: save_pickle(path, {"run": "second"}), results)
    first.start()
    assert held.in_gap.wait(30)
    second.start()
    second.join(WAIT)
    assert second.is_alive()              # it waits for the first writer's pair to be complete
    held.release.set()
    first.join(30), second.join(30)
    assert all(isinstance(results[n], str) for n in ("first", "second")), results
    assert [n for n, _ in held.renames] == ["first", "first", "second", "second"]   # one pair after the other
    assert load_pickle(path) == {"run": "second"}
    assert (tmp_path / "p.pkl.sha256").read_text().split()[0] == results["second"]


def test_a_killed_save_is_still_finished_by_the_next_reader(tmp_path, monkeypatch):
    """The gap a kill leaves (checksum new, pickle staged) is finished by a reader, under the exclusive lock."""
    path = tmp_path / "p.pkl"
    save_pickle(path, {"version": "old"})
    with killed_at_rename(monkeypatch, lambda n, dst: dst.endswith(".pkl")), pytest.raises(KeyboardInterrupt):
        save_pickle(path, {"version": "new"})
    assert load_pickle(path) == {"version": "new"}


def test_a_reader_in_a_read_only_folder_needs_no_lock_file(tmp_path, monkeypatch):
    path = tmp_path / "p.pkl"
    save_pickle(path, {"version": 1})
    (tmp_path / "p.pkl.lock").unlink()
    real_open = open

    def read_only(file, mode="r", *args, **kwargs):
        if str(file).endswith(".lock"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", read_only)
    assert load_pickle(path) == {"version": 1}


def test_a_damaged_pickle_is_still_refused(tmp_path):
    path = tmp_path / "p.pkl"
    save_pickle(path, {"version": 1})
    path.write_bytes(path.read_bytes()[:-1] + b"x")
    with pytest.raises(StudyError, match="changed or damaged"):
        load_pickle(path)


def test_staged_writes_land_together_or_not_at_all(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_json(a, {"v": "old"})
    with pytest.raises(StudyError):
        with staged_writes():
            write_json(a, {"v": "new"})
            assert read_json(a) == {"v": "new"}          # the block reads what it staged
            assert "old" in a.read_text()                # the folder does not see it yet
            write_json(b, {"v": "new"})
            raise StudyError("a later step fails")
    assert read_json(a) == {"v": "old"} and not b.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]   # no temp file left
    with staged_writes():
        write_json(a, {"v": "first"})
        write_json(a, {"v": "second"})
        write_json(b, {"v": "new"})
        assert not b.exists()
    assert read_json(a) == {"v": "second"} and read_json(b) == {"v": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]
    assert artifacts._STAGING.get() is None
