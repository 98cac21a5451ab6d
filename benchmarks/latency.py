"""Figures 1-3: the handler's wall time per batch against the round trip, and what a warm batch costs.

All against the stack process with the stand-in answering after `latency_ms`, and with idempotency on
(IDEMPOTENCY_TABLE_NAME set, as the template deploys it). Variants run one after the other, each in a
freshly configured function (`app.reset()`): concurrent (MAX_CONCURRENCY 10), then the serial peer
(MAX_CONCURRENCY 1), then, as a diagnostic, concurrent without idempotency.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from benchmarks.aws_calls import AwsCallCounter
from benchmarks.function import FunctionUnderTest, Invocation
from benchmarks.peers import OpenAIPeer, round_trips
from benchmarks.report import median
from benchmarks.stack_process import StackProcess

CONCURRENCY = 10


@dataclass
class LatencyResults:
    round_trip_seconds: list[float] = field(default_factory=list)
    cold: list[Invocation] = field(default_factory=list)  # first invocation of 10 after reset()
    concurrent: dict[int, list[Invocation]] = field(default_factory=dict)  # batch size -> warm invocations
    serial: dict[int, list[Invocation]] = field(default_factory=dict)
    serial_cold: Invocation | None = None
    without_idempotency: dict[int, list[Invocation]] = field(default_factory=dict)
    openai_serial_10: list[float] = field(default_factory=list)
    openai_threads_100: list[float] = field(default_factory=list)
    openai_connections: list[int] = field(default_factory=list)
    aws_seconds: dict[str, list[float]] = field(default_factory=dict)  # during warm concurrent batches of 10

    @property
    def round_trip(self) -> float:
        return median(self.round_trip_seconds)


def measure(
    stack: StackProcess,
    function: FunctionUnderTest,
    counter: AwsCallCounter,
    *,
    repetitions: int,
    heavy_repetitions: int,
) -> LatencyResults:
    """`heavy_repetitions` (fewer) for the serial batch of 100, which takes ~100 round trips each."""
    results = LatencyResults()
    results.round_trip_seconds += round_trips(stack.portkey_base_url, repetitions)

    # Cold: each time a fresh Lambda environment (in this already warm interpreter) gets a batch of 10.
    for _ in range(repetitions):
        function.configure(max_concurrency=CONCURRENCY)
        results.cold.append(function.invoke(10))
    counter.take_seconds()
    results.concurrent[10] = [function.invoke(10) for _ in range(repetitions)]
    results.aws_seconds = counter.take_seconds()
    results.concurrent[100] = [function.invoke(100) for _ in range(repetitions)]

    function.configure(max_concurrency=1)
    results.serial_cold = function.invoke(10)  # and now warm: keys cached, its one connection open
    results.serial[10] = [function.invoke(10) for _ in range(repetitions)]
    results.serial[100] = [function.invoke(100) for _ in range(heavy_repetitions)]

    function.configure(max_concurrency=CONCURRENCY, IDEMPOTENCY_TABLE_NAME="")
    function.invoke(10)
    results.without_idempotency[10] = [function.invoke(10) for _ in range(repetitions)]
    results.without_idempotency[100] = [function.invoke(100) for _ in range(repetitions)]

    peer = OpenAIPeer(stack.portkey_base_url, warm_connections=CONCURRENCY)
    try:
        for _ in range(repetitions):
            stack.clear_requests()
            results.openai_serial_10.append(peer.update_runs(10))
            results.openai_connections.append(stack.connections_opened())
            results.openai_threads_100.append(peer.update_runs(100, threads=CONCURRENCY))
    finally:
        peer.close()
    results.round_trip_seconds += round_trips(stack.portkey_base_url, repetitions)  # and at the end
    return results


def seconds(invocations: list[Invocation]) -> float:
    return median(invocation.seconds for invocation in invocations)


def emulator_seconds(invocations: list[Invocation]) -> float:
    return median(invocation.emulator_cpu_seconds for invocation in invocations)


def most_calls(invocations: list[Invocation]) -> Counter[str]:
    """Each operation's largest count over the invocations (a count that varies shows as its worst)."""
    worst: Counter[str] = Counter()
    for invocation in invocations:
        worst |= invocation.calls
    return worst


def most_connections(invocations: list[Invocation]) -> int:
    return max(invocation.connections_opened for invocation in invocations)
