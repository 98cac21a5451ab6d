"""samconfig.toml: what `sam validate`, `sam build` and `sam deploy` read in each environment."""

from __future__ import annotations

import tomllib

from tests.template.cfn import ROOT


def test_given_samconfig_when_sam_runs_then_it_lints_and_deploys_with_iam_in_every_environment() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())

    assert config["version"] == 0.1
    assert config["default"]["global"]["parameters"]["stack_name"] == "run-tagger"
    stacks = set()
    for environment in ("default", "dev", "prod"):
        sections = config[environment]
        assert sections["validate"]["parameters"]["lint"] is True
        assert sections["build"]["parameters"] == {"cached": True, "parallel": True}
        deploy = sections["deploy"]["parameters"]
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        assert deploy["resolve_s3"] is True
        assert not any("region" in section.get("parameters", {}) for section in sections.values())
        stacks.add(sections["global"]["parameters"]["stack_name"])
    assert len(stacks) == 3
    assert config["default"]["deploy"]["parameters"]["confirm_changeset"] is True
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
