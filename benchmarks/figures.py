"""Turns the measurements into the table's rows (issue 5's figures, in its order) and the notes under it."""

from __future__ import annotations

import math
from collections import Counter

from benchmarks.aws_calls import describe
from benchmarks.cold_start import ImportTimes
from benchmarks.cpu import CpuResults
from benchmarks.latency import LatencyResults, emulator_seconds, most_calls, most_connections, seconds
from benchmarks.layer import MB, LayerSize
from benchmarks.report import INFO, MET, NOT_MET, Peer, Row, at_most, median, milliseconds, ratio

RATIO_TARGET = 1.3
IMPORT_TARGET = 1.25
LAYER_TARGET_MB = 16.0


def latency_rows(results: LatencyResults, repetitions: int, heavy: int) -> list[Row]:
    rt = results.round_trip
    warm10, warm100 = seconds(results.concurrent[10]), seconds(results.concurrent[100])
    serial10, serial100 = seconds(results.serial[10]), seconds(results.serial[100])
    plain10, plain100 = seconds(results.without_idempotency[10]), seconds(results.without_idempotency[100])
    openai10, openai100 = median(results.openai_serial_10), median(results.openai_threads_100)

    def one(value: float) -> str:
        return f"{ratio(value / rt)} ({milliseconds(value)})"

    def ten(value: float) -> str:
        return f"{ratio(value / (10 * rt))} ({ratio(value / rt)} of one; {value:.2f} s)"

    cold = seconds(results.cold)
    return [
        Row(
            "1. warm batch of 10, Portkey 100 ms: handler / one round trip",
            one(warm10),
            f"<= {RATIO_TARGET}x",
            at_most(warm10 / rt, RATIO_TARGET),
            [
                Peer("serial handler (MAX_CONCURRENCY=1)", one(serial10)),
                Peer("openai-python: 10 runs.update in turn", one(openai10)),
                Peer("diagnostic: same handler, idempotency off", one(plain10)),
                Peer(
                    "diagnostic: emulator CPU per batch (moto + stand-in)",
                    f"{milliseconds(emulator_seconds(results.concurrent[10]))}; "
                    f"idempotency off {milliseconds(emulator_seconds(results.without_idempotency[10]))}",
                ),
            ],
            repetitions,
        ),
        Row(
            "1'. cold: first batch of 10 after app.reset()",
            one(cold),
            INFO,
            INFO,
            [Peer("warm batch of 10 (figure 1)", one(warm10))],
            repetitions,
        ),
        Row(
            "2. warm batch of 100, MAX_CONCURRENCY 10: handler / ten round trips",
            ten(warm100),
            f"<= {RATIO_TARGET}x",
            at_most(warm100 / (10 * rt), RATIO_TARGET),
            [
                Peer(
                    f"serial handler (MAX_CONCURRENCY=1; {heavy} rep{'s' if heavy > 1 else ''})",
                    ten(serial100),
                ),
                Peer("openai-python: 100 runs.update on 10 threads", ten(openai100)),
                Peer("diagnostic: same handler, idempotency off", ten(plain100)),
            ],
            repetitions,
        ),
    ]


def call_rows(results: LatencyResults, repetitions: int) -> list[Row]:
    rows = []
    cold = most_calls(results.cold)
    rows.append(
        Row(
            "3. cold batch of 10: GetSecretValue (one tenant)",
            str(cold["GetSecretValue"]),
            "1 (once per batch per tenant)",
            _exactly(cold["GetSecretValue"], 1),
            [
                Peer(
                    "serial handler, cold batch of 10",
                    str(results.serial_cold.calls["GetSecretValue"]) if results.serial_cold else "-",
                )
            ],
            repetitions,
        )
    )
    for size in (10, 100):
        calls, serial = most_calls(results.concurrent[size]), most_calls(results.serial[size])
        put_events = math.ceil(size / 10)
        rows += [
            Row(
                f"3. warm batch of {size}: GetSecretValue",
                str(calls["GetSecretValue"]),
                "0",
                _exactly(calls["GetSecretValue"], 0),
                [Peer("serial handler", str(serial["GetSecretValue"]))],
                repetitions,
            ),
            Row(
                f"3. warm batch of {size}: PutEvents",
                str(calls["PutEvents"]),
                str(put_events),
                _exactly(calls["PutEvents"], put_events),
                [Peer("serial handler", str(serial["PutEvents"]))],
                repetitions,
            ),
            Row(
                f"3. warm batch of {size}: other AWS calls (idempotency table)",
                _others(calls),
                f"PutItem {size} (a claim each), BatchWriteItem <= {put_events}",
                _idempotency_only(calls, size, put_events),
                [Peer("serial handler", _others(serial))],
                repetitions,
            ),
        ]
    warm = results.concurrent[10] + results.concurrent[100]
    rows.append(
        Row(
            "3. warm batches of 10 and 100: new TCP connections to Portkey",
            str(most_connections(warm)),
            "0",
            _exactly(most_connections(warm), 0),
            [
                Peer("serial handler", str(most_connections(results.serial[10] + results.serial[100]))),
                Peer("openai-python, warm", str(max(results.openai_connections))),
            ],
            repetitions,
        )
    )
    return rows


