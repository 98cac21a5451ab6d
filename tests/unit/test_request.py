"""Unit tests of `run_tagger.request`: the tag-run request (DESIGN §1.1), its envelopes and its keys."""

from __future__ import annotations

import json
import re
import string
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from run_tagger.errors import InvalidRequest
from run_tagger.request import MAX_BODY_BYTES, ParsedMessage, TagRunRequest, parse_message

SQS_MESSAGE_ID = "059f36b4-87a3-44ab-83d2-661975830a7d"
EVENT_ID = "7bf73129-1428-4cd3-a780-95db273d1602"
SNS_MESSAGE_ID = "95df01b4-ee98-5cb9-9903-4c221d41eb5e"
VALID: dict[str, Any] = {"thread_id": "thread_abc123", "run_id": "run_abc123", "metadata": {"team": "search"}}

ID_CHARS = string.ascii_letters + string.digits + "_-"
ID_RULE = re.compile(r"[A-Za-z0-9_-]{1,128}")


# --- envelopes -----------------------------------------------------------------------------------


def eventbridge(detail: object, *, detail_type: str = "Tag Run Requested", event_id: str = EVENT_ID) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": event_id,
            "detail-type": detail_type,
            "source": "com.example.producer",
            "account": "123456789012",
            "time": "2026-01-01T00:00:00Z",
            "region": "eu-west-1",
            "resources": [],
            "detail": detail,
        }
    )


def sns(message: str, *, message_id: str = SNS_MESSAGE_ID) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:tag-run",
            "Message": message,
            "Timestamp": "2026-01-01T00:00:00.000Z",
            "SignatureVersion": "1",
        }
    )


def refusal(body: str) -> str:
    """The message of the `InvalidRequest` that `body` is refused with."""
    with pytest.raises(InvalidRequest) as caught:
        parse_message(body, SQS_MESSAGE_ID)
    assert caught.value.code == "invalid_request"
    assert caught.value.retryable is False
    return caught.value.message


def with_fields(**fields: object) -> str:
    return json.dumps({**VALID, **fields})


# --- the three envelopes -------------------------------------------------------------------------


def test_raw_sqs_body_is_accepted_as_the_request() -> None:
    parsed = parse_message(json.dumps(VALID), SQS_MESSAGE_ID)

    assert parsed.request == TagRunRequest(
        thread_id="thread_abc123", run_id="run_abc123", metadata={"team": "search"}
    )
    assert parsed.envelope == "sqs"


def test_eventbridge_event_carries_the_request_in_its_detail() -> None:
    parsed = parse_message(eventbridge(VALID), SQS_MESSAGE_ID)

    assert parsed.request.model_dump() == {**VALID, "request_id": None, "tenant": None}
    assert parsed.envelope == "eventbridge"


def test_eventbridge_event_of_another_detail_type_is_refused() -> None:
    message = refusal(eventbridge(VALID, detail_type="Run Tagged"))

    assert "detail-type" in message
    assert "Tag Run Requested" in message


def test_eventbridge_event_whose_detail_is_not_an_object_is_refused() -> None:
    message = refusal(eventbridge("thread_abc123"))

    assert "must be a JSON object" in message


def test_sns_notification_carries_the_request_as_a_json_string_in_message() -> None:
    parsed = parse_message(sns(json.dumps(VALID)), SQS_MESSAGE_ID)

    assert parsed.request.model_dump() == {**VALID, "request_id": None, "tenant": None}
    assert parsed.envelope == "sns"


def test_sns_notification_whose_message_is_not_json_is_refused_naming_the_message() -> None:
    message = refusal(sns("thread_abc123 run_abc123"))

    assert "Message" in message
    assert "not valid JSON" in message


def test_sns_notification_wrapping_an_eventbridge_event_is_unwrapped_twice() -> None:
    parsed = parse_message(sns(eventbridge(VALID)), SQS_MESSAGE_ID)

    assert parsed.request.model_dump() == {**VALID, "request_id": None, "tenant": None}
    # The innermost envelope's id is the one that stays the same when SNS redelivers the event.
    assert parsed.dedup_key == EVENT_ID


# --- de-duplication key --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        with_fields(request_id="order-42/tag"),
        eventbridge({**VALID, "request_id": "order-42/tag"}),
        sns(json.dumps({**VALID, "request_id": "order-42/tag"})),
    ],
    ids=["sqs", "eventbridge", "sns"],
)
def test_request_id_is_the_dedup_key_in_every_envelope(body: str) -> None:
    assert parse_message(body, SQS_MESSAGE_ID).dedup_key == "order-42/tag"


