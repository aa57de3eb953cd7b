"""Number formatting for everything the study prints: the Word report, the comparison markdown and page 1.

One rule per quantity: errors (MAE, RMSE, Spearman, differences) with 3 decimals, shares as
percentages with 1 decimal, negative numbers with the minus sign (U+2212), a confidence interval as `[low, high]` in the format of its value
(brackets, because an en dash between two signed numbers reads as a minus), and one marker for
a value that does not exist (`MISSING`). Nothing here knows the study.
"""
from __future__ import annotations

from study.metrics import finite

DECIMALS = 3     # MAE, RMSE, Spearman, F1, differences, biases
MISSING = "—"   # a value that does not exist (not run, not defined for this group)
MINUS = "\u2212"  # the minus sign: a line never breaks after it (it does after a hyphen, "-\n1.279")


def num(x, decimals: int = DECIMALS) -> str:
    """`x` with a fixed number of decimals; `MISSING` for a missing or non-finite value."""
    return f"{x:.{decimals}f}".replace("-", MINUS) if finite(x) else MISSING


def signed(x, decimals: int = DECIMALS) -> str:
    """A difference: always with its sign."""
    return f"{x:+.{decimals}f}".replace("-", MINUS) if finite(x) else MISSING


def pct(x, decimals: int = 1) -> str:
    """A share (0-1) as a percentage."""
    return f"{100 * x:.{decimals}f}%" if finite(x) else MISSING


def _pair(pair) -> bool:
    return bool(pair) and len(pair) == 2 and all(finite(v) for v in pair)


def ci(pair, decimals: int = DECIMALS, sign: bool = False) -> str:
    """`[low, high]`; signed for an interval of a difference; `MISSING` when either end is missing."""
    fmt = signed if sign else num
    return f"[{fmt(pair[0], decimals)}, {fmt(pair[1], decimals)}]" if _pair(pair) else MISSING


def pct_ci(pair, decimals: int = 1) -> str:
    return f"[{pct(pair[0], decimals)}, {pct(pair[1], decimals)}]" if _pair(pair) else MISSING


def value_ci(x, pair, decimals: int = DECIMALS, sign: bool = False) -> str:
    """`x [low, high]`: a value with its interval (the interval left out when it does not exist)."""
    value = (signed if sign else num)(x, decimals)
    interval = ci(pair, decimals, sign)
    return value if interval == MISSING or value == MISSING else f"{value} {interval}"


def pct_value_ci(x, pair, decimals: int = 1) -> str:
    interval = pct_ci(pair, decimals)
    return pct(x, decimals) if interval == MISSING or not finite(x) else f"{pct(x, decimals)} {interval}"


def short(text: str, limit: int = 70) -> str:
    """A title cut to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[:limit - 1] + "…"
