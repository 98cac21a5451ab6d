"""Hypothesis strategies for Assistants v2 run objects (DESIGN §1.2), and helpers that break them.

`spec_valid_runs()` draws decoded JSON objects, never models: what Portkey could send back. Every
object, top-level and nested, may carry fields the spec does not know, since the API adds them over time.
"""

import copy
from collections.abc import Iterable, Mapping, Sequence

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

JsonDict = dict[str, object]
Path = Sequence[str | int]

STATUSES = (
    "queued",
    "in_progress",
    "requires_action",
    "cancelling",
    "cancelled",
    "failed",
    "completed",
    "incomplete",
    "expired",
)
TOOL_CHOICE_MODES = ("none", "auto", "required")
RESPONSE_FORMAT_MODES = ("auto", "none")
TOOL_TYPES = ("code_interpreter", "file_search", "function")
RESPONSE_FORMAT_TYPES = ("text", "json_object", "json_schema")
RANKERS = ("auto", "default_2024_08_21")
TRUNCATION_TYPES = ("auto", "last_messages")
ERROR_CODES = ("server_error", "rate_limit_exceeded", "invalid_prompt")
INCOMPLETE_REASONS = ("max_completion_tokens", "max_prompt_tokens")

# The JSON kinds each top-level field may hold; a value of any other kind is a violation.
FIELD_KINDS: Mapping[str, frozenset[str]] = {
    "id": frozenset({"string"}),
    "object": frozenset({"string"}),
    "created_at": frozenset({"int"}),
    "thread_id": frozenset({"string"}),
    "assistant_id": frozenset({"string"}),
    "status": frozenset({"string"}),
    "required_action": frozenset({"object", "null"}),
    "last_error": frozenset({"object", "null"}),
    "expires_at": frozenset({"int", "null"}),
    "started_at": frozenset({"int", "null"}),
    "cancelled_at": frozenset({"int", "null"}),
    "failed_at": frozenset({"int", "null"}),
    "completed_at": frozenset({"int", "null"}),
    "model": frozenset({"string"}),
    "instructions": frozenset({"string", "null"}),
    "tools": frozenset({"array"}),
    "metadata": frozenset({"object", "null"}),
    "usage": frozenset({"object", "null"}),
    "incomplete_details": frozenset({"object", "null"}),
    "max_prompt_tokens": frozenset({"int", "null"}),
    "max_completion_tokens": frozenset({"int", "null"}),
    "truncation_strategy": frozenset({"object", "null"}),
    "tool_choice": frozenset({"string", "object", "null"}),
    "parallel_tool_calls": frozenset({"bool"}),
    "response_format": frozenset({"string", "object", "null"}),
    "temperature": frozenset({"int", "float", "null"}),
    "top_p": frozenset({"int", "float", "null"}),
}
OPTIONAL_FIELDS = ("temperature", "top_p")
REQUIRED_FIELDS = tuple(field for field in FIELD_KINDS if field not in OPTIONAL_FIELDS)
NON_NULLABLE_FIELDS = tuple(field for field, kinds in FIELD_KINDS.items() if "null" not in kinds)

JSON_KINDS = ("null", "bool", "int", "float", "string", "array", "object")
_NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
# Unknown fields seen in real responses, drawn beside arbitrary ones.
_REALISTIC_EXTRAS = ("tool_resources", "reasoning_effort", "service_tier", "x-portkey-trace-id")


# --- JSON values -------------------------------------------------------------------------------


def json_values() -> SearchStrategy[object]:
    """Any decoded JSON value (no NaN or infinity: they are not JSON)."""
    scalars = st.one_of(*(json_values_of_kind(kind) for kind in ("null", "bool", "int", "float", "string")))
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=6,
    )


def json_objects() -> SearchStrategy[JsonDict]:
    return st.dictionaries(st.text(max_size=8), json_values(), max_size=3)


def json_values_of_kind(kind: str) -> SearchStrategy[object]:
    match kind:
        case "null":
            return st.none()
        case "bool":
            return st.booleans()
        case "int":
            return st.integers()
        case "float":
            return st.floats(allow_nan=False, allow_infinity=False)
        case "string":
            return st.text(max_size=20)
        case "array":
            return st.lists(json_values(), max_size=3)
        case "object":
            return json_objects()
    raise ValueError(f"not a JSON kind: {kind}")


