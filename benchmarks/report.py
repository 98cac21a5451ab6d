"""The table `make bench` prints: one row per figure, with its target and the peers measured beside it."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MET = "met"
NOT_MET = "NOT met"
INFO = "-"  # reported, no target


@dataclass(frozen=True)
class Peer:
    name: str
    measured: str


@dataclass(frozen=True)
class Row:
    figure: str
    measured: str
    target: str
    verdict: str
    peers: Sequence[Peer] = field(default_factory=tuple)
    repetitions: int | None = None


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def at_most(value: float, limit: float) -> str:
    return MET if value <= limit else NOT_MET


def ratio(value: float) -> str:
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


_HEADER = ("figure", "measured", "target", "verdict", "peer", "peer measured", "reps")


def render_table(rows: Sequence[Row]) -> str:
    """A Markdown table; a figure with several peers takes one line per peer."""
    lines: list[tuple[str, ...]] = [_HEADER]
    for row in rows:
        peers = list(row.peers) or [Peer("-", "-")]
        reps = str(row.repetitions) if row.repetitions else "-"
        lines.append(
            (row.figure, row.measured, row.target, row.verdict, peers[0].name, peers[0].measured, reps)
        )
        lines.extend(("", "", "", "", peer.name, peer.measured, "") for peer in peers[1:])
    widths = [max(len(line[i]) for line in lines) for i in range(len(_HEADER))]

    def render(line: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([render(lines[0]), rule, *(render(line) for line in lines[1:])])


def describe_machine() -> str:
    """nproc, the CPU model, memory and the Python that ran the benchmark."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown CPU"
    memory = _proc_field("/proc/meminfo", "MemTotal")
    memory_text = f", {int(memory.split()[0]) / 1024 / 1024:.1f} GiB RAM" if memory else ""
    return (
        f"nproc {usable}, {model}{memory_text}; {platform.system()} {platform.release()} "
        f"{platform.machine()}; {platform.python_implementation()} {platform.python_version()}"
    )


def _proc_field(path: str, name: str) -> str | None:
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None
