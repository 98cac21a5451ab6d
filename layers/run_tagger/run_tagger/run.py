"""The run object of the OpenAI Assistants v2 API, as Portkey's Modify run returns it (DESIGN §1.2).

The model is exact in both directions: `parse_run` refuses anything the OpenAPI `RunObject` schema
(and the rules its prose states) refuses, and `Run.to_json_dict` gives back the very JSON object that
was parsed. Three choices make that work:

- `strict=True`: a decoded JSON value is never coerced (`"123"` is not a timestamp, `1` is not a bool).
- `extra="allow"` on every object: fields the API adds over time (e.g. `tool_resources`) pass through.
- `MISSING` as the default of optional fields: an absent key stays absent, and `null` is only
  accepted where the spec says nullable. Required-but-nullable fields have no default at all.
"""

from typing import Annotated, Literal

from pydantic import MISSING, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

__all__ = [
    "CodeInterpreterTool",
    "FileSearchOptions",
    "FileSearchRankingOptions",
    "FileSearchTool",
    "FunctionDefinition",
    "FunctionTool",
    "IncompleteDetails",
    "JsonSchemaFormat",
    "LastError",
    "Metadata",
    "NamedToolChoice",
    "NamedToolChoiceFunction",
    "RequiredAction",
    "RequiredActionFunction",
    "RequiredActionToolCall",
    "ResponseFormat",
    "ResponseFormatJsonObject",
    "ResponseFormatJsonSchema",
    "ResponseFormatText",
    "Run",
    "RunStatus",
    "SubmitToolOutputs",
    "Tool",
    "ToolChoice",
    "TruncationStrategy",
    "Usage",
    "parse_run",
    "run_to_json",
]

# JSON Schema objects (function parameters, a response format's schema) are opaque to us: kept as given.
JsonObject = dict[str, object]

# A JSON "number": int or float is kept as it came, so that `1` is not re-emitted as `1.0`.
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]
UnitInterval = Annotated[
    Annotated[int, Field(ge=0, le=1)] | Annotated[float, Field(ge=0, le=1)],
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1}),
]
UnixTime = int
TokenCount = int  # the schema says integer; counts are reported, not checked
TokenLimit = Annotated[int, Field(ge=256)]

# Function and response-format names: the spec's prose asks for [A-Za-z0-9_-]{1,64}, but its schema
# says only "string". What a backend returns is passed on, not second-guessed.
Name = str

MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=512)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=16)]

RunStatus = Literal[
    "queued",
    "in_progress",
    "requires_action",
    "cancelling",
    "cancelled",
    "failed",
    "completed",
    "incomplete",
    "expired",
]


class _ApiObject(BaseModel):
    model_config = ConfigDict(
        strict=True,
        extra="allow",
        allow_inf_nan=False,  # NaN and Infinity are not JSON, even though json.loads lets them in
        serialize_by_alias=True,
    )


class CodeInterpreterTool(_ApiObject):
    type: Literal["code_interpreter"]


class FileSearchRankingOptions(_ApiObject):
    score_threshold: UnitInterval
    ranker: Literal["auto", "default_2024_08_21"] | MISSING = MISSING


class FileSearchOptions(_ApiObject):
    max_num_results: Annotated[int, Field(ge=1, le=50)] | MISSING = MISSING
    ranking_options: FileSearchRankingOptions | MISSING = MISSING


class FileSearchTool(_ApiObject):
    type: Literal["file_search"]
    file_search: FileSearchOptions | MISSING = MISSING


class FunctionDefinition(_ApiObject):
    name: Name
    description: str | MISSING = MISSING
    parameters: JsonObject | MISSING = MISSING
    strict: bool | MISSING | None = MISSING


class FunctionTool(_ApiObject):
    type: Literal["function"]
    function: FunctionDefinition


Tool = Annotated[CodeInterpreterTool | FileSearchTool | FunctionTool, Field(discriminator="type")]


class NamedToolChoiceFunction(_ApiObject):
    name: str


class NamedToolChoice(_ApiObject):
    # The schema requires only `type`; forcing a function names it in `function`.
    type: Literal["function", "code_interpreter", "file_search"]
    function: NamedToolChoiceFunction | MISSING = MISSING


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class ResponseFormatText(_ApiObject):
    type: Literal["text"]


class ResponseFormatJsonObject(_ApiObject):
    type: Literal["json_object"]


class JsonSchemaFormat(_ApiObject):
    name: Name
    description: str | MISSING = MISSING
    # `schema` would shadow BaseModel.schema(); the JSON key is kept through the alias.
    schema_: JsonObject | MISSING = Field(default=MISSING, alias="schema")
    strict: bool | MISSING | None = MISSING


class ResponseFormatJsonSchema(_ApiObject):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = (
    Literal["auto", "none"]
    | Annotated[
        ResponseFormatText | ResponseFormatJsonObject | ResponseFormatJsonSchema,
        Field(discriminator="type"),
    ]
)


class TruncationStrategy(_ApiObject):
    type: Literal["auto", "last_messages"]
    last_messages: Annotated[int, Field(ge=1)] | MISSING | None = MISSING


class Usage(_ApiObject):
    completion_tokens: TokenCount
    prompt_tokens: TokenCount
    total_tokens: TokenCount


class RequiredActionFunction(_ApiObject):
    name: str
    arguments: str


class RequiredActionToolCall(_ApiObject):
    id: str
    type: Literal["function"]
    function: RequiredActionFunction


class SubmitToolOutputs(_ApiObject):
    tool_calls: list[RequiredActionToolCall]


class RequiredAction(_ApiObject):
    type: Literal["submit_tool_outputs"]
    submit_tool_outputs: SubmitToolOutputs


class LastError(_ApiObject):
    code: Literal["server_error", "rate_limit_exceeded", "invalid_prompt"]
    message: str


class IncompleteDetails(_ApiObject):
    reason: Literal["max_completion_tokens", "max_prompt_tokens"] | MISSING = MISSING


class Run(_ApiObject):
    """A run on a thread. Every field but `temperature` and `top_p` must be present, even when null."""

    id: str
    object: Literal["thread.run"]
    created_at: UnixTime
    thread_id: str
    assistant_id: str
    status: RunStatus
    required_action: RequiredAction | None
    last_error: LastError | None
    expires_at: UnixTime | None
    started_at: UnixTime | None
    cancelled_at: UnixTime | None
    failed_at: UnixTime | None
    completed_at: UnixTime | None
    model: str
    # Documented as a string, but real responses carry null.
    instructions: str | None
    tools: Annotated[list[Tool], Field(max_length=20)]
    metadata: Metadata | None
    usage: Usage | None
    incomplete_details: IncompleteDetails | None
    temperature: Number | MISSING | None = MISSING
    top_p: Number | MISSING | None = MISSING
    max_prompt_tokens: TokenLimit | None
    max_completion_tokens: TokenLimit | None
    truncation_strategy: TruncationStrategy | None
    tool_choice: ToolChoice | None
    parallel_tool_calls: bool
    response_format: ResponseFormat | None

    def to_json_dict(self) -> JsonObject:
        """The run as a JSON object: for a parsed payload, equal to that payload, key for key."""
        return self.model_dump(mode="json", by_alias=True)


def parse_run(payload: object) -> Run:
    """Validate a decoded JSON value as a run; raises `pydantic.ValidationError` on any violation."""
    return Run.model_validate(payload)


def run_to_json(run: Run) -> dict[str, object]:
    """The inverse of `parse_run`."""
    return run.to_json_dict()
