"""The package layout holds: no import circle, no import up a layer (the layers are in docs/architecture.md)."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BOT = REPO / "bot"
MAX_LINES = 400


def declared_layers() -> list[list[str]]:
    """The layers of docs/architecture.md's ```layers block, top layer first."""
    text = (REPO / "docs" / "architecture.md").read_text()
    block = re.search(r"```layers\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no ```layers block"
    return [line.split() for line in block.group(1).splitlines() if line.strip()]


def module_name(path: Path) -> str:
    """bot/web/api.py -> bot.web.api; bot/web/__init__.py -> bot.web."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(BOT.rglob("*.py"))}


def imports_in(source: str, name: str, is_package: bool = False) -> list[tuple[str, int]]:
    """The bot modules some source imports (at module level or inside functions), with the line of each."""
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source_module = ".".join(base + ([node.module] if node.module else []))
            else:
                source_module = node.module or ""
            # `from bot.x import y` imports the module bot.x.y when there is one, else a name of bot.x.
            targets = [f"{source_module}.{a.name}" if f"{source_module}.{a.name}" in MODULES else source_module
                       for a in node.names]
        else:
            continue
        found += [(target, node.lineno) for target in targets if target in MODULES and target != name]
    return found


def imports_of(name: str) -> list[tuple[str, int]]:
    """The bot modules a module of bot/ imports."""
    path = MODULES[name]
    return imports_in(path.read_text(), name, path.name == "__init__.py")


GRAPH = {name: imports_of(name) for name in MODULES}


def layer_of(name: str, layers: list[list[str]]) -> int:
    """The index of the layer whose longest package prefix holds the module (0 = top)."""
    best = None
    for index, members in enumerate(layers):
        for member in members:
            inside = name == member or (member != "bot" and name.startswith(member + "."))
            if inside and (best is None or len(member) > best[1]):
                best = (index, len(member))
    assert best is not None, f"{name} is in no layer of docs/architecture.md: add its package there"
    return best[0]


def package_of(name: str) -> str:
    """bot.web.dashboard.views -> bot.web; bot.config -> bot.config; bot -> bot."""
    return ".".join(name.split(".")[:2])


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle in a directed graph, as the list of its nodes (first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (circle := visit(nxt)):
                return circle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (circle := visit(start)):
            return circle
    return None


def test_every_module_belongs_to_a_declared_layer():
    layers = declared_layers()
    for name in MODULES:
        layer_of(name, layers)


def test_no_module_imports_from_a_layer_above_its_own():
    layers = declared_layers()
    upward = [f"{name} (line {line}) imports {target}: layer {layers[layer_of(target, layers)]} is above "
              f"{layers[layer_of(name, layers)]}"
              for name, targets in GRAPH.items() for target, line in targets
              if layer_of(target, layers) < layer_of(name, layers)]
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


def test_no_import_circle_between_modules():
    circle = find_circle({name: {target for target, _ in targets} for name, targets in GRAPH.items()})
    assert circle is None, "import circle: " + " -> ".join(circle or [])


def test_no_import_circle_between_packages():
    graph: dict[str, set[str]] = {}
    for name, targets in GRAPH.items():
        for target, _ in targets:
            if package_of(target) != package_of(name):
                graph.setdefault(package_of(name), set()).add(package_of(target))
    circle = find_circle(graph)
    assert circle is None, "packages import each other: " + " -> ".join(circle or [])


@pytest.mark.parametrize("circle, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ({"a": {"a"}}, ["a", "a"]),
])
def test_the_circle_finder_finds_circles_and_only_circles(circle, expected):
    assert find_circle(circle) == expected


def test_an_import_inside_a_function_counts_like_one_at_the_top():
    source = "from bot.store import keys\n\ndef later():\n    from bot.people import contacts\n    import bot.config\n"
    assert imports_in(source, "bot.example") == [("bot.store.keys", 1), ("bot.people.contacts", 4), ("bot.config", 5)]


def test_relative_imports_resolve_to_the_module_they_name():
    assert imports_in("from . import keys\nfrom ..people.identity import SMS\n", "bot.store.example") == [
        ("bot.store.keys", 1), ("bot.people.identity", 2)]


def test_every_queued_job_name_is_a_job_function_of_the_services_layer():
    from bot.store import queues

    for job in queues.JOBS:
        module, _, function = job.rpartition(".")
        assert module == "bot.services.jobs", f"{job}: RQ jobs live in bot.services.jobs"
        assert callable(getattr(importlib.import_module(module), function, None)), f"{job} does not exist"


@pytest.mark.parametrize("old_name", [
    "bot.fanout.start_broadcast", "bot.fanout.watch", "bot.fanout.send_batch",
    "bot.reminders.send_reminders", "bot.reminders.send_promotions", "bot.reminders.send_notices",
    "bot.reminders.close_workshop", "bot.workshop_changes.sync_job",
])
def test_jobs_queued_under_their_old_module_paths_still_run(old_name):
    module, _, function = old_name.rpartition(".")
    assert callable(getattr(importlib.import_module(module), function))


def test_no_module_is_over_400_lines():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by noun): {long}"
