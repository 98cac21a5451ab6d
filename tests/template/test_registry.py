"""The schema registry in template.yaml carries the events' schemas, generated from the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator
from run_tagger.schemas import registry_schemas

from tests.template.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return dict(load_template()["Resources"])


@pytest.mark.parametrize(
    ("resource", "name"), [("RunTaggedSchema", "RunTagged"), ("RunTagFailedSchema", "RunTagFailed")]
)
def test_the_registry_schema_is_the_one_generated_from_the_models(
    resources: dict[str, Any], resource: str, name: str
) -> None:
    # Given the schema the models give now, and the one in the template
    content = resources[resource]["Properties"]["Content"]
    # Then they are the same (run `make schemas` after changing a model)
    assert content == registry_schemas()[name], "template.yaml's schema drifted: run `make schemas`"


@pytest.mark.parametrize(
    ("resource", "sample"),
    [("RunTaggedSchema", "run-tagged.json"), ("RunTagFailedSchema", "run-tag-failed.json")],
)
def test_the_registry_schema_is_draft_4_and_accepts_the_sample_event(
    resources: dict[str, Any], resource: str, sample: str
) -> None:
    properties = resources[resource]["Properties"]
    schema = json.loads(properties["Content"])

    Draft4Validator.check_schema(schema)
    assert properties["Type"] == "JSONSchemaDraft4"
    event = json.loads((ROOT / "events" / sample).read_text())
    assert list(Draft4Validator(schema).iter_errors(event)) == []


def test_the_schemas_live_in_the_stacks_own_registry(resources: dict[str, Any]) -> None:
    assert resources["EventSchemaRegistry"]["Type"] == "AWS::EventSchemas::Registry"
    for name in ("RunTaggedSchema", "RunTagFailedSchema"):
        assert resources[name]["Properties"]["RegistryName"] == {
            "Fn::GetAtt": ["EventSchemaRegistry", "RegistryName"]
        }


@pytest.mark.parametrize("name", ["RunTagged", "RunTagFailed"])
def test_every_reference_in_a_registry_schema_names_one_of_its_definitions(name: str) -> None:
    # Given a registry schema (draft 4 keeps its definitions under `definitions`)
    schema = json.loads(registry_schemas()[name])
    # When every reference in it is gathered, a discriminator's mapping included
    references = set(_references(schema))
    # Then each names a definition the schema has: none dangles (no `#/$defs/...` left)
    assert references
    assert references <= {f"#/definitions/{definition}" for definition in schema["definitions"]}


def _references(node: Any) -> list[str]:
    if isinstance(node, list):
        return [ref for item in node for ref in _references(item)]
    if not isinstance(node, dict):
        return []
    found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
    mapping = (
        node.get("discriminator", {}).get("mapping", {})
        if isinstance(node.get("discriminator"), dict)
        else {}
    )
    found += list(mapping.values())
    return found + [ref for value in node.values() for ref in _references(value)]
