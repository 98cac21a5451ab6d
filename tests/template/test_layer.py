"""The layer's build: SAM runs its Makefile, which bundles the pinned wheels for arm64 and no boto3."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sysconfig
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.layer_contents import left_out_paths
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

    compiled, pure = [shlex.split(line) for line in dry_run.splitlines() if " pip install " in line]
    for pip in (compiled, pure):
        assert {"--no-deps", "--only-binary=:all:"} <= set(pip)
        assert pip[pip.index("--python-version") + 1] == "3.13"
        assert pip[pip.index("--target") + 1] == f"{tmp_path}/python"
    assert compiled[compiled.index("--platform") + 1] == "manylinux2014_aarch64"
    assert compiled[compiled.index("--implementation") + 1] == "cp"
    assert compiled[compiled.index("-r") + 1] == str(LAYER / "requirements.txt")
    assert pure[pure.index("--platform") + 1] == "any"
    assert pure[pure.index("--abi") + 1] == "none"
    assert pure[pure.index("-r") + 1] == str(LAYER / "requirements-pure.txt")
    assert re.search(r"--exclude=__pycache__ -cf - run_tagger \| tar -C \S*/python", dry_run)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_given_paths_never_used_when_the_layer_builds_then_they_are_removed(tmp_path: Path) -> None:
    python = tmp_path / "python"
    for path in left_out_paths():
        (python / path).parent.mkdir(parents=True, exist_ok=True)
        (python / path).write_text("")
    kept = python / "aws_lambda_powertools" / "utilities" / "batch" / "__init__.py"
    kept.parent.mkdir(parents=True)
    kept.write_text("")
    commands = subprocess.run(  # noqa: S603 - a fixed command
        [str(shutil.which("make")), "-n", "-f", str(LAYER / "Makefile"), "build-RunTaggerLayer"],
        env={"PATH": os.environ["PATH"], "ARTIFACTS_DIR": str(tmp_path), "PYTHON": "python3"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    (removal,) = [line for line in commands if "unused.txt" in line]

    subprocess.run(removal, shell=True, check=True)  # noqa: S602 - the Makefile's own line

    assert [path for path in left_out_paths() if (python / path).exists()] == []
    assert kept.exists()


def test_given_the_paths_the_layer_leaves_out_then_each_exists_in_the_pinned_packages() -> None:
    # A package that moves a module would otherwise make a line of unused.txt silently remove nothing.
    site_packages = Path(sysconfig.get_paths()["purelib"])

    assert all(not path.startswith("/") and ".." not in path.split("/") for path in left_out_paths())
    assert [path for path in left_out_paths() if not (site_packages / path).exists()] == []


def layer_requirements() -> list[Requirement]:
    lines = [
        *(LAYER / "requirements.txt").read_text().splitlines(),
        *(LAYER / "requirements-pure.txt").read_text().splitlines(),
    ]
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
