"""Figure 4: what importing the function costs a fresh interpreter, beside its bare dependencies.

Each import runs in a new `python -c` process with the function's directory on sys.path and the
environment Lambda's runtime gives it (LAMBDA_TASK_ROOT among it: outside Lambda the X-Ray SDK builds a
botocore client for its sampling rules when Tracer loads it, which in Lambda it does not; that case is
shown beside, as a diagnostic); the import itself is timed inside the child (`perf_counter` around the
statement), the whole process from outside. The kinds take turns, so a slow moment of the machine hits
them all alike. One untimed run of each first writes the bytecode caches, which the built layer ships too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Final

from benchmarks.report import median
from local.stack import FUNCTION_DIR, ROOT, lambda_runtime_environment

# What each kind imports; "dependencies" are the modules app.py (and the first event) build on.
IMPORTS: Final = {
    "app": "import app",
    "dependencies": (
        "import boto3, requests, pydantic\n"
        "from aws_lambda_powertools import Logger, Metrics, Tracer\n"
        "from aws_lambda_powertools.utilities.batch import process_partial_response"
    ),
    "openai": "import openai",
    "app outside Lambda": "import app",
}
OUTSIDE_LAMBDA: Final = frozenset({"app outside Lambda"})
_TIMED = "import time\n_started = time.perf_counter()\n{statement}\nprint(time.perf_counter() - _started)\n"


@dataclass
class ImportTimes:
    import_seconds: list[float] = field(default_factory=list)
    process_seconds: list[float] = field(default_factory=list)

    @property
    def import_median(self) -> float:
        return median(self.import_seconds)

    @property
    def process_median(self) -> float:
        return median(self.process_seconds)


def measure(repetitions: int) -> dict[str, ImportTimes]:
    times = {kind: ImportTimes() for kind in IMPORTS}
    for kind, statement in IMPORTS.items():
        _run(statement, _environment(kind))  # bytecode caches written, files in the page cache
    for _ in range(repetitions):
        for kind, statement in IMPORTS.items():
            import_seconds, process_seconds = _run(statement, _environment(kind))
            times[kind].import_seconds.append(import_seconds)
            times[kind].process_seconds.append(process_seconds)
    return times


def _environment(kind: str) -> dict[str, str]:
    """What Lambda's python3.13 runtime sets that matters to these imports, and the template's variables."""
    return {
        **({} if kind in OUTSIDE_LAMBDA else lambda_runtime_environment()),  # nothing is sent at import
        "PATH": os.environ.get("PATH", ""),
        "LANG": "en_US.UTF-8",
        "PYTHONPATH": str(FUNCTION_DIR),
        "AWS_LAMBDA_FUNCTION_NAME": "run-tagger-bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "run-tagger",
        "POWERTOOLS_METRICS_NAMESPACE": "RunTagger",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def _run(statement: str, environment: dict[str, str]) -> tuple[float, float]:
    started = time.perf_counter()
    completed = subprocess.run(  # noqa: S603 - this interpreter, a fixed statement
        [sys.executable, "-c", _TIMED.format(statement=statement)],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    process_seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{statement!r} failed in a fresh interpreter: {completed.stderr.strip()[-500:]}")
    return float(completed.stdout.strip().splitlines()[-1]), process_seconds
