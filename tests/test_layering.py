"""The package's seams, checked: imports point down the layers, there is no import circle, only the Dagster layer
and the entry points import Dagster, and only `storage/` spells a store path.

Run alone with `python -m pytest -q tests/test_layering.py`; `python tests/test_layering.py` prints the
package-level import graph.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from speech_assets.storage import layout

PACKAGE = Path(__file__).resolve().parent.parent / "speech_assets"

# Lower floors never import higher ones; packages on one floor do not import each other.
FLOORS: list[set[str]] = [
    {"settings", "text", "progress"},
    {"storage"},
    {"audio", "registry"},
    {"intake", "simulation"},
    {"features"},
    {"model"},
    {"training", "evaluation", "monitoring"},
    {"serving"},
    {"privacy", "governance"},
    {"operations"},
    {"defs"},
    # the entry points: the demo drives a Dagster instance; the CLI dispatches to every command, the demo included
    {"demo"},
    {"cli", "definitions"},
    {"__main__"},
]
ENTRY_POINTS = {"demo", "cli", "definitions", "__main__"}
DAGSTER_ALLOWED = {"defs", *ENTRY_POINTS}
DEFS_IMPORT_ALLOWED = {"defs", "definitions"}
FLOOR_OF = {pkg: i for i, floor in enumerate(FLOORS) for pkg in floor}

# Strings that start like a store key but are something else, each with why.
NOT_STORE_PATHS = {
    "audio/wav": "a MIME type",
}
# (module, string prefix): the landing zone's own folder layout, which is a user's file tree, not a store key.
LANDING_LAYOUT = {
    ("speech_assets.simulation.speech", "audio/"): "a simulated batch's files in the landing zone",
    ("speech_assets.demo.landing", "audio/"): "the demo's broken uploads in the landing zone",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, tree: ast.Module, is_package: bool) -> set[str]:
    """Every module `name` imports, at module level or inside a function (a lazy import is still an edge)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)  # `from pkg import module`
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, tree in modules.items():
        is_package = (PACKAGE.parent / Path(*name.split("."))).is_dir()
        graph[name] = {m for m in _imports(name, tree, is_package) if m in modules and m != name}
    return graph


def _external(name: str, tree: ast.Module) -> set[str]:
    return {m.split(".")[0] for m in _imports(name, tree, False)}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "speech_assets"


def package_graph() -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for a, targets in _graph().items():
        for b in targets:
            if _package(a) != _package(b) and _package(b) != "speech_assets":
                out[_package(a)].add(_package(b))
    return out


def test_every_package_has_a_floor():
    packages = {_package(m) for m in _modules()} - {"speech_assets"}
    assert packages <= set(FLOOR_OF), f"give these a floor in FLOORS: {sorted(packages - set(FLOOR_OF))}"


def test_imports_point_down_the_floors():
    wrong = []
    for a, targets in _graph().items():
        for b in sorted(targets):
            pa, pb = _package(a), _package(b)
            if pa == pb or pb == "speech_assets" or pa not in FLOOR_OF or pb not in FLOOR_OF:
                continue
            if FLOOR_OF[pb] >= FLOOR_OF[pa]:
                wrong.append(f"{a} -> {b} (floor {FLOOR_OF[pa]} imports floor {FLOOR_OF[pb]})")
    assert not wrong, "imports that run up or across the floors:\n" + "\n".join(wrong)


def test_no_import_circle():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    # A package's __init__ re-exporting its modules is not a circle of meaning; anything else is.
    real = [c for c in cycles if not all(_package(m) == _package(c[0]) for m in c)
            or not any(m.count(".") == 1 for m in c)]
    assert not real, "import circles:\n" + "\n".join(" <-> ".join(c) for c in real)


def test_only_the_dagster_layer_and_entry_points_import_dagster():
    wrong = []
    for name, tree in _modules().items():
        pkg = _package(name)
        ext = _external(name, tree)
        if pkg not in DAGSTER_ALLOWED and ({"dagster", "dagster_pipes", "dagster_shared"} & ext):
            wrong.append(f"{name} imports dagster")
        if pkg not in DEFS_IMPORT_ALLOWED and any(m.startswith("speech_assets.defs")
                                                   for m in _imports(name, tree, False)):
            wrong.append(f"{name} imports speech_assets.defs")
    assert not wrong, "\n".join(wrong)


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _store_roots() -> set[str]:
    return {k.pattern.split("/", 1)[0] + "/" for k in layout.KEYS}


def spelled_store_paths() -> list[str]:
    roots = _store_roots()
    found = []
    for name, tree in _modules().items():
        if name.startswith("speech_assets.storage"):
            continue
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                parts = [v for v in node.values if isinstance(v, ast.Constant)]
                text = parts[0].value if parts and node.values[0] is parts[0] else ""
                for v in parts:
                    v._in_fstring = True  # type: ignore[attr-defined]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs \
                    and not getattr(node, "_in_fstring", False):
                text = node.value
            else:
                continue
            if not isinstance(text, str) or text in NOT_STORE_PATHS:
                continue
            root = next((r for r in roots if text.startswith(r) or text == r[:-1] + "/"), None)
            if root and (name, root) not in LANDING_LAYOUT:
                found.append(f"{name}:{node.lineno}: {text!r}")
        for node in ast.walk(tree):  # `FOO_PREFIX = "metadata"`: a key named without its slash
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                    and isinstance(node.value.value, str) and f"{node.value.value.split('/')[0]}/" in roots:
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                if any(n.endswith(("_PREFIX", "_PATH", "_ROOT", "_POINTER", "_RECORD", "_DIR")) for n in names):
                    found.append(f"{name}:{node.lineno}: {names[0]} = {node.value.value!r}")
    return sorted(set(found))


def test_only_storage_spells_a_store_path():
    found = spelled_store_paths()
    assert not found, ("store paths spelled outside speech_assets/storage/layout.py "
                       "(name them in layout.py and import them):\n" + "\n".join(found))


def test_the_detector_sees_a_spelled_path(tmp_path, monkeypatch):
    """The check above can fail: a module that spells `metadata/...` is reported."""
    fake = tmp_path / "speech_assets"
    (fake / "intake").mkdir(parents=True)
    (fake / "intake" / "x.py").write_text(
        'P = "metadata/x.parquet"\nQ = f"checkpoints/{1}"\nR = "audio/wav"\nAUDIO_PREFIX = "audio"\n')
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    found = spelled_store_paths()
    assert any("'metadata/x.parquet'" in f for f in found)
    assert any("'checkpoints/'" in f for f in found)
    assert any("AUDIO_PREFIX = 'audio'" in f for f in found)
    assert not any("audio/wav" in f for f in found)


def test_layout_keys_have_owners_and_a_speaker_data_flag():
    assert len({k.pattern for k in layout.KEYS}) == len(layout.KEYS), "a key is declared twice"
    for k in layout.KEYS:
        assert k.writer and k.readers and k.what, k
        assert k.holds in (layout.AUDIO, layout.ROWS, layout.NONE), k


if __name__ == "__main__":
    for pkg, targets in sorted(package_graph().items()):
        print(f"{pkg:<12} -> {', '.join(sorted(targets))}")
    for line in spelled_store_paths():
        print("store path:", line)
    pytest.main([__file__, "-q"])
