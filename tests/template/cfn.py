"""template.yaml as CloudFormation would read it for one set of parameter values.

Parameters take their defaults unless given; pseudo parameters are fixed; a resource resolves to a
placeholder (`Ref X` to "{X}", `GetAtt X.Arn` to "{X.Arn}"), so a test can see which resource a value names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

PSEUDO_PARAMETERS = {
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::StackName": "run-tagger",
    "AWS::URLSuffix": "amazonaws.com",
}
NO_VALUE = object()  # AWS::NoValue: the property or list item is left out
SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


@cache
def load_template() -> dict[str, Any]:
    """The template as written, intrinsic functions in their long form (`{"Ref": ...}`)."""
    from cfnlint.decode import cfn_yaml  # type: ignore[import-untyped]

    return cast(dict[str, Any], cfn_yaml.load(str(TEMPLATE)))


class Deployment:
    """The template deployed with `parameters` (the others at their defaults)."""

    def __init__(self, **parameters: str) -> None:
        self.template = load_template()
        declared = self.template["Parameters"]
        unknown = set(parameters) - set(declared)
        if unknown:
            raise KeyError(f"not parameters of the template: {sorted(unknown)}")
        defaults = {name: str(spec.get("Default", "")) for name, spec in declared.items()}
        self.parameters = defaults | parameters

    def condition(self, name: str) -> bool:
        return self._truth(self.template["Conditions"][name])

    def exists(self, logical_id: str) -> bool:
        condition = self.template["Resources"][logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def properties(self, logical_id: str) -> dict[str, Any]:
        """A resource's properties, resolved; KeyError when the resource is not created."""
        if not self.exists(logical_id):
            raise KeyError(f"{logical_id} is not created with these parameters")
        return cast(
            dict[str, Any], self.resolve(self.template["Resources"][logical_id].get("Properties", {}))
        )

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """The created resources of one type, by logical id, with resolved properties."""
        return {
            logical_id: self.properties(logical_id)
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == resource_type and self.exists(logical_id)
        }

    def broken_rules(self) -> set[str]:
        """Names of the template's Rules whose assertions these parameters fail."""
        broken = set()
        for name, rule in self.template.get("Rules", {}).items():
            applies = "RuleCondition" not in rule or self._truth(rule["RuleCondition"])
            if applies and not all(self._truth(item["Assert"]) for item in rule["Assertions"]):
                broken.add(name)
        return broken

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                ((function, argument),) = value.items()
                resolver = _FUNCTIONS.get(function)
                if resolver is not None:
                    return resolver(self, argument)
            return {key: item for key, raw in value.items() if (item := self.resolve(raw)) is not NO_VALUE}
        if isinstance(value, list):
            return [item for raw in value if (item := self.resolve(raw)) is not NO_VALUE]
        return value

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.template["Resources"]:
            return "{" + name + "}"
        raise KeyError(f"Ref to an unknown name: {name}")

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {name: self.resolve(raw) for name, raw in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return str(values[name])
            if "." in name and name.split(".", 1)[0] in self.template["Resources"]:
                return "{" + name + "}"
            return str(self._ref(name))

        return SUB_VARIABLE.sub(substitute, text)

    def _truth(self, expression: Any) -> bool:
        ((function, argument),) = expression.items()
        if function == "Condition":
            return self.condition(argument)
        if function == "Fn::Not":
            return not self._truth(argument[0])
        if function == "Fn::And":
            return all(self._truth(item) for item in argument)
        if function == "Fn::Or":
            return any(self._truth(item) for item in argument)
        if function == "Fn::Equals":
            left, right = (str(self.resolve(item)) for item in argument)
            return left == right
        if function == "Fn::Contains":
            options, candidate = self.resolve(argument)
            return str(candidate) in {str(option) for option in options}
        raise ValueError(f"not a condition function: {function}")


def _get_att(deployment: Deployment, argument: Any) -> str:
    target = argument if isinstance(argument, list) else str(argument).split(".", 1)
    return "{" + ".".join(str(part) for part in target) + "}"


def _if(deployment: Deployment, argument: Any) -> Any:
    condition, when_true, when_false = argument
    return deployment.resolve(when_true if deployment.condition(condition) else when_false)


def _select(deployment: Deployment, argument: Any) -> Any:
    index, items = argument
    return deployment.resolve(items)[int(deployment.resolve(index))]


def _split(deployment: Deployment, argument: Any) -> list[str]:
    separator, text = argument
    return str(deployment.resolve(text)).split(separator)


def _find_in_map(deployment: Deployment, argument: Any) -> Any:
    mapping, first, second = (str(deployment.resolve(item)) for item in argument)
    return deployment.template["Mappings"][mapping][first][second]


_FUNCTIONS: dict[str, Callable[[Deployment, Any], Any]] = {
    "Ref": Deployment._ref,
    "Fn::Sub": Deployment._sub,
    "Fn::GetAtt": _get_att,
    "Fn::If": _if,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::FindInMap": _find_in_map,
}
