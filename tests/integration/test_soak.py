"""The short soak: faults of every kind, duplicates and lost deletions, and nothing lost or doubled."""

from __future__ import annotations

from local.soak import run_soak


def test_a_short_soak_loses_nothing_and_publishes_nothing_twice() -> None:
    # Given 200 requests, 12 % faulty Portkey answers, duplicate sends, lost deletions and a key rotation
    # When they all go through the embedded stack
    report, request_ids = run_soak(200, fault_rate=0.12, seed=11)
    # Then every request ends published or in the DLQ with its reason, once
    assert report.lost(request_ids) == 0
    assert report.duplicates == 0
    assert report.left_on_queue == 0
    assert report.faults_injected > 0
    assert report.lost_deletes > 0
    assert sum(report.tagged.values()) + len(report.dead) >= len(request_ids)