def test_without_request_id_the_eventbridge_id_is_the_dedup_key() -> None:
    assert parse_message(eventbridge(VALID), SQS_MESSAGE_ID).dedup_key == EVENT_ID


def test_without_request_id_the_sns_message_id_is_the_dedup_key() -> None:
    assert parse_message(sns(json.dumps(VALID)), SQS_MESSAGE_ID).dedup_key == SNS_MESSAGE_ID


def test_without_request_id_or_envelope_the_sqs_message_id_is_the_dedup_key() -> None:
    assert parse_message(json.dumps(VALID), SQS_MESSAGE_ID).dedup_key == SQS_MESSAGE_ID


@pytest.mark.parametrize(
    ("body", "field"),
    [(eventbridge(VALID, event_id=""), "id"), (sns(json.dumps(VALID), message_id=""), "MessageId")],
    ids=["eventbridge", "sns"],
)
def test_an_envelope_with_an_empty_id_is_refused_rather_than_sharing_an_empty_key(
    body: str, field: str
) -> None:
    # An empty id would make every such request one de-duplication key: all but the first skipped.
    assert refusal(body).startswith(f"{field}: required string field")


def test_scoped_key_is_the_tenant_then_the_dedup_key() -> None:
    parsed = parse_message(with_fields(tenant="acme", request_id="req-1"), SQS_MESSAGE_ID)

    assert parsed.scoped_key == "acme:req-1"


def test_same_request_id_of_two_tenants_gives_two_scoped_keys() -> None:
    acme = parse_message(with_fields(tenant="acme", request_id="req-1"), SQS_MESSAGE_ID)
    globex = parse_message(with_fields(tenant="globex", request_id="req-1"), SQS_MESSAGE_ID)
    untenanted = parse_message(with_fields(request_id="req-1"), SQS_MESSAGE_ID)

    assert len({acme.scoped_key, globex.scoped_key, untenanted.scoped_key}) == 3
    assert untenanted.scoped_key.endswith(":req-1")


# --- bodies that are not a request ---------------------------------------------------------------


@pytest.mark.parametrize("body", ["", "thread_abc123", "{'thread_id': 'x'}", '{"thread_id": "t",'])
def test_body_that_is_not_json_is_refused(body: str) -> None:
    assert "not valid JSON" in refusal(body)


@pytest.mark.parametrize(
    ("body", "kind"),
    [("[]", "an array"), ('"thread_abc123"', "a string"), ("null", "null"), ("42", "a number")],
)
def test_json_that_is_not_an_object_is_refused_naming_what_it_is(body: str, kind: str) -> None:
    message = refusal(body)

    assert "must be a JSON object" in message
    assert kind in message


def test_unknown_top_level_field_is_refused_so_a_typo_does_not_tag_nothing() -> None:
    body = json.dumps({"thread_id": "t1", "run_id": "r1", "meta_data": {"team": "search"}})

    message = refusal(body)

    assert "meta_data" in message
    assert "unknown field" in message


@pytest.mark.parametrize("field", ["thread_id", "run_id", "metadata"])
def test_missing_required_field_is_refused_naming_it(field: str) -> None:
    body = json.dumps({name: value for name, value in VALID.items() if name != field})

    message = refusal(body)

    assert f"{field}: required field is missing" in message


@pytest.mark.parametrize("field", ["thread_id", "run_id"])
@pytest.mark.parametrize(
    "bad_id",
    ["thread/abc", "..", "..%2Fadmin", "run%2F1", "run 1", "x" * 129, "", "run\n", "rün", "run.1"],
    ids=[
        "slash",
        "dotdot",
        "dotdot-encoded",
        "percent-2F",
        "space",
        "129-chars",
        "empty",
        "newline",
        "non-ascii",
        "dot",
    ],
)
def test_id_that_could_escape_the_url_path_is_refused_naming_the_field_and_rule(
    field: str, bad_id: str
) -> None:
    message = refusal(with_fields(**{field: bad_id}))

    assert message.startswith(f"{field}:")
    assert "1-128 characters" in message


@pytest.mark.parametrize("field", ["thread_id", "run_id"])
def test_id_of_exactly_128_allowed_characters_is_accepted(field: str) -> None:
    parsed = parse_message(with_fields(**{field: "aZ0_-" * 25 + "abc"}), SQS_MESSAGE_ID)

    assert len(getattr(parsed.request, field)) == 128


@pytest.mark.parametrize("field", ["thread_id", "run_id"])
def test_id_that_is_not_a_string_is_refused(field: str) -> None:
    message = refusal(with_fields(**{field: 12345}))

    assert message.startswith(f"{field}:")
    assert "string" in message