def cold_start_rows(times: dict[str, ImportTimes], repetitions: int) -> list[Row]:
    app, deps, openai = times["app"], times["dependencies"], times["openai"]
    outside = times["app outside Lambda"]
    process_ratio = app.process_median / deps.process_median
    import_ratio = app.import_median / deps.import_median
    return [
        Row(
            "4. cold start: python -c 'import app' / bare dependencies (whole process)",
            f"{ratio(process_ratio)} ({milliseconds(app.process_median)} vs "
            f"{milliseconds(deps.process_median)})",
            f"<= {IMPORT_TARGET}x",
            at_most(process_ratio, IMPORT_TARGET),
            [
                Peer(
                    "python -c 'import openai'",
                    f"{ratio(openai.process_median / deps.process_median)} "
                    f"({milliseconds(openai.process_median)})",
                ),
                Peer(
                    "diagnostic: 'import app' outside Lambda (no LAMBDA_TASK_ROOT)",
                    f"{ratio(outside.process_median / deps.process_median)} "
                    f"({milliseconds(outside.process_median)})",
                ),
            ],
            repetitions,
        ),
        Row(
            "4'. the import statement alone, timed inside the fresh interpreter",
            f"{ratio(import_ratio)} ({milliseconds(app.import_median)} vs "
            f"{milliseconds(deps.import_median)})",
            f"<= {IMPORT_TARGET}x",
            at_most(import_ratio, IMPORT_TARGET),
            [
                Peer(
                    "import openai",
                    f"{ratio(openai.import_median / deps.import_median)} "
                    f"({milliseconds(openai.import_median)})",
                )
            ],
            repetitions,
        ),
    ]


def cpu_row(results: CpuResults, repetitions: int) -> Row:
    concurrent = CpuResults.microseconds_per_message(results.concurrent)
    serial = CpuResults.microseconds_per_message(results.serial)
    return Row(
        "5. CPU per message, warm batch of 1,000, Portkey 0 ms (process CPU time)",
        f"{concurrent:,.0f} us/msg (wall {CpuResults.wall_seconds(results.concurrent):.1f} s)",
        "< serial handler",
        MET if concurrent < serial else NOT_MET,
        [
            Peer(
                "serial handler (MAX_CONCURRENCY=1)",
                f"{serial:,.0f} us/msg (wall {CpuResults.wall_seconds(results.serial):.1f} s)",
            )
        ],
        repetitions,
    )


def layer_row(layer: LayerSize | None, openai_bytes: int | None) -> Row:
    peer = (
        [Peer("openai-python package alone, installed", f"{openai_bytes / MB:.1f} MB")]
        if openai_bytes
        else []
    )
    if layer is None:
        return Row(
            "6. built layer, unzipped",
            "not built - run make build",
            f"<= {LAYER_TARGET_MB:.0f} MB",
            INFO,
            peer,
        )
    stale = " (stale build)" if layer.stale_modules else ""
    return Row(
        "6. built layer, unzipped (.aws-sam/build/RunTaggerLayer)",
        f"{layer.total_mb:.1f} MB, {layer.bytecode_bytes / MB:.1f} MB of it __pycache__{stale}",
        f"<= {LAYER_TARGET_MB:.0f} MB",
        at_most(layer.total_mb, LAYER_TARGET_MB),
        peer,
    )


def notes(latency: LatencyResults, layer: LayerSize | None) -> list[str]:
    lines = [
        "call and connection counts are the largest seen over the repetitions; times are medians",
        f"one round trip = {milliseconds(latency.round_trip)}: median of {len(latency.round_trip_seconds)} "
        "bare requests POSTs to the stand-in (kept-alive connection; half at the start, half at the end)",
        "AWS calls during warm batches of 10, from sending to the parsed answer (median / max): "
        + ", ".join(
            f"{name} {milliseconds(median(values))} / {milliseconds(max(values))}"
            for name, values in sorted(latency.aws_seconds.items())
        ),
    ]
    if layer is not None:
        largest = ", ".join(f"{name} {size / MB:.1f}" for name, size in layer.largest)
        lines.append(f"layer, largest entries in MB: {largest}")
        if layer.stale_modules:
            lines.append(
                f"layer build is older than the source ({', '.join(layer.stale_modules)}): make build"
            )
    return lines


def _exactly(value: int, expected: int) -> str:
    return MET if value == expected else NOT_MET


def _other_calls(calls: Counter[str]) -> Counter[str]:
    return Counter({k: v for k, v in calls.items() if k not in ("GetSecretValue", "PutEvents")})


def _others(calls: Counter[str]) -> str:
    return describe(_other_calls(calls))


def _idempotency_only(calls: Counter[str], size: int, put_events: int) -> str:
    """Only the idempotency table: a claim per request, and no more completion calls than event calls."""
    others = _other_calls(calls)
    ok = (
        set(others) <= {"PutItem", "BatchWriteItem"}
        and others["PutItem"] == size
        and others["BatchWriteItem"] <= put_events
    )
    return MET if ok else NOT_MET
