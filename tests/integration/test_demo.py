"""`make run` as a newcomer runs it: the demo exits 0 with every message accounted for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_run_accounts_for_every_sample_and_exits_zero() -> None:
    # Given a clean environment (no AWS profile, nothing configured)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PORTKEY_", "POWERTOOLS_"))}
    # When the demo behind `make run` runs
    done = subprocess.run(
        [sys.executable, "-m", "local", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    # Then it exits 0, prints both kinds of event and the DLQ, and shows no traceback
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Run Tagged" in done.stdout
    assert "Run Tag Failed  run_not_found (HTTP 404)" in done.stdout
    assert "invalid_request" in done.stdout
    assert "Every message is accounted for" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
