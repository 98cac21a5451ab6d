"""Short soaks under faults, duplicates, lost deletions and a key rotation: nothing lost or doubled."""

from __future__ import annotations

from typing import get_args

from run_tagger.schemas import TransientErrorCode

from local.soak import SoakOptions, run_soak

# Waves of 100, so the key rotates before the first wave that starts half-way or later.
WAVE = 100


def test_a_short_soak_loses_nothing_and_publishes_nothing_twice() -> None:
    # Given 200 requests, 12 % faulty Portkey answers, duplicate sends, lost deletions and a key rotation
    # When they all go through the embedded stack
    report, request_ids = run_soak(200, SoakOptions(seed=11, wave=WAVE))
    # Then every request ends published or in the DLQ with its reason, once
    assert report.rotated
    assert report.lost(request_ids) == 0
    assert report.duplicates == 0
    assert report.left_on_queue == 0
    assert report.faults_injected > 0
    assert report.lost_deletes > 0
    assert sum(report.tagged.values()) + len(report.dead) >= len(request_ids)


def test_a_short_soak_with_last_deliveries_dead_letters_them_with_their_reason() -> None:
    # Given a queue that allows two receives, and one Portkey attempt per delivery
    options = SoakOptions(seed=5, wave=WAVE, max_receive_count=2, portkey_attempts=1, fault_rate=0.2)
    # When 200 requests go through the embedded stack under the same faults
    report, request_ids = run_soak(200, options)
    # Then those failing both deliveries are in the DLQ with a transient reason, none without a reason;
    # none is lost or doubled
    assert {code for codes in report.dead.values() for code in codes} & set(get_args(TransientErrorCode))
    assert report.reasonless == 0
    assert report.lost(request_ids) == 0
    assert report.duplicates == 0
    assert report.left_on_queue == 0


def test_a_short_fifo_soak_calls_and_applies_each_runs_requests_in_the_order_they_were_sent() -> None:
    # Given a FIFO queue with one message group per run, ten requests to a run on average, two receives
    # and one Portkey attempt per delivery
    options = SoakOptions(
        seed=3, wave=WAVE, fifo=True, runs=20, max_receive_count=2, portkey_attempts=1, fault_rate=0.3
    )
    # When 200 requests go through the embedded stack under faults, lost deletions and a key rotation
    report, request_ids = run_soak(200, options)
    # Then no run's Portkey calls or metadata go back to an earlier request; nothing is lost or doubled
    assert report.rotated
    assert report.runs_out_of_order == 0
    assert report.reasonless == 0
    assert report.lost(request_ids) == 0
    assert report.duplicates == 0
    assert report.left_on_queue == 0
