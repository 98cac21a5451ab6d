"""Unit tests of `run_tagger.publisher`: the events of DESIGN §1.4 and how they reach EventBridge."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st
from run_tagger.batching import EventBatcher
from run_tagger.errors import InvalidRequest, InvalidResponse, PortkeyUnavailable, PublishFailed, RunNotFound
from run_tagger.publisher import Event, EventBuilder, EventPublisher, entry_size, group_calls
from run_tagger.request import TagRunRequest

from tests.support import a_run

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

SOURCE = "run-tagger"
BUS = "runs"
EVENTBRIDGE_LIMIT = 262_144
REQUEST = TagRunRequest(thread_id="thread_abc123", run_id="run_abc123", metadata={"team": "search"})


def valid_run(**changes: object) -> dict[str, Any]:
    """A run with instructions and no tools, the shape the truncation tests start from."""
    defaults: dict[str, object] = {"instructions": "You are a helpful assistant.", "tools": [], "usage": None}
    return a_run(**{**defaults, "truncation_strategy": None, **changes})


def function_tool(name: str, description_size: int, parameters_size: int) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": "d" * description_size,
            "parameters": {
                "type": "object",
                "properties": {"q": {"type": "string", "description": "p" * parameters_size}},
            },
            "strict": True,
        },
    }


def size_of(event: Event) -> int:
    return entry_size(SOURCE, event.detail_type, event.detail_json)


# --- Run Tagged ----------------------------------------------------------------------------------


def test_run_tagged_detail_holds_the_run_the_request_with_nulls_and_nothing_truncated() -> None:
    run = valid_run()

    event = EventBuilder(source=SOURCE, max_bytes=EVENTBRIDGE_LIMIT).run_tagged(run, REQUEST)

    assert event.detail_type == "Run Tagged"
    assert event.detail == {
        "run": run,
        "request": {
            "thread_id": "thread_abc123",
            "run_id": "run_abc123",
            "metadata": {"team": "search"},
            "request_id": None,
            "tenant": None,
        },
        "truncated": [],
    }
    assert json.loads(event.detail_json) == event.detail


def test_run_tagged_request_shows_the_given_optional_fields() -> None:
    request = TagRunRequest(thread_id="t", run_id="r", metadata={}, request_id="req-1", tenant="acme")

    event = EventBuilder(source=SOURCE, max_bytes=EVENTBRIDGE_LIMIT).run_tagged(valid_run(), request)

    assert event.detail["request"]["request_id"] == "req-1"
    assert event.detail["request"]["tenant"] == "acme"


def test_run_over_the_limit_loses_its_instructions_first_and_says_so() -> None:
    run = valid_run(instructions="i" * 20_000, tools=[function_tool("search", 500, 500)])

    event = EventBuilder(source=SOURCE, max_bytes=16_384).run_tagged(run, REQUEST)

    assert event.detail["truncated"] == ["run.instructions"]
    assert event.detail["run"]["instructions"] is None
    assert event.detail["run"]["tools"] == run["tools"]
    assert size_of(event) <= 16_384
    assert json.loads(event.detail_json) == event.detail


def test_run_still_over_the_limit_then_loses_function_descriptions_and_parameters_with_their_paths() -> None:
    tools = [
        {"type": "code_interpreter"},
        function_tool("search", 6_000, 6_000),
        function_tool("fetch", 6_000, 6_000),
    ]
    run = valid_run(instructions="i" * 6_000, tools=tools)

    event = EventBuilder(source=SOURCE, max_bytes=12_000).run_tagged(run, REQUEST)

    truncated = event.detail["truncated"]
    assert truncated[0] == "run.instructions"
    assert "run.tools[1].function.description" in truncated
    assert "run.tools[1].function.parameters" in truncated
    assert size_of(event) <= 12_000
    slim_tools = event.detail["run"]["tools"]
    assert slim_tools[0] == {"type": "code_interpreter"}
    for path in truncated[1:]:
        index, name = int(path.split("[")[1].split("]")[0]), path.rsplit(".", 1)[1]
        assert name not in slim_tools[index]["function"]
    # What was not named is kept: names, strictness, the rest of the run.
    assert [tool.get("function", {}).get("name") for tool in slim_tools] == [None, "search", "fetch"]
    assert event.detail["run"]["id"] == "run_abc123"
    assert event.detail["run"]["metadata"] == {"team": "search"}


def test_truncation_stops_as_soon_as_the_event_fits() -> None:
    tools = [function_tool("search", 6_000, 10), function_tool("fetch", 10, 10)]
    run = valid_run(instructions="i" * 6_000, tools=tools)

    event = EventBuilder(source=SOURCE, max_bytes=4_096).run_tagged(run, REQUEST)

    assert event.detail["truncated"] == ["run.instructions", "run.tools[0].function.description"]
    assert event.detail["run"]["tools"][1] == tools[1]


def test_truncating_leaves_the_callers_run_untouched() -> None:
    run = valid_run(instructions="i" * 20_000, tools=[function_tool("search", 6_000, 6_000)])
    before = copy.deepcopy(run)

    EventBuilder(source=SOURCE, max_bytes=4_096).run_tagged(run, REQUEST)

    assert run == before


def test_run_at_the_limit_is_not_truncated() -> None:
    builder = EventBuilder(source=SOURCE, max_bytes=EVENTBRIDGE_LIMIT)
    probe = builder.run_tagged(valid_run(instructions=""), REQUEST)
    run = valid_run(instructions="i" * (EVENTBRIDGE_LIMIT - size_of(probe)))

    event = builder.run_tagged(run, REQUEST)

    assert size_of(event) == EVENTBRIDGE_LIMIT
    assert event.detail["truncated"] == []
    assert event.detail["run"] == run


def test_size_counts_utf8_bytes_not_characters() -> None:
    run = valid_run(instructions="é" * 3_000)  # 3,000 characters, 6,000 bytes

    event = EventBuilder(source=SOURCE, max_bytes=5_000).run_tagged(run, REQUEST)

    assert event.detail["truncated"] == ["run.instructions"]


# --- Run Tag Failed ------------------------------------------------------------------------------


def test_run_tag_failed_for_a_body_that_is_not_a_request_has_a_null_request() -> None:
    error = InvalidRequest("thread_id: required field is missing")

    event = EventBuilder(source=SOURCE, max_bytes=EVENTBRIDGE_LIMIT).run_tag_failed(None, error, "msg-1")

    assert event.detail_type == "Run Tag Failed"
    assert event.detail == {
        "request": None,
        "error": {
            "code": "invalid_request",
            "message": "thread_id: required field is missing",
            "status": None,
            "retryable": False,
        },
        "message_id": "msg-1",
    }
    assert json.loads(event.detail_json) == event.detail


def test_run_tag_failed_for_a_portkey_answer_carries_the_request_and_the_http_status() -> None:
    error = RunNotFound("No run found with id 'run_abc123'.", status=404)

    event = EventBuilder(source=SOURCE, max_bytes=EVENTBRIDGE_LIMIT).run_tag_failed(REQUEST, error, "msg-2")

    assert event.detail["request"] == {**REQUEST.model_dump(), "request_id": None, "tenant": None}
    assert event.detail["error"] == {
        "code": "run_not_found",
        "message": "No run found with id 'run_abc123'.",
        "status": 404,
        "retryable": False,
    }
    assert event.detail["message_id"] == "msg-2"


def test_a_run_tagged_event_that_cannot_fit_even_truncated_says_the_run_was_tagged() -> None:
    # Given a request and run carrying the most metadata there is, and the smallest event limit
    metadata = {f"key{i:02d}": "v" * 512 for i in range(16)}
    request = TagRunRequest(thread_id="thread_abc123", run_id="run_abc123", metadata=metadata)
    builder = EventBuilder(source=SOURCE, max_bytes=4_096)
    # When its Run Tagged event is built, then the failure says the tag itself went through
    with pytest.raises(InvalidResponse, match=r"the run was tagged, but .* EVENT_MAX_BYTES \(4096\)"):
        builder.run_tagged(a_run(metadata=metadata), request)


def test_run_tag_failed_reports_a_retryable_error_as_retryable() -> None:
    event = EventBuilder(source=SOURCE, max_bytes=EVENTBRIDGE_LIMIT).run_tag_failed(
        REQUEST, PortkeyUnavailable("Portkey answered 503", status=503), "msg-3"
    )

    assert event.detail["error"]["retryable"] is True
    assert event.detail["error"]["status"] == 503


def test_run_tag_failed_with_a_huge_error_message_still_fits() -> None:
    error = InvalidRequest("x" * 10_000)

    event = EventBuilder(source=SOURCE, max_bytes=4_096).run_tag_failed(None, error, "msg-4")

    assert size_of(event) <= 4_096
    assert event.detail["error"]["message"].startswith("xxx")


def test_run_tag_failed_with_a_large_request_fits_a_small_event_limit() -> None:
    request = TagRunRequest(
        thread_id="t", run_id="r", metadata={f"key{i:02d}": "v" * 512 for i in range(16)}, request_id="req-1"
    )

    event = EventBuilder(source=SOURCE, max_bytes=4_096).run_tag_failed(
        request, InvalidRequest("tenant: unknown tenant"), "msg-5"
    )

    assert size_of(event) <= 4_096


@settings(max_examples=50, deadline=None)
@given(
    wide=st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF, categories=["Lo", "So"]),
    message_length=st.integers(min_value=0, max_value=5_000),
    with_request=st.booleans(),
)
def test_run_tag_failed_fits_the_smallest_event_limit_whatever_its_text(
    wide: str, message_length: int, with_request: bool
) -> None:
    # Given the largest request the contract lets in, in four-byte characters where text is free,
    # and an error message of up to 5,000 of them
    request = TagRunRequest(
        thread_id="t" * 128,
        run_id="r" * 128,
        metadata={wide * 64 if i == 0 else f"k{i:02d}": wide * 512 for i in range(16)},
        request_id=wide * 128,
        tenant="a" * 64,
    )
    error = InvalidRequest(wide * message_length)
    # When its Run Tag Failed event is built for the smallest EVENT_MAX_BYTES allowed
    event = EventBuilder(source=SOURCE, max_bytes=4_096).run_tag_failed(
        request if with_request else None, error, "msg-6"
    )
    # Then it fits, and what is left of the message is whole characters of it
    assert size_of(event) <= 4_096
    assert wide * len(event.detail["error"]["message"]) == event.detail["error"]["message"]


# --- publishing ----------------------------------------------------------------------------------


@dataclass
class FakeEventBridge:
    """PutEvents in memory: entries whose detail `n` is listed fail that many times (or forever: -1).

    `error` is raised by every call after the first `error_after`; `results_dropped` entries at the end of
    each call get no result at all."""

    failures: dict[int, int] = field(default_factory=dict)
    error: ClientError | None = None
    error_after: int = 0
    results_dropped: int = 0
    calls: list[list[dict[str, Any]]] = field(default_factory=list)

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        if self.error is not None and len(self.calls) > self.error_after:
            raise self.error
        results: list[dict[str, Any]] = []
        for entry in Entries:
            number = json.loads(entry["Detail"])["n"]
            left = self.failures.get(number, 0)
            if left != 0:
                self.failures[number] = left - 1
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
            else:
                results.append({"EventId": f"event-{number}"})
        failed = sum("ErrorCode" in result for result in results)
        return {"FailedEntryCount": failed, "Entries": results[: len(results) - self.results_dropped]}

    def numbers(self, call: int) -> list[int]:
        return [json.loads(entry["Detail"])["n"] for entry in self.calls[call]]


@dataclass
class RecordingSleep:
    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def publisher(
    client: FakeEventBridge, sleep: RecordingSleep | None = None, attempts: int = 3
) -> EventPublisher:
    return EventPublisher(
        cast("EventBridgeClient", client),
        bus_name=BUS,
        source=SOURCE,
        entry_attempts=attempts,
        sleep=sleep or RecordingSleep(),
    )


def events(count: int, padding: int = 0) -> list[Event]:
    return [Event("Run Tagged", {"n": number, "pad": "p" * padding}) for number in range(count)]


def test_25_events_go_out_in_calls_of_at_most_10_entries_in_order() -> None:
    client = FakeEventBridge()

    outcomes = publisher(client).publish(events(25))

    assert outcomes == [None] * 25
    assert [len(call) for call in client.calls] == [10, 10, 5]
    assert [n for call in range(3) for n in client.numbers(call)] == list(range(25))


def test_each_entry_names_the_bus_source_and_detail_type() -> None:
    client = FakeEventBridge()

    publisher(client).publish([Event("Run Tag Failed", {"n": 0})])

    assert client.calls[0] == [
        {"Source": SOURCE, "DetailType": "Run Tag Failed", "Detail": '{"n":0}', "EventBusName": BUS}
    ]


def test_failed_entry_is_resent_alone_and_then_counts_as_published() -> None:
    client = FakeEventBridge(failures={3: 1})
    sleep = RecordingSleep()

    outcomes = publisher(client, sleep).publish(events(5))

    assert outcomes == [None] * 5
    assert client.numbers(0) == [0, 1, 2, 3, 4]
    assert client.numbers(1) == [3]
    assert len(sleep.waits) == 1


def test_entry_that_keeps_failing_is_reported_as_publish_failed_and_only_it() -> None:
    client = FakeEventBridge(failures={1: -1})

    outcomes = publisher(client, attempts=3).publish(events(3))

    assert outcomes[0] is None
    assert outcomes[2] is None
    failure = outcomes[1]
    assert isinstance(failure, PublishFailed)
    assert failure.retryable is True
    assert "InternalFailure" in failure.message
    assert [client.numbers(call) for call in range(len(client.calls))] == [[0, 1, 2], [1], [1]]


def test_whole_call_refused_reports_every_entry_of_it_as_publish_failed() -> None:
    refused = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "PutEvents")
    client = FakeEventBridge(error=refused)

    outcomes = publisher(client).publish(events(3))

    assert all(isinstance(outcome, PublishFailed) for outcome in outcomes)
    assert all("AccessDeniedException" in str(outcome) for outcome in outcomes)
    assert len(client.calls) == 1


def test_a_resend_refused_whole_fails_only_the_entry_it_resent() -> None:
    # Given two events: the second is refused once, and the call that resends it is refused whole
    refused = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "PutEvents")
    client = FakeEventBridge(failures={1: 1}, error=refused, error_after=1)
    # When they are published
    outcomes = publisher(client).publish(events(2))
    # Then the first stays published (its message is deleted, never published twice); only the second failed
    assert outcomes[0] is None
    assert isinstance(outcomes[1], PublishFailed)
    assert "ThrottlingException" in str(outcomes[1])


def test_an_entry_eventbridge_gave_no_result_for_counts_as_not_published() -> None:
    # Given an answer that holds a result for the first of two entries only
    client = FakeEventBridge(results_dropped=1)
    # When they are published
    outcomes = publisher(client, attempts=1).publish(events(2))
    # Then the second is not taken for published: its message comes back rather than being lost
    assert outcomes[0] is None
    assert isinstance(outcomes[1], PublishFailed)
    assert "no result" in str(outcomes[1])


def test_a_publisher_built_with_its_defaults_sends_a_refused_entry_three_times() -> None:
    # Given the publisher as the function builds it (no entry_attempts given) and an entry always refused
    client = FakeEventBridge(failures={0: -1})
    sleep = RecordingSleep()
    eventbridge = cast("EventBridgeClient", client)
    # When it is published
    outcomes = EventPublisher(eventbridge, bus_name=BUS, source=SOURCE, sleep=sleep).publish(events(1))
    # Then it was sent, then resent twice after a growing pause, before being reported
    assert isinstance(outcomes[0], PublishFailed)
    assert len(client.calls) == 3
    assert sleep.waits == sorted(sleep.waits)
    assert len(sleep.waits) == 2


@settings(max_examples=200)
@given(
    weights=st.lists(st.integers(min_value=1, max_value=120), max_size=40),
    max_entries=st.integers(min_value=1, max_value=10),
    max_bytes=st.integers(min_value=120, max_value=600),
)
def test_calls_are_filled_in_order_up_to_either_limit(
    weights: list[int], max_entries: int, max_bytes: int
) -> None:
    calls = group_calls(weights, max_entries=max_entries, max_bytes=max_bytes)
    # Every entry once, in order
    assert [index for call in calls for index in call] == list(range(len(weights)))
    for number, call in enumerate(calls):
        size = sum(weights[index] for index in call)
        # Within both limits
        assert 1 <= len(call) <= max_entries
        assert size <= max_bytes
        # And full: a call closed early only because the next entry would not have fitted
        if number + 1 < len(calls):
            following = weights[calls[number + 1][0]]
            assert len(call) == max_entries or size + following > max_bytes


def test_a_lone_publish_raises_publish_failed_when_the_event_is_not_taken() -> None:
    client = FakeEventBridge(failures={0: -1})

    with pytest.raises(PublishFailed):
        EventBatcher(publisher(client)).publish(events(1)[0])


def test_a_lone_publish_returns_when_the_event_is_taken() -> None:
    client = FakeEventBridge()

    EventBatcher(publisher(client)).publish(events(1)[0])

    assert client.numbers(0) == [0]


def test_large_events_are_split_so_no_call_exceeds_the_putevents_request_limit() -> None:
    client = FakeEventBridge()

    publisher(client).publish(events(10, padding=60_000))

    for call in client.calls:
        assert (
            sum(entry_size(SOURCE, entry["DetailType"], entry["Detail"]) for entry in call)
            <= EVENTBRIDGE_LIMIT
        )


def test_a_run_large_for_other_reasons_is_still_published_truncated() -> None:
    # Given a run whose bulk is a pending tool call's arguments and a field the schema does not know
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "a" * 20_000}}
    run = valid_run(
        status="requires_action",
        required_action={"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [call]}},
        tool_resources={"code_interpreter": {"file_ids": ["f" * 30 for _ in range(400)]}},
    )
    # When it is built into an event with a small limit
    event = EventBuilder(source=SOURCE, max_bytes=16_384).run_tagged(run, REQUEST)
    # Then it fits, and every emptied part is named
    assert size_of(event) <= 16_384
    assert (
        "run.required_action.submit_tool_outputs.tool_calls[0].function.arguments"
        in event.detail["truncated"]
    )
    assert (
        event.detail["run"]["required_action"]["submit_tool_outputs"]["tool_calls"][0]["function"][
            "arguments"
        ]
        == ""
    )
