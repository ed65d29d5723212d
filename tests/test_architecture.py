"""The import rules of docs/architecture.md: which room may import which.

Every import counts, at module level, inside a function or under ``TYPE_CHECKING``: a
deferred import is still a dependency a reader must know about.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURE = REPO / "docs" / "architecture.md"

# room -> the rooms it may import (docs/architecture.md's table, read below and compared).
MAY_IMPORT: dict[str, frozenset[str]] = {
    "config": frozenset(),
    "features": frozenset({"config"}),
    "fairness": frozenset({"config"}),
    "onnx_models": frozenset({"fairness", "features", "config"}),
    "training": frozenset({"onnx_models", "fairness", "features", "config"}),
    "stream": frozenset({"onnx_models", "fairness", "features", "config"}),
    "notices": frozenset({"stream", "onnx_models", "fairness", "features", "config"}),
    "ledger": frozenset({"notices", "stream", "onnx_models", "fairness", "features", "config"}),
    "review": frozenset({"ledger", "notices", "stream", "onnx_models", "fairness", "features",
                         "config"}),
    "console": frozenset({"notices", "review", "ledger", "stream", "onnx_models", "fairness",
                          "features", "config"}),
    "replay": frozenset({"stream", "training", "onnx_models", "fairness", "features", "config"}),
    "infra": frozenset({"console", "notices", "review", "ledger", "replay", "stream", "training",
                        "onnx_models", "fairness", "features", "config"}),
    "cli": frozenset({"infra", "console", "notices", "review", "ledger", "replay", "stream", "training",
                      "onnx_models", "fairness", "features", "config"}),
}
ROOMS = frozenset(MAY_IMPORT)
# Sub-packages of infra that must stay apart: stack must not reach into the other two.
INFRA_APART = {"infra.stack": frozenset({"infra.bench", "infra.faults"})}


def imported_modules(path: Path) -> set[str]:
    """Absolute module names a file imports, wherever the import statement stands."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def room_imports() -> dict[str, dict[str, set[str]]]:
    """room -> imported room -> the files of the room that import it."""
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for room in ROOMS:
        for path in (REPO / room).rglob("*.py"):
            for module in imported_modules(path):
                target = module.split(".")[0]
                if target in ROOMS and target != room:
                    found[room][target].add(str(path.relative_to(REPO)))
    return found


def test_every_room_imports_only_what_the_architecture_allows() -> None:
    breaches = [f"{room} imports {target} ({', '.join(sorted(files))})"
                for room, targets in room_imports().items()
                for target, files in targets.items() if target not in MAY_IMPORT[room]]
    assert breaches == [], "imports against docs/architecture.md:\n" + "\n".join(breaches)


def test_no_two_rooms_import_each_other() -> None:
    imports = room_imports()
    cycles = sorted({tuple(sorted((room, target))) for room, targets in imports.items()
                     for target in targets if room in imports.get(target, {})})
    assert cycles == []


def test_the_rules_have_no_cycle() -> None:
    """The allowed graph itself is a layering: following arrows never comes back."""
    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
                   for nxt in MAY_IMPORT[start])

    assert [room for room in ROOMS if reaches(room, room)] == []


def test_infra_stack_stays_apart_from_the_benchmarks_and_the_fault_suite() -> None:
    for package, forbidden in INFRA_APART.items():
        folder = REPO / package.replace(".", "/")
        for path in folder.rglob("*.py"):
            wrong = {module for module in imported_modules(path)
                     if any(module == name or module.startswith(name + ".") for name in forbidden)}
            assert wrong == set(), f"{path.relative_to(REPO)} imports {sorted(wrong)}"


@pytest.mark.parametrize("concern", ["console", "ledger", "replay", "bench"])
def test_stream_holds_only_the_event_path(concern: str) -> None:
    names = [path.relative_to(REPO / "stream").as_posix() for path in (REPO / "stream").rglob("*")]
    assert [name for name in names if concern in name] == []


def test_architecture_doc_states_the_same_rules() -> None:
    """The table in docs/architecture.md and MAY_IMPORT say the same."""
    rows = re.findall(r"^\| `(\w+)` \| [^|]+ \| ([^|]+) \|$", ARCHITECTURE.read_text(), re.M)
    documented = {}
    for room, allowed in rows:
        if "every room but `cli`" in allowed:
            documented[room] = ROOMS - {room, "cli"}
        elif "every room" in allowed:
            documented[room] = ROOMS - {room}
        else:
            documented[room] = frozenset(re.findall(r"`(\w+)`", allowed))
    assert documented == MAY_IMPORT


def test_the_image_and_the_package_carry_every_room() -> None:
    """A room left out of the Docker image or the installed package fails at import there."""
    dockerfile = (REPO / "infra" / "docker" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, re.M))
    pyproject = (REPO / "pyproject.toml").read_text()
    packaged = set(re.findall(r'"(\w+)\*"', pyproject))
    assert copied == set(ROOMS)
    assert packaged == set(ROOMS)
