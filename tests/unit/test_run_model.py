"""The run object model (DESIGN §1.2): what Portkey may answer is accepted and passed on unchanged,
anything else is refused."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import MISSING, ValidationError
from run_tagger.run import NamedToolChoice, ResponseFormatJsonSchema, Run, parse_run, run_to_json

from tests.strategies import (
    ERROR_CODES,
    FIELD_KINDS,
    INCOMPLETE_REASONS,
    NON_NULLABLE_FIELDS,
    RANKERS,
    REQUIRED_FIELDS,
    RESPONSE_FORMAT_MODES,
    RESPONSE_FORMAT_TYPES,
    STATUSES,
    TOOL_CHOICE_MODES,
    TOOL_TYPES,
    TRUNCATION_TYPES,
    JsonDict,
    delete_at,
    file_search_tools,
    function_tools,
    json_schema_response_formats,
    json_values_except,
    last_errors,
    metadata_maps,
    named_tool_choices,
    ranking_options,
    replace_at,
    required_actions,
    required_tool_calls,
    spec_valid_runs,
    strings_except,
    strings_longer_than,
    tools,
    truncation_strategies,
    usages,
)

PROPERTY = settings(max_examples=100, deadline=None)
TOKEN_COUNTS = ("completion_tokens", "prompt_tokens", "total_tokens")

SCHEMA_VALIDATOR = Draft202012Validator(Run.model_json_schema())


def documented_run() -> JsonDict:
    """The run object of OpenAI's API reference (instructions null, as real responses have).

    The reference's example leaves out `required_action`, which its own schema requires; it is added here.
    """
    return {
        "id": "run_abc123",
        "object": "thread.run",
        "created_at": 1698107661,
        "assistant_id": "asst_abc123",
        "thread_id": "thread_abc123",
        "status": "completed",
        "required_action": None,
        "started_at": 1699073476,
        "expires_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": 1699073498,
        "last_error": None,
        "model": "gpt-4o",
        "instructions": None,
        "tools": [{"type": "file_search"}, {"type": "code_interpreter"}],
        "metadata": {},
        "incomplete_details": None,
        "usage": {"prompt_tokens": 123, "completion_tokens": 456, "total_tokens": 579},
        "temperature": 1.0,
        "top_p": 1.0,
        "max_prompt_tokens": 1000,
        "max_completion_tokens": 1000,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "response_format": "auto",
        "tool_choice": "auto",
        "parallel_tool_calls": True,
    }


def refusal_of(payload: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        parse_run(payload)
    return caught.value


def blames(error: ValidationError, *path: str | int) -> bool:
    """Whether some error of `error` lies at or below `path`."""
    return any(tuple(detail["loc"][: len(path)]) == path for detail in error.errors())


def as_json_text(document: object) -> str:
    # Text comparison tells 1 from 1.0 and True from 1, which == does not.
    return json.dumps(document, sort_keys=True)


def with_tool(tool: JsonDict) -> JsonDict:
    return replace_at(documented_run(), ("tools",), [tool])


def with_ranking_options(options: JsonDict) -> JsonDict:
    return with_tool({"type": "file_search", "file_search": {"ranking_options": options}})


def names_outside_the_prose_rule() -> st.SearchStrategy[str]:
    """Names the spec's prose discourages (`[A-Za-z0-9_-]{1,64}`) but its schema allows: any string."""
    too_long = strings_longer_than(0).map(lambda text: "a" * 64 + text)
    return st.just("") | too_long | st.from_regex(r"[^A-Za-z0-9_-]")


# --- every run the spec allows -----------------------------------------------------------------


@PROPERTY
@given(spec_valid_runs())
def test_every_spec_valid_run_is_accepted_and_passed_on_unchanged(payload: JsonDict) -> None:
    document = run_to_json(parse_run(payload))

    assert document == payload
    assert as_json_text(document) == as_json_text(payload)


@PROPERTY
@given(spec_valid_runs())
def test_the_generated_json_schema_accepts_every_spec_valid_run(payload: JsonDict) -> None:
    errors = list(SCHEMA_VALIDATOR.iter_errors(payload))

    assert errors == []