def test_seventeen_metadata_pairs_are_refused() -> None:
    message = refusal(with_fields(metadata={f"key{i}": "v" for i in range(17)}))

    assert "metadata" in message
    assert "16 pairs" in message


def test_sixteen_metadata_pairs_are_accepted() -> None:
    parsed = parse_message(with_fields(metadata={f"key{i}": "v" for i in range(16)}), SQS_MESSAGE_ID)

    assert len(parsed.request.metadata) == 16


def test_empty_metadata_is_accepted() -> None:
    assert parse_message(with_fields(metadata={}), SQS_MESSAGE_ID).request.metadata == {}


@pytest.mark.parametrize("key", ["k" * 65, ""], ids=["65-chars", "empty"])
def test_metadata_key_outside_1_to_64_characters_is_refused(key: str) -> None:
    message = refusal(with_fields(metadata={key: "v"}))

    assert "metadata key" in message
    assert "1-64 characters" in message


def test_metadata_value_over_512_characters_is_refused_naming_its_key() -> None:
    message = refusal(with_fields(metadata={"summary": "v" * 513}))

    assert "metadata.summary" in message
    assert "512" in message


def test_metadata_key_of_64_and_value_of_512_characters_are_accepted() -> None:
    parsed = parse_message(with_fields(metadata={"k" * 64: "v" * 512, "empty": ""}), SQS_MESSAGE_ID)

    assert parsed.request.metadata == {"k" * 64: "v" * 512, "empty": ""}


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (42, "a number"),
        (4.5, "a number"),
        (None, "null"),
        (True, "a boolean"),
        ({"a": "b"}, ""),
        (["a"], "an array"),
    ],
    ids=["int", "float", "null", "bool", "object", "array"],
)
def test_metadata_value_that_is_not_a_string_is_refused(value: object, kind: str) -> None:
    message = refusal(with_fields(metadata={"team": value}))

    assert "metadata.team" in message
    assert "must be a string" in message or "valid string" in message
    assert kind in message


def test_metadata_that_is_not_an_object_is_refused() -> None:
    message = refusal(with_fields(metadata=[["team", "search"]]))

    assert message.startswith("metadata:")


@pytest.mark.parametrize("tenant", ["Acme", "a" * 65, "", "acme_corp", "acme corp"])
def test_tenant_outside_lowercase_digits_and_dash_up_to_64_is_refused(tenant: str) -> None:
    message = refusal(with_fields(tenant=tenant))

    assert message.startswith("tenant:")
    assert "a-z, 0-9 or '-'" in message


def test_tenant_of_64_allowed_characters_is_accepted() -> None:
    assert (
        parse_message(with_fields(tenant="a-1" * 21 + "z"), SQS_MESSAGE_ID).request.tenant == "a-1" * 21 + "z"
    )


@pytest.mark.parametrize("request_id", ["", "r" * 129], ids=["empty", "129-chars"])
def test_request_id_outside_1_to_128_characters_is_refused(request_id: str) -> None:
    message = refusal(with_fields(request_id=request_id))

    assert message.startswith("request_id:")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_as_not_json(constant: str) -> None:
    body = '{"thread_id": "t1", "run_id": "r1", "metadata": {"score": ' + constant + "}}"

    message = refusal(body)

    assert "not valid JSON" in message


