"""Output for people (tables, a progress bar on a terminal) or for machines (--json)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any


class Printer:
    def __init__(self, *, json_output: bool) -> None:
        self.json = json_output

    def emit(self, value: Any) -> None:
        print(json.dumps(value, ensure_ascii=False, indent=2))

    def line(self, text: str = "") -> None:
        print(text)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], *, width: int = 60) -> None:
        """A plain text table; cells longer than `width` are cut with an ellipsis."""
        cells = [[_cut(str(c), width) for c in row] for row in rows]
        widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
        print("  ".join("-" * w for w in widths))
        for row in cells:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())

    @contextlib.contextmanager
    def progress(self, total: int, label: str) -> Iterator[Callable[[int], None]]:
        """A progress bar on stderr when it is a terminal and not --json; silent otherwise."""
        shown = sys.stderr.isatty() and not self.json and total > 1
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            if shown:
                filled = int(30 * done / max(total, 1))
                sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
                sys.stderr.flush()

        yield advance
        if shown:
            sys.stderr.write("\n")


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."