def test_the_generated_json_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(Run.model_json_schema())


def test_the_generated_json_schema_lists_exactly_the_spec_statuses() -> None:
    schema = Run.model_json_schema()

    assert schema["properties"]["status"]["enum"] == list(STATUSES)


def test_the_generated_json_schema_requires_exactly_the_spec_required_fields() -> None:
    schema = Run.model_json_schema()

    assert set(schema["required"]) == set(REQUIRED_FIELDS)
    assert {"temperature", "top_p"} <= set(schema["properties"])


def test_the_generated_json_schema_refuses_a_run_missing_a_required_field() -> None:
    payload = delete_at(documented_run(), ("instructions",))

    assert not SCHEMA_VALIDATOR.is_valid(payload)


# --- real-world runs ---------------------------------------------------------------------------


def test_the_documented_run_with_null_instructions_is_read_and_round_trips() -> None:
    payload = documented_run()

    run = parse_run(payload)

    assert (run.id, run.thread_id, run.status, run.created_at) == (
        "run_abc123",
        "thread_abc123",
        "completed",
        1698107661,
    )
    assert run.instructions is None
    assert run.to_json_dict() == payload


def test_an_unknown_top_level_field_like_tool_resources_is_kept() -> None:
    resources = {"code_interpreter": {"file_ids": ["file-1"]}, "file_search": {"vector_store_ids": []}}
    payload = replace_at(documented_run(), ("tool_resources",), resources)

    run = parse_run(payload)

    assert run.model_extra == {"tool_resources": resources}
    assert run.to_json_dict()["tool_resources"] == resources


def test_unknown_fields_inside_nested_objects_are_kept() -> None:
    tool: JsonDict = {
        "type": "function",
        "function": {"name": "lookup", "x_cost": 3},
        "x_owner": {"team": "a"},
    }
    payload = with_tool(tool)

    document = parse_run(payload).to_json_dict()

    assert document["tools"] == [tool]


def test_response_format_auto_is_kept_as_a_string() -> None:
    run = parse_run(documented_run())

    assert run.response_format == "auto"
    assert run.to_json_dict()["response_format"] == "auto"


def test_a_json_schema_response_format_keeps_its_schema_under_the_json_key_schema() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    payload = replace_at(documented_run(), ("response_format",), response_format)

    run = parse_run(payload)

    assert isinstance(run.response_format, ResponseFormatJsonSchema)
    assert run.response_format.json_schema.schema_ == schema
    assert run.to_json_dict()["response_format"] == response_format


def test_a_tool_choice_object_names_the_forced_function() -> None:
    choice = {"type": "function", "function": {"name": "lookup"}}
    payload = replace_at(documented_run(), ("tool_choice",), choice)

    run = parse_run(payload)

    assert isinstance(run.tool_choice, NamedToolChoice)
    assert run.tool_choice.function is not MISSING
    assert run.tool_choice.function.name == "lookup"


@pytest.mark.parametrize("temperature", [1, 1.0, 0.7])
def test_a_temperature_keeps_its_json_number_type(temperature: float) -> None:
    payload = replace_at(documented_run(), ("temperature",), temperature)

    document = parse_run(payload).to_json_dict()

    assert as_json_text(document["temperature"]) == as_json_text(temperature)


def test_an_absent_temperature_stays_absent() -> None:
    payload = delete_at(documented_run(), ("temperature",))

    run = parse_run(payload)

    assert run.temperature is MISSING
    assert "temperature" not in run.to_json_dict()


# --- refused: a run broken in one top-level field ----------------------------------------------


@PROPERTY
@given(json_values_except("object"))
def test_a_payload_that_is_not_a_json_object_is_refused(payload: object) -> None:
    refusal_of(payload)


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
def test_a_run_missing_a_required_field_is_refused(field: str) -> None:
    error = refusal_of(delete_at(documented_run(), (field,)))

    assert blames(error, field)


@pytest.mark.parametrize("field", NON_NULLABLE_FIELDS)
def test_null_where_the_spec_allows_none_is_refused(field: str) -> None:
    error = refusal_of(replace_at(documented_run(), (field,), None))

    assert blames(error, field)