def json_values_except(*kinds: str) -> SearchStrategy[object]:
    """JSON values of every kind but `kinds` (bool is its own kind, not an int; 1.0 is a float)."""
    return st.sampled_from([kind for kind in JSON_KINDS if kind not in kinds]).flatmap(json_values_of_kind)


def extra_fields(known: Iterable[str]) -> SearchStrategy[JsonDict]:
    """Fields the spec does not define for an object whose defined fields are `known`."""
    taken = frozenset(known)
    keys = (st.sampled_from(_REALISTIC_EXTRAS) | st.text(max_size=12)).filter(lambda key: key not in taken)
    return st.dictionaries(keys, json_values(), max_size=2)


def _api_object(
    required: Mapping[str, SearchStrategy[object]],
    optional: Mapping[str, SearchStrategy[object]] | None = None,
) -> SearchStrategy[JsonDict]:
    """An object with its defined fields (optional ones present or absent) plus unknown ones."""
    optional = optional or {}
    defined = st.fixed_dictionaries(dict(required), optional=dict(optional))
    return st.builds(
        lambda fields, extras: {**extras, **fields}, defined, extra_fields([*required, *optional])
    )


# --- parts of a run ----------------------------------------------------------------------------


def names() -> SearchStrategy[str]:
    """Function and response-format names: `[A-Za-z0-9_-]{1,64}`."""
    return st.text(alphabet=_NAME_ALPHABET, min_size=1, max_size=64)


def numbers() -> SearchStrategy[object]:
    return st.integers(min_value=-2, max_value=2) | st.floats(allow_nan=False, allow_infinity=False)


def timestamps() -> SearchStrategy[int]:
    return st.integers(min_value=0, max_value=4_102_444_800)


def code_interpreter_tools() -> SearchStrategy[JsonDict]:
    return _api_object({"type": st.just("code_interpreter")})


def ranking_options() -> SearchStrategy[JsonDict]:
    threshold = st.integers(min_value=0, max_value=1) | st.floats(min_value=0, max_value=1)
    return _api_object({"score_threshold": threshold}, {"ranker": st.sampled_from(RANKERS)})


def file_search_tools() -> SearchStrategy[JsonDict]:
    options = _api_object(
        {},
        {"max_num_results": st.integers(min_value=1, max_value=50), "ranking_options": ranking_options()},
    )
    return _api_object({"type": st.just("file_search")}, {"file_search": options})


def function_definitions() -> SearchStrategy[JsonDict]:
    return _api_object(
        {"name": names()},
        {"description": st.text(), "parameters": json_objects(), "strict": st.none() | st.booleans()},
    )


def function_tools() -> SearchStrategy[JsonDict]:
    return _api_object({"type": st.just("function"), "function": function_definitions()})


def tools() -> SearchStrategy[JsonDict]:
    return code_interpreter_tools() | file_search_tools() | function_tools()


def named_tool_choices() -> SearchStrategy[JsonDict]:
    function = _api_object({"name": st.text()})
    return _api_object({"type": st.just("function"), "function": function}) | _api_object(
        {"type": st.sampled_from(("code_interpreter", "file_search"))}, {"function": function}
    )


def tool_choices() -> SearchStrategy[object]:
    return st.none() | st.sampled_from(TOOL_CHOICE_MODES) | named_tool_choices()


def json_schema_response_formats() -> SearchStrategy[JsonDict]:
    json_schema = _api_object(
        {"name": names()},
        {"description": st.text(), "schema": json_objects(), "strict": st.none() | st.booleans()},
    )
    return _api_object({"type": st.just("json_schema"), "json_schema": json_schema})


def response_formats() -> SearchStrategy[object]:
    return (
        st.none()
        | st.sampled_from(RESPONSE_FORMAT_MODES)
        | _api_object({"type": st.sampled_from(("text", "json_object"))})
        | json_schema_response_formats()
    )


def truncation_strategies() -> SearchStrategy[JsonDict]:
    return _api_object(
        {"type": st.sampled_from(TRUNCATION_TYPES)},
        {"last_messages": st.none() | st.integers(min_value=1)},
    )


def usages() -> SearchStrategy[JsonDict]:
    count = st.integers(min_value=0)
    return _api_object({"completion_tokens": count, "prompt_tokens": count, "total_tokens": count})


