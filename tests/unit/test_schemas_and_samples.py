"""events/: the schemas match the models, and the samples match the schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from run_tagger.errors import InvalidRequest
from run_tagger.request import parse_message
from run_tagger.schemas import all_schemas, render

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLE_REQUESTS = sorted((EVENTS / "requests").glob("*.json"))
SQS_EVENTS = sorted(EVENTS.glob("*sqs-event*.json"))


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(all_schemas()))
def test_schema_file_matches_the_models(name: str) -> None:
    # Given the schema generated from the models now
    expected = render(all_schemas()[name])
    # When the committed file is read
    committed = (EVENTS / "schemas" / name).read_text(encoding="utf-8")
    # Then they are the same (run `make schemas` after changing a model)
    assert committed == expected, f"events/schemas/{name} drifted from the models: run `make schemas`"


@pytest.mark.parametrize("name", sorted(all_schemas()))
def test_schema_is_valid_json_schema(name: str) -> None:
    Draft202012Validator.check_schema(_load(EVENTS / "schemas" / name))


@pytest.mark.parametrize("path", SAMPLE_REQUESTS, ids=lambda p: p.name)
def test_sample_request_validates_unless_meant_to_be_refused(path: Path) -> None:
    # Given a sample request and the request schema
    validator = Draft202012Validator(_load(EVENTS / "schemas" / "tag-run-request.json"))
    body = path.read_text(encoding="utf-8")
    meant_to_be_refused = "invalid" in path.name
    # When it is checked by the schema and by the function's own parser
    schema_errors = list(validator.iter_errors(json.loads(body)))
    try:
        parse_message(body, "sample")
        refused = False
    except InvalidRequest:
        refused = True
    # Then both agree with the file name
    assert refused is meant_to_be_refused
    assert bool(schema_errors) is meant_to_be_refused


@pytest.mark.parametrize("path", SQS_EVENTS, ids=lambda p: p.name)
def test_sample_sqs_event_records_parse_unless_meant_to_be_refused(path: Path) -> None:
    # Given an SQS event for `sam local invoke`
    records = _load(path)["Records"]
    # When each record's body is parsed as the function would
    refused = []
    for record in records:
        assert record["eventSource"] == "aws:sqs"
        try:
            parse_message(record["body"], record["messageId"])
        except InvalidRequest:
            refused.append(record["messageId"])
    # Then only samples named invalid hold a refused record
    assert bool(refused) is ("invalid" in path.name)


@pytest.mark.parametrize(
    ("sample", "schema"),
    [("run-tagged.json", "run-tagged.json"), ("run-tag-failed.json", "run-tag-failed.json")],
)
def test_sample_published_event_validates_against_its_schema(sample: str, schema: str) -> None:
    validator = Draft202012Validator(_load(EVENTS / "schemas" / schema))

    assert list(validator.iter_errors(_load(EVENTS / sample))) == []