@PROPERTY
@given(
    spec_valid_runs(),
    st.sampled_from(sorted(FIELD_KINDS)).flatmap(
        lambda field: st.tuples(st.just(field), json_values_except(*FIELD_KINDS[field]))
    ),
)
def test_a_field_holding_the_wrong_json_type_is_refused(payload: JsonDict, wrong: tuple[str, object]) -> None:
    field, value = wrong

    error = refusal_of(replace_at(payload, (field,), value))

    assert blames(error, field)


@PROPERTY
@given(strings_except(["thread.run"]))
def test_an_object_type_other_than_thread_run_is_refused(object_type: str) -> None:
    error = refusal_of(replace_at(documented_run(), ("object",), object_type))

    assert blames(error, "object")


@PROPERTY
@given(strings_except(STATUSES))
def test_an_unknown_status_is_refused(status: str) -> None:
    error = refusal_of(replace_at(documented_run(), ("status",), status))

    assert blames(error, "status")


@PROPERTY
@given(st.sampled_from(("max_prompt_tokens", "max_completion_tokens")), st.integers(max_value=255))
def test_a_token_limit_below_256_is_refused(field: str, limit: int) -> None:
    error = refusal_of(replace_at(documented_run(), (field,), limit))

    assert blames(error, field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("created_at", "123"),
        ("created_at", 1698107661.0),
        ("parallel_tool_calls", 1),
        ("max_prompt_tokens", True),
    ],
)
def test_a_value_that_would_only_pass_by_coercion_is_refused(field: str, value: object) -> None:
    error = refusal_of(replace_at(documented_run(), (field,), value))

    assert blames(error, field)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_temperature_that_is_not_a_json_number_is_refused(value: float) -> None:
    error = refusal_of(replace_at(documented_run(), ("temperature",), value))

    assert blames(error, "temperature")


# --- refused: one nested object broken --------------------------------------------------------
# The rest of the run cannot rescue a broken part (the top-level properties show it on every valid run),
# so these vary the broken part inside the documented run, which keeps them fast.


@PROPERTY
@given(metadata_maps(min_size=17, max_size=20))
def test_metadata_with_more_than_16_pairs_is_refused(metadata: dict[str, str]) -> None:
    error = refusal_of(replace_at(documented_run(), ("metadata",), metadata))

    assert blames(error, "metadata")


@PROPERTY
@given(st.just("") | strings_longer_than(64))
def test_a_metadata_key_empty_or_longer_than_64_is_refused(key: str) -> None:
    error = refusal_of(replace_at(documented_run(), ("metadata",), {key: "v"}))

    assert blames(error, "metadata")


@PROPERTY
@given(strings_longer_than(512))
def test_a_metadata_value_longer_than_512_is_refused(value: str) -> None:
    error = refusal_of(replace_at(documented_run(), ("metadata",), {"k": value}))

    assert blames(error, "metadata", "k")


@PROPERTY
@given(json_values_except("string"))
def test_a_metadata_value_that_is_not_a_string_is_refused(value: object) -> None:
    error = refusal_of(replace_at(documented_run(), ("metadata",), {"k": value}))

    assert blames(error, "metadata", "k")


@PROPERTY
@given(tools(), st.integers(min_value=21, max_value=40))
def test_more_than_20_tools_are_refused(tool: JsonDict, count: int) -> None:
    error = refusal_of(replace_at(documented_run(), ("tools",), [tool] * count))

    assert blames(error, "tools")


@PROPERTY
@given(tools(), strings_except(TOOL_TYPES))
def test_a_tool_of_unknown_type_is_refused(tool: JsonDict, tool_type: str) -> None:
    error = refusal_of(with_tool(replace_at(tool, ("type",), tool_type)))

    assert blames(error, "tools", 0)


@PROPERTY
@given(function_tools())
def test_a_function_tool_without_its_function_is_refused(tool: JsonDict) -> None:
    error = refusal_of(with_tool(delete_at(tool, ("function",))))

    assert blames(error, "tools", 0)


