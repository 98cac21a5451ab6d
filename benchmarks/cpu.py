"""Figure 5: process CPU time per message of a warm 1,000-message batch, concurrent and serial.

The stand-in answers at once (latency 0), so the batch is all work and no waiting. moto and the stand-in
run in the stack process, so the CPU time counted here (`time.process_time()` around `lambda_handler`) is
the function's alone: validation, serialisation, logging, and its clients' side of every HTTP call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.function import FunctionUnderTest, Invocation
from benchmarks.report import median
from benchmarks.stack_process import StackProcess

BATCH = 1000


@dataclass
class CpuResults:
    concurrent: list[Invocation] = field(default_factory=list)
    serial: list[Invocation] = field(default_factory=list)

    @staticmethod
    def microseconds_per_message(invocations: list[Invocation]) -> float:
        return median(invocation.cpu_seconds / invocation.size for invocation in invocations) * 1e6

    @staticmethod
    def wall_seconds(invocations: list[Invocation]) -> float:
        return median(invocation.seconds for invocation in invocations)


def measure(stack: StackProcess, function: FunctionUnderTest, *, repetitions: int) -> CpuResults:
    results = CpuResults()
    stack.set_latency(0)
    for max_concurrency, runs in ((10, results.concurrent), (1, results.serial)):
        function.configure(max_concurrency=max_concurrency)
        function.invoke(10)  # warm
        # moto's ReceiveMessage would take longer than the batch: the event is built as Lambda builds it.
        runs.extend(function.invoke(BATCH, via_queue=False) for _ in range(repetitions))
    return results
