"""Arithmetic on time spans ``(start, end)`` — shared by the camera's own bookkeeping and the oracle.

Spans are half-open ``[start, end)`` in seconds; lists are sorted and disjoint after
:func:`union`. ``EPS`` absorbs float noise so that touching spans join and slivers vanish.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Span = tuple[float, float]
EPS = 1e-6


def union(spans: Iterable[Span]) -> list[Span]:
    """Sorted, disjoint union of ``spans``; empty spans are dropped, touching spans join."""
    out: list[Span] = []
    for a, b in sorted(spans):
        if not b > a:
            continue  # empty
        if out and a <= out[-1][1] + EPS:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def subtract(base: Sequence[Span], minus: Sequence[Span]) -> list[Span]:
    """``base`` minus ``minus``; both sorted and disjoint. Pieces shorter than EPS vanish."""
    out: list[Span] = []
    j = 0
    for a, b in base:
        cur = a
        while j < len(minus) and minus[j][1] <= cur:
            j += 1
        k = j
        while k < len(minus) and minus[k][0] < b:
            ma, mb = minus[k]
            if ma > cur + EPS:
                out.append((cur, ma))
            cur = max(cur, mb)
            if mb > b:
                break
            k += 1
        if cur < b - EPS:
            out.append((cur, b))
    return out
