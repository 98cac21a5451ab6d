"""JSON Schemas of the request and of the two events, generated from the models (DESIGN §1.4).

`python -m run_tagger.schemas DIR` writes them; a test fails when the files in events/schemas/ drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from run_tagger.publisher import RUN_TAG_FAILED, RUN_TAGGED
from run_tagger.request import TagRunRequest
from run_tagger.run import Run


class RequestDetail(BaseModel):
    """The request as events carry it: every field present, optional ones null when not given."""

    model_config = ConfigDict(extra="forbid", title="TagRunRequestDetail")

    thread_id: str
    run_id: str
    metadata: dict[str, str]
    request_id: str | None
    tenant: str | None


class RunTaggedDetail(BaseModel):
    model_config = ConfigDict(extra="forbid", title="RunTaggedDetail")

    run: Run
    request: RequestDetail
    truncated: Annotated[
        list[str],
        Field(description="Paths of fields emptied to fit EventBridge's size limit, e.g. run.instructions"),
    ]


# The codes of DESIGN §2's permanent failures: what a Run Tag Failed event and a dead letter carry.
PermanentErrorCode = Literal[
    "invalid_request",
    "invalid_configuration",
    "run_not_found",
    "portkey_rejected",
    "unauthorized",
    "invalid_response",
]

# The codes of DESIGN §2's transient failures: a dead letter carries one when its last delivery failed.
TransientErrorCode = Literal[
    "portkey_unavailable",
    "keys_unavailable",
    "publish_failed",
    "deadline_exceeded",
    "held_back",
    "duplicate_in_progress",
    "idempotency_unavailable",
    "transient_error",
]


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid", title="ErrorDetail")

    code: PermanentErrorCode
    message: str
    status: int | None
    retryable: bool


class RunTagFailedDetail(BaseModel):
    model_config = ConfigDict(extra="forbid", title="RunTagFailedDetail")

    request: RequestDetail | None
    error: ErrorDetail
    message_id: Annotated[str, Field(description="The SQS messageId of the failed message")]


def _event_schema(title: str, detail_type: str, detail: type[BaseModel]) -> dict[str, Any]:
    """An EventBridge event whose `detail` follows the model."""
    detail_schema = detail.model_json_schema(ref_template="#/$defs/{model}")
    defs = detail_schema.pop("$defs", {})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "description": f"The '{detail_type}' event run-tagger publishes to EventBridge.",
        "type": "object",
        "required": ["detail-type", "source", "detail"],
        "properties": {
            "version": {"type": "string"},
            "id": {"type": "string"},
            "detail-type": {"const": detail_type},
            "source": {"type": "string"},
            "account": {"type": "string"},
            "time": {"type": "string"},
            "region": {"type": "string"},
            "resources": {"type": "array", "items": {"type": "string"}},
            "detail": detail_schema,
        },
        "$defs": defs,
    }


def all_schemas() -> dict[str, dict[str, Any]]:
    """File name → schema, for events/schemas/."""
    request = TagRunRequest.model_json_schema()
    request["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    request["title"] = "TagRunRequest"
    return {
        "tag-run-request.json": request,
        "run-tagged.json": _event_schema("RunTagged", RUN_TAGGED, RunTaggedDetail),
        "run-tag-failed.json": _event_schema("RunTagFailed", RUN_TAG_FAILED, RunTagFailedDetail),
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def to_draft4(schema: Any) -> Any:
    """The same schema in JSON Schema draft 4, the dialect EventBridge's schema registry reads.

    `$defs` become `definitions` (and every reference to them follows, a discriminator's mapping too),
    `const` a one-value `enum`; `propertyNames` (draft 6) is dropped,
    which only loosens the check of metadata keys' length.
    """
    if isinstance(schema, list):
        return [to_draft4(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$schema":
            converted[key] = "http://json-schema.org/draft-04/schema#"
        elif key == "$defs":
            converted["definitions"] = to_draft4(value)
        elif key == "$ref" and isinstance(value, str):
            converted[key] = value.replace("#/$defs/", "#/definitions/")
        elif key == "discriminator" and isinstance(value, dict):
            # OpenAPI's hint beside a oneOf: its mapping names definitions by reference too.
            converted[key] = {
                name: {tag: ref.replace("#/$defs/", "#/definitions/") for tag, ref in part.items()}
                if name == "mapping" and isinstance(part, dict)
                else part
                for name, part in value.items()
            }
        elif key == "const":
            converted["enum"] = [value]
        elif key != "propertyNames":
            converted[key] = to_draft4(value)
    return converted


def registry_schemas() -> dict[str, str]:
    """Schema name in the registry → draft-4 content (compact JSON), for template.yaml."""
    schemas = all_schemas()
    return {
        "RunTagged": json.dumps(to_draft4(schemas["run-tagged.json"]), separators=(",", ":")),
        "RunTagFailed": json.dumps(to_draft4(schemas["run-tag-failed.json"]), separators=(",", ":")),
    }


def sync_template(template: Path) -> bool:
    """Rewrite each `# schema:NAME` line's Content in template.yaml; True when something changed."""
    lines = template.read_text(encoding="utf-8").splitlines(keepends=True)
    contents = registry_schemas()
    changed = False
    for number, line in enumerate(lines):
        marker = line.strip()
        if marker.startswith("# schema:") and number + 1 < len(lines):
            name = marker.removeprefix("# schema:")
            indent = line[: len(line) - len(line.lstrip())]
            # A JSON string literal is a valid YAML double-quoted scalar.
            replacement = f"{indent}Content: {json.dumps(contents[name], ensure_ascii=False)}\n"
            if lines[number + 1] != replacement:
                lines[number + 1] = replacement
                changed = True
    if changed:
        template.write_text("".join(lines), encoding="utf-8")
    return changed


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m run_tagger.schemas",
        description="Write the request's and the events' JSON Schemas, generated from the models.",
    )
    parser.add_argument(
        "directory", nargs="?", default="events/schemas", type=Path, help="where (default: %(default)s)"
    )
    parser.add_argument(
        "template", nargs="?", type=Path, help="also bring this template's schema registry up to date"
    )
    args = parser.parse_args(argv)
    if args.template is not None and not args.template.is_file():
        parser.error(f"template {str(args.template)!r} is not a file")
    args.directory.mkdir(parents=True, exist_ok=True)
    for name, schema in all_schemas().items():
        (args.directory / name).write_text(render(schema), encoding="utf-8")
    if args.template is not None:
        sync_template(args.template)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
