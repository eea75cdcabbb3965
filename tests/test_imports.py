"The module graph of `layerwise`: no import circle, dependencies point one way, and imports sit at the top of modules."
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1]/"layerwise"
# lower layers never import higher ones: the command line and the tools sit above the analyses, which sit above the recommender
LAYERS = [{"paths", "config"}, {"recommender.data", "recommender.models", "recommender.metrics", "viz"}, {"report"},
          {"recommender.train"}, {"core.*"}, {"batch", "stats"}, {"study", "study_compression", "study_answers", "site", "study_run"}, {"cli"}]

def module_name(path: Path) -> str: return ".".join(path.relative_to(PKG).with_suffix("").parts).removesuffix(".__init__")

def layer(mod: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if mod in names or any(n.endswith(".*") and mod.startswith(n[:-1]) for n in names))

def imports(path: Path) -> list[tuple[str, ast.AST, bool]]:
    "(imported layerwise module, node, inside a function?) for every import in `path`"
    tree, mod, out = ast.parse(path.read_text()), module_name(path), []
    funcs = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = mod.split(".")[:len(mod.split(".")) - node.level] if node.level else []
            target = ".".join(base + (node.module or "").split(".")) if node.level else (node.module or "")
            target = target.removeprefix("layerwise.").removeprefix("layerwise") if node.level == 0 else target
            if node.level or (node.module or "").startswith("layerwise"):
                names = [target] if target else [a.name for a in node.names]
                for t in names: out.append((".".join(p for p in t.split(".") if p), node, id(node) in funcs))
        elif isinstance(node, ast.Import):
            out += [(a.name.removeprefix("layerwise."), node, id(node) in funcs) for a in node.names if a.name.startswith("layerwise.")]
    return out

MODULES = {module_name(p): p for p in PKG.rglob("*.py") if p.name not in ("_modidx.py", "__init__.py")}

def graph() -> dict[str, set[str]]:
    g = {m: set() for m in MODULES}
    for m, p in MODULES.items():
        for t, _, _ in imports(p):
            t = t if t in MODULES else next((k for k in MODULES if t.startswith(k + ".")), t)  # `from layerwise.core import fisher`
            if t not in MODULES and f"{t}.__init__" not in MODULES: t = next((k for k in MODULES if k.startswith(t + ".")), t)
            if t in MODULES and t != m: g[m].add(t)
    return g

def test_every_module_has_a_layer():
    assert all(layer(m) is not None for m in MODULES), MODULES

def test_no_import_circle():
    g, state = graph(), {}
    def visit(m, stack):
        state[m] = "open"
        for t in g[m]:
            assert state.get(t) != "open", f"import circle: {' -> '.join(stack + [m, t])}"
            if t not in state: visit(t, stack + [m])
        state[m] = "done"
    for m in g:
        if m not in state: visit(m, [])

def test_dependencies_point_down():
    up = [(m, t) for m, ts in graph().items() for t in ts if layer(t) > layer(m)]
    assert not up, f"upward imports (module -> a higher layer): {up}"

def test_imports_at_the_top():
    "An import inside a function must say why (an optional or heavy package) on its line"
    bad = []
    for m, p in MODULES.items():
        lines = p.read_text().splitlines()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                bad += [f"{p.name}:{n.lineno} in {node.name}(): {lines[n.lineno - 1].strip()}" for n in ast.walk(node)
                        if isinstance(n, (ast.Import, ast.ImportFrom)) and not ("# optional" in lines[n.lineno - 1] or "# heavy" in lines[n.lineno - 1])]
    assert not bad, "imports inside functions without '# optional' or '# heavy':\n" + "\n".join(bad)
