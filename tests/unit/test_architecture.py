"""The layering the folder tree draws, checked on the source itself.

Every ``import`` statement counts, wherever it stands (module level, inside a function, under
``TYPE_CHECKING``), so a cycle or a wrong-way dependency can't hide in a lazy import.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gate", "integrations", "bench")

#: Library packages a user imports; none of them may import tooling.
LIBRARY = (
    "gate",
    "integrations.openai_realtime",
    "integrations.livekit",
    "integrations.speakers",
    "integrations.pipecat",
)
#: Tooling: the simulator, traces and replay, the test kit, the demo, the bench, the CLIs.
TOOLING = (
    "integrations.openai_realtime.simulator",
    "integrations.openai_realtime.trace",
    "integrations.testing",
    "integrations.demo",
    "bench",
)
#: Command modules: each is a plugin of the console script (tooling by nature).
COMMAND_MODULES = (
    "integrations.speakers.cli",
    "integrations.speakers.scene",
    "integrations.speakers.voice",
)


def _modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


MODULES = dict(_modules())


def _imports(name: str, path: Path) -> set[str]:
    """Every project module that ``name`` imports (resolving ``from pkg import module``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            # the deepest project module the dotted name names
            parts = target.split(".")
            while parts and ".".join(parts) not in MODULES:
                parts.pop()
            if parts and ".".join(parts) != name:
                found.add(".".join(parts))
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _is_tooling(module: str) -> bool:
    return _under(module, TOOLING) or _under(module, COMMAND_MODULES)


def test_the_graph_is_not_empty() -> None:
    assert len(GRAPH) > 50
    assert "gate._ledger" in GRAPH["gate._playback_gate"]


def test_the_core_names_no_adapter_and_no_bench_not_even_by_string() -> None:
    pattern = re.compile(r"\b(integrations|bench)\.[a-z_]+")
    for name, path in MODULES.items():
        if not _under(name, ("gate",)):
            continue
        assert not {m for m in GRAPH[name] if not m.startswith("gate")}, name
        assert not pattern.search(path.read_text()), f"{path} names integrations/bench"


@pytest.mark.parametrize("library", LIBRARY)
def test_library_code_imports_no_tooling(library: str) -> None:
    for name, deps in GRAPH.items():
        if _under(name, (library,)) and not _is_tooling(name):
            wrong = sorted(d for d in deps if _is_tooling(d))
            assert not wrong, f"{name} (library) imports tooling: {wrong}"


def test_the_simulator_imports_nothing_of_the_tap() -> None:
    for name, deps in GRAPH.items():
        if _under(name, ("integrations.openai_realtime.simulator",)):
            wrong = sorted(
                d
                for d in deps
                if d.startswith("integrations.")
                and not _under(d, ("integrations.openai_realtime.simulator",))
            )
            assert not wrong, f"{name} imports {wrong}"


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components; any component of two or more is a cycle.

    A package's ``__init__`` re-exporting its own private modules is not a cycle unless one of
    those modules imports the package back, so the test runs on the real edges.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


#: Exceptions used only inside the simulator for control flow; they never reach a user.
INTERNAL_EXCEPTIONS = {"ConnectionGone", "ClientEventError"}


def _project_exceptions() -> dict[str, type[BaseException]]:
    import importlib

    found: dict[str, type[BaseException]] = {}
    for name in MODULES:
        if name.startswith("integrations.pipecat"):
            pytest.importorskip("pipecat")
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and not attr.startswith("_")
                and attr not in INTERNAL_EXCEPTIONS
            ):
                found[attr] = value
    return found


def test_every_error_the_project_raises_is_in_one_tree() -> None:
    import gate._errors
    from gate import GateError

    errors = _project_exceptions()
    assert {"GateError", "MalformedEventError", "TraceError", "SpeakerError"} <= set(errors)
    outside = sorted(n for n, cls in errors.items() if not issubclass(cls, GateError))
    assert not outside, f"errors outside the GateError tree: {outside}"
    tree = gate._errors.__doc__ or ""
    undrawn = sorted(n for n in errors if n not in tree)
    assert not undrawn, f"errors missing from the tree in gate/_errors.py: {undrawn}"
