"""The layer's build: SAM runs its Makefile, which bundles the pinned wheels for arm64 and no boto3."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.template.cfn import ROOT, Deployment

LAYER = ROOT / "layers" / "run_tagger"
# What the Lambda python3.13 runtime carries, so the layer must not.
RUNTIME_PACKAGES = {"boto3", "botocore", "s3transfer"}
LAMBDA_ARM64 = {"platform_machine": "aarch64", "sys_platform": "linux", "platform_system": "Linux"}


def test_given_the_layer_when_sam_builds_it_then_its_own_makefile_builds_for_arm64() -> None:
    template = Deployment().template

    layer = template["Resources"]["RunTaggerLayer"]

    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["ContentUri"] == "layers/run_tagger"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_given_the_layer_makefile_when_run_then_it_installs_the_pinned_aarch64_wheels_without_deps(
    tmp_path: Path,
) -> None:
    # SAM runs the target from a scratch copy of the layer with ARTIFACTS_DIR set.
    command = [str(shutil.which("make")), "-n", "-f", str(LAYER / "Makefile"), "build-RunTaggerLayer"]
    dry_run = subprocess.run(  # noqa: S603 - a fixed command
        [*command, f"ARTIFACTS_DIR={tmp_path}", "PYTHON=python3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")

    (pip,) = [shlex.split(line) for line in dry_run.splitlines() if " pip install " in line]
    assert {"--no-deps", "--only-binary=:all:"} <= set(pip)
    assert pip[pip.index("--platform") + 1] == "manylinux2014_aarch64"
    assert pip[pip.index("--implementation") + 1] == "cp"
    assert pip[pip.index("--python-version") + 1] == "3.13"
    assert pip[pip.index("--target") + 1] == f"{tmp_path}/python"
    assert pip[pip.index("-r") + 1] == str(LAYER / "requirements.txt")
    assert re.search(r"--exclude=__pycache__ -cf - run_tagger \| tar -C \S*/python", dry_run)


def layer_requirements() -> list[Requirement]:
    lines = (LAYER / "requirements.txt").read_text().splitlines()
    return [Requirement(line) for line in (raw.split("#")[0].strip() for raw in lines) if line]


def test_given_the_layer_requirements_when_installed_with_no_deps_then_they_are_complete_without_boto() -> (
    None
):
    pinned = {canonicalize_name(requirement.name): requirement for requirement in layer_requirements()}

    assert not RUNTIME_PACKAGES & set(pinned)
    assert all(str(requirement.specifier).startswith("==") for requirement in pinned.values())
    for name in pinned:
        try:
            needed = [Requirement(text) for text in requires(name) or []]
        except PackageNotFoundError:  # pragma: no cover - the dev venv installs the layer's requirements
            pytest.fail(f"{name} is not installed in the dev venv; run make venv")
        for dependency in needed:
            if dependency.marker and not dependency.marker.evaluate({"extra": "", **LAMBDA_ARM64}):
                continue
            dependency_name = canonicalize_name(dependency.name)
            if dependency_name in RUNTIME_PACKAGES:
                # Only aws-xray-sdk may want botocore: installed with --no-deps, it uses the runtime's.
                assert name == "aws-xray-sdk", f"{name} pulls {dependency_name} into the layer"
            else:
                assert dependency_name in pinned, f"{name} needs {dependency_name}, which is not pinned"
