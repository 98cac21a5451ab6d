"""Figure 6: the unzipped size of the layer `sam build` made, read from `.aws-sam/build/` (not built here)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILT_LAYER = ROOT / ".aws-sam" / "build" / "RunTaggerLayer"
SOURCE_PACKAGE = ROOT / "layers" / "run_tagger" / "run_tagger"
MB = 1024 * 1024  # as Lambda counts its 250 MB limit


@dataclass(frozen=True)
class LayerSize:
    total_bytes: int
    bytecode_bytes: int  # __pycache__, compiled at build time and zipped with the rest
    largest: list[tuple[str, int]]  # top-level entries of python/, largest first
    stale_modules: list[str]  # run_tagger modules missing from the build or different from the source

    @property
    def total_mb(self) -> float:
        return self.total_bytes / MB


def measure(layer_dir: Path = BUILT_LAYER) -> LayerSize | None:
    """None when the layer was not built."""
    if not layer_dir.is_dir():
        return None
    total = bytecode = 0
    per_entry: dict[str, int] = {}
    for path in layer_dir.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        size = path.stat().st_size
        total += size
        bytecode += size if "__pycache__" in path.parts else 0
        relative = path.relative_to(layer_dir).parts
        entry = relative[1] if len(relative) > 2 and relative[0] == "python" else relative[0]
        per_entry[_distribution_name(entry)] = per_entry.get(_distribution_name(entry), 0) + size
    largest = sorted(per_entry.items(), key=lambda item: item[1], reverse=True)[:6]
    return LayerSize(total, bytecode, largest, _stale_modules(layer_dir / "python" / "run_tagger"))


def openai_installed_bytes() -> int | None:
    """The size of openai-python's own installed files (its dependencies not included)."""
    try:
        files = metadata.distribution("openai").files or []
    except metadata.PackageNotFoundError:
        return None
    return sum(path.stat().st_size for file in files if (path := Path(str(file.locate()))).is_file())


def _distribution_name(entry: str) -> str:
    # "pydantic-2.14.3.dist-info" counts with "pydantic".
    return entry.split("-", maxsplit=1)[0] if entry.endswith(".dist-info") else entry


def _stale_modules(built_package: Path) -> list[str]:
    stale = []
    for source in sorted(SOURCE_PACKAGE.glob("*.py")):
        built = built_package / source.name
        if not built.is_file():
            stale.append(f"{source.name} missing")
        elif built.read_bytes() != source.read_bytes():
            stale.append(f"{source.name} changed")
    return stale
