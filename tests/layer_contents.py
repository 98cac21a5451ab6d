"""pytest plugin (`-p tests.layer_contents`): what the built layer leaves out cannot be imported.

The layer's Makefile removes the paths listed in layers/run_tagger/unused.txt. pyproject.toml loads this
plugin for every test run, so a code path that needs one of them fails there instead of in Lambda.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

import pytest

UNUSED = Path(__file__).resolve().parents[1] / "layers" / "run_tagger" / "unused.txt"


def left_out_paths() -> list[str]:
    """The paths (under the layer's python/) the build removes."""
    # As the Makefile reads it: a line that starts with something other than "#" or a space is a path.
    return [line.strip() for line in UNUSED.read_text().splitlines() if line[:1] not in ("", "#", " ", "\t")]


def left_out_modules() -> frozenset[str]:
    """The importable names among those paths: `pydantic/mypy.py` is `pydantic.mypy`; a C source is none."""
    names = (path.removesuffix(".py").split("/") for path in left_out_paths())
    return frozenset(".".join(parts) for parts in names if all(part.isidentifier() for part in parts))


def is_left_out(name: str, modules: frozenset[str]) -> bool:
    return any(name == module or name.startswith(f"{module}.") for module in modules)


class LeftOut(MetaPathFinder):
    """Answers an import of a left-out module as the layer would: no such module."""

    def __init__(self, modules: frozenset[str]) -> None:
        self.modules = modules

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if is_left_out(fullname, self.modules):
            raise ModuleNotFoundError(f"No module named {fullname!r} (left out of the layer)", name=fullname)
        return None


def pytest_configure(config: pytest.Config) -> None:
    modules = left_out_modules()
    loaded = sorted(name for name in sys.modules if is_left_out(name, modules))
    if loaded:
        raise pytest.UsageError(f"already imported before the layer's contents were enforced: {loaded}")
    sys.meta_path.insert(0, LeftOut(modules))