@PROPERTY
@given(function_tools(), names_outside_the_prose_rule())
def test_a_function_name_is_passed_on_whatever_its_characters(tool: JsonDict, name: str) -> None:
    # The schema types the name as a string only; the backend's answer is passed on, not second-guessed.
    payload = with_tool(replace_at(tool, ("function", "name"), name))

    assert run_to_json(parse_run(payload)) == payload


@PROPERTY
@given(function_tools(), json_values_except("bool", "null"))
def test_a_function_strict_flag_that_is_not_a_bool_or_null_is_refused(tool: JsonDict, strict: object) -> None:
    error = refusal_of(with_tool(replace_at(tool, ("function", "strict"), strict)))

    assert blames(error, "tools", 0, "function", "function", "strict")


@PROPERTY
@given(
    st.sampled_from(
        [
            (function_tools(), ("function", "description")),
            (function_tools(), ("function", "parameters")),
            (file_search_tools(), ("file_search",)),
            (file_search_tools(), ("file_search", "max_num_results")),
            (file_search_tools(), ("file_search", "ranking_options")),
        ]
    ).flatmap(lambda case: st.tuples(case[0], st.just(case[1])))
)
def test_null_for_an_optional_tool_field_that_is_not_nullable_is_refused(
    case: tuple[JsonDict, tuple[str, ...]],
) -> None:
    tool, path = case

    error = refusal_of(with_tool(replace_at(tool, path, None)))

    assert blames(error, "tools", 0)


@PROPERTY
@given(file_search_tools(), st.integers(max_value=0) | st.integers(min_value=51))
def test_file_search_max_num_results_outside_1_to_50_is_refused(tool: JsonDict, count: int) -> None:
    error = refusal_of(with_tool(replace_at(tool, ("file_search", "max_num_results"), count)))

    assert blames(error, "tools", 0, "file_search", "file_search", "max_num_results")


@PROPERTY
@given(
    ranking_options(),
    st.floats(max_value=0, exclude_max=True) | st.floats(min_value=1, exclude_min=True, allow_infinity=False),
)
def test_a_ranking_score_threshold_outside_0_to_1_is_refused(options: JsonDict, threshold: float) -> None:
    error = refusal_of(with_ranking_options(replace_at(options, ("score_threshold",), threshold)))

    assert blames(error, "tools", 0, "file_search", "file_search", "ranking_options", "score_threshold")


@PROPERTY
@given(ranking_options(), strings_except(RANKERS))
def test_an_unknown_ranker_is_refused(options: JsonDict, ranker: str) -> None:
    error = refusal_of(with_ranking_options(replace_at(options, ("ranker",), ranker)))

    assert blames(error, "tools", 0, "file_search", "file_search", "ranking_options", "ranker")


@PROPERTY
@given(ranking_options())
def test_ranking_options_without_a_score_threshold_are_refused(options: JsonDict) -> None:
    error = refusal_of(with_ranking_options(delete_at(options, ("score_threshold",))))

    assert blames(error, "tools", 0, "file_search", "file_search", "ranking_options", "score_threshold")


@PROPERTY
@given(strings_except(TOOL_CHOICE_MODES))
def test_an_unknown_tool_choice_mode_is_refused(mode: str) -> None:
    error = refusal_of(replace_at(documented_run(), ("tool_choice",), mode))

    assert blames(error, "tool_choice")


@PROPERTY
@given(named_tool_choices(), strings_except(TOOL_TYPES))
def test_a_tool_choice_of_unknown_tool_type_is_refused(choice: JsonDict, tool_type: str) -> None:
    error = refusal_of(
        replace_at(documented_run(), ("tool_choice",), replace_at(choice, ("type",), tool_type))
    )

    assert blames(error, "tool_choice")


@PROPERTY
@given(named_tool_choices())
def test_a_tool_choice_of_type_function_without_function_is_passed_on(choice: JsonDict) -> None:
    # The schema requires only `type` in a named tool choice.
    unnamed = {key: value for key, value in choice.items() if key != "function"} | {"type": "function"}
    payload = replace_at(documented_run(), ("tool_choice",), unnamed)

    assert run_to_json(parse_run(payload)) == payload


@PROPERTY
@given(strings_except(RESPONSE_FORMAT_MODES))
def test_an_unknown_response_format_mode_is_refused(mode: str) -> None:
    error = refusal_of(replace_at(documented_run(), ("response_format",), mode))

    assert blames(error, "response_format")


