"""A failure told in the domain's words, in the shape pytest's reporters read.

pytest prints a report's ``longrepr`` with its ``toterminal`` method, and takes the one-line
summary (the ``-ra`` line, the JUnit ``message`` attribute, ``--tb=line``) from
``longrepr.reprcrash``. A plain string has no such line, so pytest would repeat the whole text
there — on a CI machine, where summaries are not cut, the whole scenario YAML a second time.
:class:`Explained` gives the first line of the text as that summary and the full text
everywhere else (the FAILURES section, the JUnit element text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Crash:
    """What pytest reads as ``longrepr.reprcrash``."""

    path: str
    lineno: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class Explained:
    """A failure report: ``text`` in full, ``summary`` (default: its first line) as the summary."""

    def __init__(self, text: str, path: str, summary: str | None = None) -> None:
        self.text = text
        first = text.splitlines()[0] if text else "failed"
        self.reprcrash = Crash(path, None, summary or first)

    def toterminal(self, tw: Any) -> None:
        for line in self.text.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self.text


__all__ = ["Crash", "Explained"]