def required_tool_calls() -> SearchStrategy[JsonDict]:
    function = _api_object({"name": st.text(), "arguments": st.text()})
    return _api_object({"id": st.text(), "type": st.just("function"), "function": function})


def required_actions() -> SearchStrategy[JsonDict]:
    submit = _api_object({"tool_calls": st.lists(required_tool_calls(), max_size=3)})
    return _api_object({"type": st.just("submit_tool_outputs"), "submit_tool_outputs": submit})


def last_errors() -> SearchStrategy[JsonDict]:
    return _api_object({"code": st.sampled_from(ERROR_CODES), "message": st.text()})


def incomplete_details() -> SearchStrategy[JsonDict]:
    return _api_object({}, {"reason": st.sampled_from(INCOMPLETE_REASONS)})


def metadata_maps(min_size: int = 0, max_size: int = 16) -> SearchStrategy[dict[str, str]]:
    return st.dictionaries(
        st.text(min_size=1, max_size=64), st.text(max_size=512), min_size=min_size, max_size=max_size
    )


def spec_valid_runs() -> SearchStrategy[JsonDict]:
    """Every shape of run object the spec allows, as decoded JSON."""
    nullable_time = st.none() | timestamps()
    token_limit = st.none() | st.integers(min_value=256)
    return _api_object(
        {
            "id": st.text(),
            "object": st.just("thread.run"),
            "created_at": timestamps(),
            "thread_id": st.text(),
            "assistant_id": st.text(),
            "status": st.sampled_from(STATUSES),
            "required_action": st.none() | required_actions(),
            "last_error": st.none() | last_errors(),
            "expires_at": nullable_time,
            "started_at": nullable_time,
            "cancelled_at": nullable_time,
            "failed_at": nullable_time,
            "completed_at": nullable_time,
            "model": st.text(),
            "instructions": st.none() | st.text(),
            "tools": st.lists(tools(), max_size=20),
            "metadata": st.none() | metadata_maps(),
            "usage": st.none() | usages(),
            "incomplete_details": st.none() | incomplete_details(),
            "max_prompt_tokens": token_limit,
            "max_completion_tokens": token_limit,
            "truncation_strategy": st.none() | truncation_strategies(),
            "tool_choice": tool_choices(),
            "parallel_tool_calls": st.booleans(),
            "response_format": response_formats(),
        },
        {"temperature": st.none() | numbers(), "top_p": st.none() | numbers()},
    )


# --- breaking a valid document -----------------------------------------------------------------


def strings_except(allowed: Iterable[str]) -> SearchStrategy[str]:
    """Any string but `allowed`, near misses (`Queued`, `auto `) included."""
    taken = frozenset(allowed)
    near_misses = [variant for value in sorted(taken) for variant in (value.upper(), f"{value} ", value[:-1])]
    return (st.sampled_from(near_misses) | st.text(max_size=30)).filter(lambda text: text not in taken)


def strings_longer_than(limit: int) -> SearchStrategy[str]:
    # Repeating a short draw reaches any length cheaply, where drawing `limit` characters would not.
    return st.text(min_size=1, max_size=5).map(lambda text: text * (limit // len(text) + 1))


def replace_at(document: JsonDict, path: Path, value: object) -> JsonDict:
    """A copy of `document` with `value` at `path`; missing objects on the way are created empty."""
    result = copy.deepcopy(document)
    parent = _walk(result, path[:-1])
    _set(parent, path[-1], value)
    return result


def delete_at(document: JsonDict, path: Path) -> JsonDict:
    """A copy of `document` without the key at `path`."""
    result = copy.deepcopy(document)
    parent = _walk(result, path[:-1])
    if not isinstance(parent, dict):
        raise TypeError(f"no object at {list(path[:-1])}")
    del parent[path[-1]]
    return result


def _walk(node: object, path: Path) -> object:
    for key in path:
        if isinstance(node, dict):
            node = node.setdefault(key, {})
        elif isinstance(node, list) and isinstance(key, int):
            node = node[key]
        else:
            raise TypeError(f"cannot step into {type(node).__name__} with {key!r}")
    return node


def _set(node: object, key: str | int, value: object) -> None:
    if isinstance(node, dict):
        node[key] = value
        return
    if isinstance(node, list) and isinstance(key, int):
        node[key] = value
        return
    raise TypeError(f"cannot set {key!r} on {type(node).__name__}")
