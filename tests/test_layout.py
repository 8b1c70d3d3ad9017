"""The package's shape: the pinned public API, what importing it costs, and the rules that keep
the library a library (no import cycles; argparse and rich only in the command line)."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from pathlib import Path

import vidstream

PACKAGE = Path(vidstream.__file__).parent

# Every public name, pinned: adding or removing one is a decision, made here on purpose.
PUBLIC = [
    "DEFAULTS",
    "Annotator",
    "ArraySource",
    "BenchConfig",
    "BenchOptions",
    "BenchResult",
    "Cancelled",
    "Channel",
    "ClassCounter",
    "ConfigError",
    "CorruptInputError",
    "CostEstimate",
    "Detection",
    "Detections",
    "DetectionsWriter",
    "Detector",
    "EIPredictor",
    "EmptyInputError",
    "Frame",
    "FrameTooLargeError",
    "FunctionSink",
    "FunctionStage",
    "InputError",
    "InputNotFoundError",
    "ModelError",
    "ModelNotFoundError",
    "ModelPullError",
    "NoVideoStreamError",
    "OutputError",
    "Pipeline",
    "Predictor",
    "Price",
    "Recommendation",
    "Run",
    "RunConfig",
    "Settings",
    "ShutdownTimeout",
    "Sink",
    "Source",
    "SourceError",
    "Stage",
    "StageError",
    "StageStats",
    "StallError",
    "StreamInfo",
    "StreamReport",
    "Summary",
    "TensorNameError",
    "VideoSource",
    "VideoWriter",
    "VidstreamError",
    "__version__",
    "box_iou",
    "build_pipeline",
    "load_catalog",
    "load_pipeline_file",
    "load_runs",
    "recommend",
    "run_bench",
    "usd_per_100k_inferences",
]


def test_the_public_api_is_pinned():
    assert vidstream.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(vidstream, name) is not None, name


def _imported_by(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_vidstream_loads_neither_tensorflow_nor_the_tools():
    loaded = _imported_by("import vidstream")
    for heavy in ("tensorflow", "vidstream.bench", "vidstream.cli", "argparse", "rich",
                  "matplotlib"):
        assert heavy not in loaded, heavy
    # the bench and report parts load when first used
    assert "vidstream.bench" in _imported_by("import vidstream; vidstream.run_bench")
    assert "vidstream.bench.report" in _imported_by("import vidstream; vidstream.load_runs")


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        mods[".".join(parts)] = path
    return mods


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the package that ``name`` imports, also lazily inside functions."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found.update(c for c in candidates if c in known and c != name)
    return found


def test_no_import_cycles_in_the_package():
    mods = _modules()
    known = set(mods)
    # importing the package's face (``from vidstream import X`` or ``from . import models``
    # of a package) is not a tie of the design
    edges = {m: {t for t in _imports(m, p, known) if t != "vidstream"} for m, p in mods.items()}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        for nxt in edges[node]:
            if nxt in stack:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in seen:
                seen.add(nxt)
                visit(nxt, [*stack, nxt])

    seen: set[str] = set()
    for m in sorted(mods):
        if m not in seen:
            seen.add(m)
            visit(m, [m])
    # a package importing its own submodules (its face) is no cycle
    real = [c for c in cycles if not all(a.startswith(b + ".") or b.startswith(a + ".")
                                         for a, b in itertools.pairwise(c))]
    assert not real, "import cycles: " + "; ".join(" -> ".join(c) for c in real)


def test_only_the_command_line_uses_argparse_and_rich():
    for name, path in _modules().items():
        if name.startswith("vidstream.cli") or name == "vidstream.__main__":
            continue  # the command line, and ``python -m vidstream`` which starts it
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and
                     not node.level else [])
            for n in names:
                assert n.split(".")[0] not in ("argparse", "rich"), f"{name} imports {n}"
        assert "vidstream.cli" not in _imports(name, path, set(_modules())), name
