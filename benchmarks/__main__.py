"""`python -m benchmarks` (`make bench`): issue 5's figures, each beside its target and its peers.

Starts the embedded stack (moto's server and the Portkey stand-in, answering after 100 ms) in a process
of its own, runs the real handler of functions/tag_run/app.py in this one, warm and cold, against a
serial handler (MAX_CONCURRENCY=1) and openai-python, and prints one table. Every figure is the median
of several repetitions measured in this run; nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

from benchmarks import cold_start, cpu, figures, latency, layer
from benchmarks.aws_calls import AwsCallCounter
from benchmarks.function import BenchmarkError, FunctionUnderTest
from benchmarks.report import NOT_MET, describe_machine, render_table
from benchmarks.stack_process import StackProcess

PORTKEY_LATENCY_MS = 100


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repetitions",
        type=int,
        default=5,
        help="runs per figure; the median is shown (default: %(default)s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 repetitions and 1 of the slow ones: a rough table in about 75 s",
    )
    args = parser.parse_args(argv)
    repetitions = 3 if args.quick else args.repetitions
    if repetitions < 1:
        parser.error("--repetitions must be at least 1")
    # The serial batch of 100 (~100 round trips) and the 1,000-message batches take seconds each.
    heavy = 1 if args.quick else max(1, math.ceil(repetitions / 2))
    machine = describe_machine()
    print(f"run-tagger benchmarks: {repetitions} repetitions ({heavy} of the slow ones), median shown")
    print(f"machine: {machine}", flush=True)

    started = time.perf_counter()
    try:
        with StackProcess(latency_ms=PORTKEY_LATENCY_MS) as stack, AwsCallCounter() as counter:
            function = FunctionUnderTest(stack, counter)
            _progress("figures 1-3: batches of 10 and 100, Portkey answering in 100 ms")
            timings = latency.measure(
                stack, function, counter, repetitions=repetitions, heavy_repetitions=heavy
            )
            _progress("figure 5: CPU time of batches of 1,000, Portkey answering at once")
            cpu_results = cpu.measure(stack, function, repetitions=heavy)
    except BenchmarkError as error:
        print(f"benchmark aborted: {error}", file=sys.stderr)
        return 2
    _progress("figure 4: imports in fresh interpreters")
    import_runs = 2 * repetitions  # a fresh interpreter's import is noisy, and cheap: twice as many runs
    imports = cold_start.measure(import_runs)
    built = layer.measure()

    rows = [
        *figures.latency_rows(timings, repetitions, heavy),
        *figures.call_rows(timings, repetitions),
        *figures.cold_start_rows(imports, import_runs),
        figures.cpu_row(cpu_results, heavy),
        figures.layer_row(built, layer.openai_installed_bytes()),
    ]
    print()
    print(render_table(rows))
    print()
    for line in [
        *figures.notes(timings, built),
        "latency figures run as deployed: IDEMPOTENCY_TABLE_NAME and DEAD_LETTER_QUEUE_URL set, "
        "log level INFO (to /dev/null); metrics and tracing off, as on the local stack",
        "moto and the stand-in run in a process of their own: their CPU is not the handler's; their calls "
        "take turns on that process's one GIL, so its CPU per batch (figure 1's last line) is mostly time "
        "the batch waits on it",
        f"machine: {machine}; measured in {time.perf_counter() - started:.0f} s",
    ]:
        print(f"- {line}")
    missed = sum(row.verdict == NOT_MET for row in rows)
    print(
        f"\n{missed} of {sum(row.verdict != '-' for row in rows)} targets not met"
        if missed
        else "\nall targets met"
    )
    return 0


def _progress(message: str) -> None:
    sys.stdout.flush()
    print(f"  ... {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