@pytest.mark.parametrize(
    "body",
    ["[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000],
    ids=["arrays", "objects"],
)
def test_deeply_nested_json_is_refused_cheaply(body: str) -> None:
    started = time.perf_counter()

    message = refusal(body)

    assert "nested too deeply" in message
    assert time.perf_counter() - started < 2.0


def test_deeply_nested_json_is_refused_in_a_worker_thread_too() -> None:
    # The batch processor parses records on worker threads, whose stacks may be smaller.
    body = "[" * 100_000 + "]" * 100_000

    with ThreadPoolExecutor(max_workers=1) as pool:
        message = pool.submit(refusal, body).result()

    assert "nested too deeply" in message


def test_body_over_1_mib_is_refused_before_parsing() -> None:
    body = json.dumps(VALID) + " " * MAX_BODY_BYTES

    message = refusal(body)

    assert str(MAX_BODY_BYTES) in message


def test_body_of_exactly_1_mib_is_accepted() -> None:
    text = json.dumps(VALID)
    body = text + " " * (MAX_BODY_BYTES - len(text.encode()))

    assert parse_message(body, SQS_MESSAGE_ID).request.thread_id == "thread_abc123"


def test_body_over_1_mib_counted_in_utf8_bytes_is_refused() -> None:
    # Under the limit in characters, over it in bytes: SQS counts bytes.
    body = json.dumps({**VALID, "metadata": {}}, ensure_ascii=False) + "\u00a0" * (MAX_BODY_BYTES // 2 + 1)

    assert str(MAX_BODY_BYTES) in refusal(body)


def test_every_problem_of_a_request_is_named_at_once() -> None:
    body = json.dumps({"thread_id": "a/b", "metadata": {"k": 1}, "meta_data": {}})

    message = refusal(body)

    for field in ("thread_id", "run_id", "metadata.k", "meta_data"):
        assert field in message


# --- properties ----------------------------------------------------------------------------------

ids = st.text(alphabet=ID_CHARS, min_size=1, max_size=128)
metadata_maps = st.dictionaries(st.text(min_size=1, max_size=64), st.text(max_size=512), max_size=16)
valid_requests = st.fixed_dictionaries(
    {"thread_id": ids, "run_id": ids, "metadata": metadata_maps},
    optional={
        "request_id": st.text(min_size=1, max_size=128),
        "tenant": st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=64),
    },
)
ENVELOPES: dict[str, Callable[[dict[str, Any]], str]] = {
    "sqs": json.dumps,
    "eventbridge": eventbridge,
    "sns": lambda request: sns(json.dumps(request)),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=valid_requests, envelope=st.sampled_from(sorted(ENVELOPES)))
def test_every_valid_request_is_accepted_in_every_envelope_unchanged(
    request: dict[str, Any], envelope: str
) -> None:
    parsed = parse_message(ENVELOPES[envelope](request), SQS_MESSAGE_ID)

    assert isinstance(parsed, ParsedMessage)
    assert parsed.envelope == envelope
    assert parsed.request.model_dump() == {"request_id": None, "tenant": None, **request}
    assert parsed.dedup_key == request.get(
        "request_id", {"sqs": SQS_MESSAGE_ID, "eventbridge": EVENT_ID, "sns": SNS_MESSAGE_ID}[envelope]
    )


def _invalid_ids() -> st.SearchStrategy[str]:
    near_misses = st.builds(
        lambda head, bad, tail: head + bad + tail,
        st.text(alphabet=ID_CHARS, max_size=20),
        st.text(min_size=1, max_size=3).filter(lambda text: not ID_RULE.fullmatch(text)),
        st.text(alphabet=ID_CHARS, max_size=20),
    )
    too_long = st.text(alphabet=ID_CHARS, min_size=129, max_size=200)
    anything = st.text(max_size=140)
    return (near_misses | too_long | anything).filter(lambda text: not ID_RULE.fullmatch(text))


@settings(max_examples=150, deadline=None)
@given(field=st.sampled_from(["thread_id", "run_id"]), bad_id=_invalid_ids())
def test_any_id_outside_the_url_safe_alphabet_is_refused(field: str, bad_id: str) -> None:
    message = refusal(with_fields(**{field: bad_id}))

    assert f"{field}:" in message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
any_bodies = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    st.builds(
        lambda request, name, value: json.dumps({**request, name: value}),
        valid_requests,
        st.sampled_from(["thread_id", "run_id", "metadata", "request_id", "tenant", "detail", "Message"]),
        json_values,
    ),
    st.builds(
        lambda request, value: sns(json.dumps({**request, "metadata": value})), valid_requests, json_values
    ),
)


@settings(max_examples=200, deadline=None)
@given(body=any_bodies)
def test_any_body_is_either_a_request_or_refused_as_invalid_request(body: str) -> None:
    # Anything else escaping (KeyError, RecursionError, UnicodeError...) would be a crash, not a refusal.
    outcome = _parse_or_refusal(body)

    assert isinstance(outcome, TagRunRequest) or outcome.message


def _parse_or_refusal(body: str) -> TagRunRequest | InvalidRequest:
    try:
        return parse_message(body, SQS_MESSAGE_ID).request
    except InvalidRequest as refused:
        return refused


@settings(max_examples=60, deadline=None)
@given(request=valid_requests)
def test_to_detail_shows_every_field_with_absent_optional_ones_as_null(request: dict[str, Any]) -> None:
    detail = parse_message(json.dumps(request), SQS_MESSAGE_ID).request.to_detail()

    assert set(detail) == {"thread_id", "run_id", "metadata", "request_id", "tenant"}
    assert detail == {"request_id": None, "tenant": None, **request}
    assert json.loads(json.dumps(detail)) == detail
