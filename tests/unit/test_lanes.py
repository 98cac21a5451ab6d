"""Which records of a batch share a lane: those sharing a FIFO group, a run or a de-duplication key."""

from __future__ import annotations

import json
from collections.abc import Hashable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from run_tagger.processor import group_lanes, lane_keys

Keys = list[Hashable]


def keys_as_given(record: dict[str, Any]) -> Keys:
    keys: Keys = record["keys"]
    return keys


def records_with(*keys: Keys) -> list[dict[str, Any]]:
    return [{"keys": list(record_keys)} for record_keys in keys]


def components(keys: list[Keys]) -> list[set[int]]:
    """The reference answer: records linked, directly or through others, by a shared key."""
    left, found = set(range(len(keys))), []
    while left:
        component, frontier = set(), [min(left)]
        while frontier:
            index = frontier.pop()
            if index in component:
                continue
            component.add(index)
            frontier.extend(other for other in left if set(keys[other]) & set(keys[index]))
        left -= component
        found.append(component)
    return found


@given(st.lists(st.lists(st.sampled_from("abcdefgh"), max_size=3), max_size=12))
def test_records_linked_by_any_key_share_a_lane_and_no_others_do(keys: list[Keys]) -> None:
    lanes = group_lanes(records_with(*keys), keys_as_given)

    # Every record once, each lane in arrival order, lanes in order of their first record
    assert sorted(index for lane in lanes for index in lane) == list(range(len(keys)))
    assert all(lane == sorted(lane) for lane in lanes)
    assert [lane[0] for lane in lanes] == sorted(lane[0] for lane in lanes)
    # Exactly the records linked by shared keys, however many steps apart
    assert sorted(map(set, lanes), key=min) == sorted(components(keys), key=min)


def test_a_record_bridging_two_lanes_joins_them_into_one() -> None:
    # Given A (group 1, run 1), B (group 2, run 2), then C (group 1, run 2)
    records = records_with(["g1", "r1"], ["g2", "r2"], ["g1", "r2"])
    # When the batch is split into lanes
    lanes = group_lanes(records, keys_as_given)
    # Then all three run in one lane, in arrival order: group 1's order and run 2's both hold
    assert lanes == [[0, 1, 2]]


def sqs_record(message_id: str, thread_id: str, run_id: str, request_id: str) -> dict[str, Any]:
    body = {"thread_id": thread_id, "run_id": run_id, "metadata": {}, "request_id": request_id}
    return {"messageId": message_id, "body": json.dumps(body), "attributes": {}}


def test_two_deliveries_of_one_request_id_share_a_lane_whatever_runs_they_name() -> None:
    # Given two messages with one request_id naming different runs, and one unrelated message
    records = [
        sqs_record("m1", "thread_a", "run_1", "req-1"),
        sqs_record("m2", "thread_b", "run_2", "req-1"),
        sqs_record("m3", "thread_c", "run_3", "req-2"),
    ]
    # When the batch is split into lanes
    lanes = group_lanes(records, lane_keys)
    # Then the second waits for the first (and finds it done), rather than racing it for the key
    assert lanes == [[0, 1], [2]]


def test_a_body_that_is_not_a_request_is_a_lane_of_its_own() -> None:
    records = [{"messageId": "m1", "body": "{not json"}, {"messageId": "m2", "body": "{not json"}]

    assert group_lanes(records, lane_keys) == [[0], [1]]