@PROPERTY
@given(strings_except(RESPONSE_FORMAT_TYPES))
def test_a_response_format_of_unknown_type_is_refused(format_type: str) -> None:
    error = refusal_of(replace_at(documented_run(), ("response_format",), {"type": format_type}))

    assert blames(error, "response_format")


@PROPERTY
@given(json_schema_response_formats())
def test_a_json_schema_response_format_without_its_json_schema_is_refused(response_format: JsonDict) -> None:
    broken = delete_at(response_format, ("json_schema",))

    error = refusal_of(replace_at(documented_run(), ("response_format",), broken))

    assert blames(error, "response_format")


@PROPERTY
@given(json_schema_response_formats(), st.integers() | st.none() | st.lists(st.text(), max_size=2))
def test_a_json_schema_name_that_is_not_a_string_is_refused(response_format: JsonDict, name: object) -> None:
    broken = replace_at(response_format, ("json_schema", "name"), name)

    error = refusal_of(replace_at(documented_run(), ("response_format",), broken))

    assert blames(error, "response_format")


@PROPERTY
@given(truncation_strategies(), strings_except(TRUNCATION_TYPES))
def test_an_unknown_truncation_type_is_refused(strategy: JsonDict, kind: str) -> None:
    broken = replace_at(strategy, ("type",), kind)

    error = refusal_of(replace_at(documented_run(), ("truncation_strategy",), broken))

    assert blames(error, "truncation_strategy", "type")


@PROPERTY
@given(truncation_strategies(), st.integers(max_value=0))
def test_a_truncation_keeping_fewer_than_one_message_is_refused(strategy: JsonDict, count: int) -> None:
    broken = replace_at(strategy, ("last_messages",), count)

    error = refusal_of(replace_at(documented_run(), ("truncation_strategy",), broken))

    assert blames(error, "truncation_strategy", "last_messages")


@PROPERTY
@given(usages(), st.sampled_from(TOKEN_COUNTS), st.floats(allow_nan=False) | st.text(max_size=3))
def test_a_token_count_that_is_not_an_integer_is_refused(usage: JsonDict, field: str, count: object) -> None:
    error = refusal_of(replace_at(documented_run(), ("usage",), replace_at(usage, (field,), count)))

    assert blames(error, "usage", field)


@PROPERTY
@given(usages(), st.sampled_from(TOKEN_COUNTS))
def test_usage_missing_a_token_count_is_refused(usage: JsonDict, field: str) -> None:
    error = refusal_of(replace_at(documented_run(), ("usage",), delete_at(usage, (field,))))

    assert blames(error, "usage", field)


@PROPERTY
@given(required_actions(), strings_except(["submit_tool_outputs"]))
def test_a_required_action_of_unknown_type_is_refused(action: JsonDict, kind: str) -> None:
    error = refusal_of(
        replace_at(documented_run(), ("required_action",), replace_at(action, ("type",), kind))
    )

    assert blames(error, "required_action", "type")


@PROPERTY
@given(required_tool_calls(), strings_except(["function"]))
def test_a_required_tool_call_that_is_not_a_function_call_is_refused(call: JsonDict, kind: str) -> None:
    tool_calls = [replace_at(call, ("type",), kind)]
    action = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": tool_calls}}

    error = refusal_of(replace_at(documented_run(), ("required_action",), action))

    assert blames(error, "required_action", "submit_tool_outputs", "tool_calls", 0, "type")


@PROPERTY
@given(last_errors(), strings_except(ERROR_CODES))
def test_an_unknown_error_code_is_refused(last_error: JsonDict, code: str) -> None:
    error = refusal_of(replace_at(documented_run(), ("last_error",), replace_at(last_error, ("code",), code)))

    assert blames(error, "last_error", "code")


@PROPERTY
@given(strings_except(INCOMPLETE_REASONS))
def test_an_unknown_incomplete_reason_is_refused(reason: str) -> None:
    error = refusal_of(replace_at(documented_run(), ("incomplete_details",), {"reason": reason}))

    assert blames(error, "incomplete_details", "reason")
