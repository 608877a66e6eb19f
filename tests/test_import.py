"""`import keraslm` stays light."""

import subprocess
import sys

HEAVY = ("tensorflow", "keras", "tf2onnx", "onnxruntime", "ai_edge_litert",
         "keras_hub", "tensorflow_text")


def modules_after(code):
    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, check=True)
    return set(result.stdout.split())


def test_import_keraslm_loads_no_framework():
    loaded = modules_after("import keraslm")
    assert not loaded & set(HEAVY)


def test_listing_plugins_loads_no_exporter_runtime():
    loaded = modules_after("import keraslm; keraslm.list_plugins(include_builtins=True)")
    assert not loaded & {"tf2onnx", "onnxruntime", "ai_edge_litert", "tensorflow"}
    assert "keraslm_onnx" in loaded  # the plugin itself is loaded, but stays light


def _module_graph(root):
    """`module -> modules of the package it imports` (every import, lazy ones
    too; package __init__ files left out, as the shared import_cycles tool)."""
    import ast
    import pathlib

    root = pathlib.Path(root)
    modules = {".".join(p.relative_to(root.parent).with_suffix("").parts): p
               for p in root.rglob("*.py") if p.name != "__init__.py"}
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def test_no_two_modules_of_keraslm_import_each_other():
    import pathlib

    import keraslm

    graph = _module_graph(pathlib.Path(keraslm.__file__).parent)
    assert len(graph) > 50 and "keraslm.plugins" in graph["keraslm.registry"]
    cycles = []

    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for target in graph[todo.pop()]:
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    for module in graph:
        if module in reachable(module):
            cycles.append(module)
    assert not cycles, f"modules on an import cycle: {sorted(cycles)}"
    # The layering the layout promises: the plugin manager and the registries
    # never import the command line, and the name helper imports nothing.
    assert not graph["keraslm._names"]
    assert "keraslm.cli" not in reachable("keraslm.plugins") | reachable("keraslm.registry")
    assert "keraslm.registry" not in graph["keraslm.plugins"]
