"""A kill in the middle of a write, for the tests of atomic artifacts: `os.replace` interrupted."""
from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def killed_at_rename(monkeypatch, when):
    """Within the block, the rename `when(call number from 1, destination)` picks raises KeyboardInterrupt (as a
    kill would stop the process there) instead of renaming; the others rename. Yields the destinations asked for;
    os.replace is the real one again after the block."""
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if when(len(calls), str(dst)):
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    try:
        yield calls
    finally:
        monkeypatch.setattr(os, "replace", real)
