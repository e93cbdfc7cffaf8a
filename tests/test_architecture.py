"""The shape of DESIGN §1, checked from the source (every project file parsed with `ast`, none
imported): grading is a leaf, co_project reaches no app, the apps depend on one another in one
direction only, and an app reads another app's rows through its selectors and services, never
by importing its models. Imports inside functions and under TYPE_CHECKING count."""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "co_project",
    "tracks",
    "personalization",
    "submissions",
    "sessions_app",
    "study_paths",
    "tutoring",
    "grading",
    "learner_pages",
)
LEAVES = ("grading",)  # import no project package; anything may import them
SKIPPED_DIRECTORIES = {"__pycache__", "node_modules", "var"}


@dataclass(frozen=True)
class Import:
    path: str  # relative to the repository root
    line: int
    module: str  # the full dotted name imported

    @property
    def target(self) -> str:
        return self.module.split(".")[0]

    @property
    def source(self) -> str:
        return self.path.split("/")[0].removesuffix(".py")

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.module}"


def _sources() -> list[Path]:
    return sorted(
        path
        for path in ROOT.rglob("*.py")
        if not any(part.startswith(".") or part in SKIPPED_DIRECTORIES for part in path.relative_to(ROOT).parts)
    )


@cache
def project_packages() -> frozenset[str]:
    """The top-level names a project file is imported by: its packages and top-level modules."""
    return frozenset(path.relative_to(ROOT).parts[0].removesuffix(".py") for path in _sources())


def _imports_of(path: Path) -> list[Import]:
    relative = path.relative_to(ROOT)
    package = list(relative.parts[:-1])  # a module's package, or an __init__.py's own
    found = []
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [Import(relative.as_posix(), node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module.split(".") if node.module else []
            if node.level:  # relative: from the file's own package, `level - 1` packages up
                base = package[: len(package) - (node.level - 1)] + base
            module = ".".join(base)
            # `from tracks import models` imports the module tracks.models.
            found += [Import(relative.as_posix(), node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


@cache
def project_imports() -> tuple[Import, ...]:
    """Every import of a project package by a project file (itself included)."""
    packages = project_packages()
    return tuple(found for path in _sources() for found in _imports_of(path) if found.target in packages)


def app_graph() -> dict[str, dict[str, list[Import]]]:
    """source app → target app → the imports that make the edge."""
    graph: dict[str, dict[str, list[Import]]] = defaultdict(lambda: defaultdict(list))
    for found in project_imports():
        if found.source in APPS and found.target in APPS and found.source != found.target:
            graph[found.source][found.target].append(found)
    return graph


def entangled(graph: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """The groups of apps that import one another, directly or not (Tarjan's strongly connected
    components of more than one app), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, {})):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def cycle_through(start: str, members: set[str], graph: dict[str, dict[str, list[Import]]]) -> list[str]:
    """One import cycle from `start` back to it within `members` (`start` repeated at the end)."""
    seen: set[str] = set()
    trail = [start]

    def walk(node: str) -> bool:
        for target in sorted(graph.get(node, {})):
            if target == start:
                trail.append(start)
                return True
            if target in members and target not in seen:
                seen.add(target)
                trail.append(target)
                if walk(target):
                    return True
                trail.pop()
        return False

    walk(start)
    return trail


def cycles(graph: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """One cycle per group of apps that import one another."""
    return [cycle_through(group[0], set(group), graph) for group in entangled(graph)]


def describe(group: list[str], graph: dict[str, dict[str, list[Import]]]) -> str:
    """The group, one cycle through it, and every import between its apps (the first five of each edge)."""
    members = set(group)
    lines = [f"{', '.join(group)} import one another, e.g. " + " → ".join(cycle_through(group[0], members, graph))]
    for source in group:
        for target in sorted(set(graph.get(source, {})) & members):
            lines += [f"  {source} → {target}:"] + [f"    {found}" for found in graph[source][target][:5]]
    return "\n".join(lines)


def test_the_walk_sees_every_app() -> None:
    sources = {found.source for found in project_imports()}
    assert set(APPS) - {"study_paths"} <= sources  # study_paths has no import of the project yet
    assert set(APPS) <= project_packages()


def test_grading_imports_no_project_package() -> None:
    leaks = [str(found) for found in project_imports() if found.source in LEAVES and found.target not in LEAVES]
    assert leaks == [], "grading is a leaf (DESIGN §1):\n" + "\n".join(leaks)


def test_grading_reads_only_settings_of_django() -> None:
    """No models, no ORM, no request machinery: `django.conf.settings` for configuration only."""
    uses = [
        str(found)
        for path in _sources()
        if path.relative_to(ROOT).parts[0] in LEAVES
        for found in _imports_of(path)
        if found.target == "django" and found.module != "django.conf.settings"
    ]
    assert uses == [], "grading imports Django beyond its settings:\n" + "\n".join(uses)


def test_co_project_imports_no_app() -> None:
    """co_project may name apps in strings (settings, `include("x.urls")`), and import leaves."""
    reaches = [
        str(found)
        for found in project_imports()
        if found.source == "co_project" and found.target in APPS and found.target not in {"co_project", *LEAVES}
    ]
    assert reaches == [], "co_project imports an app:\n" + "\n".join(reaches)


def test_the_apps_import_one_another_without_a_cycle() -> None:
    graph = app_graph()
    groups = entangled(graph)
    assert groups == [], "import cycles between apps (DESIGN §1):\n" + "\n".join(describe(group, graph) for group in groups)


def test_the_cycle_finder_prints_a_cycle() -> None:
    where = Import("a/x.py", 1, "b")
    graph = {"a": {"b": [where]}, "b": {"c": [where]}, "c": {"a": [where], "d": [where]}, "d": {}}
    assert entangled(graph) == [["a", "b", "c"]]
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert describe(["a", "b", "c"], graph).splitlines() == [
        "a, b, c import one another, e.g. a → b → c → a",
        "  a → b:",
        "    a/x.py:1 imports b",
        "  b → c:",
        "    a/x.py:1 imports b",
        "  c → a:",
        "    a/x.py:1 imports b",
    ]
    assert entangled({"a": {"b": [where]}, "b": {}}) == []


def test_an_app_reads_another_apps_rows_through_its_selectors_not_its_models() -> None:
    """Outside its own package (and its migrations), no code imports an app's models module."""
    imports = {
        (found.path, ".".join(found.module.split(".")[:2]))
        for found in project_imports()
        if found.source in APPS
        and found.target in APPS
        and found.source != found.target
        and found.module.split(".")[1:2] == ["models"]
        and "/migrations/" not in found.path
    }
    assert sorted(imports) == [], "use the owning app's selectors or services instead:\n" + "\n".join(map(str, sorted(imports)))
