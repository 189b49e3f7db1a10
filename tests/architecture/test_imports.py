"""The shape of the code base, read from its source (no app, no database):

* the first-level parts of ``portal`` (``portal.web``, ``portal.accounts``, ``portal.tenancy``,
  ``portal.db``, ``portal.app`` ...) import each other without a cycle — every import counts,
  the ones inside functions ("late imports") and under ``TYPE_CHECKING`` included;
* no code or template builds an org URL by hand (``f"/orgs/{slug}/..."``, ``"/orgs/" ~ slug``,
  ``/orgs/{{ org.slug }}``): org URLs come from the route names (``url_for``), so a route's path
  is written once, in its declaration.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PORTAL = ROOT / "portal"
TEMPLATES = ROOT / "templates"


# -- no import cycle between portal's parts ---------------------------------------------------------


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(module: str) -> str | None:
    """``portal.web.render`` -> ``portal.web``; None for ``portal`` itself and other packages."""
    parts = module.split(".")
    if parts[0] != "portal" or len(parts) < 2:
        return None
    return ".".join(parts[:2])


def imported_modules(path: Path) -> list[tuple[str, int]]:
    """Every module ``path`` imports, anywhere in the file, absolute: (module, line)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            out.append((source, node.lineno))
            # `from portal import clock` imports the module portal.clock
            out += [(f"{source}.{alias.name}", node.lineno) for alias in node.names if alias.name != "*"]
    return out


def import_graph() -> dict[tuple[str, str], list[str]]:
    """(importing part, imported part) -> where ("portal/x/y.py:12"), between different parts."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(PORTAL.rglob("*.py")):
        here = part_of(module_name(path))
        if here is None:
            continue
        for module, line in imported_modules(path):
            there = part_of(module)
            if there is None or there == here:
                continue
            if not ((PORTAL / there.split(".")[1]).is_dir() or (PORTAL / f"{there.split('.')[1]}.py").is_file()):
                continue  # `from portal.x import name`: the name is not a module of its own
            where = f"{path.relative_to(ROOT)}:{line}"
            if where not in edges[(here, there)]:
                edges[(here, there)].append(where)
    return edges


def cycles(edges) -> list[list[str]]:
    """The strongly connected parts of the graph with more than one member (Tarjan)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
        graph[b]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_the_cycle_finder_finds_cycles():
    edges = {("portal.a", "portal.b"): [], ("portal.b", "portal.c"): [], ("portal.c", "portal.a"): [], ("portal.c", "portal.d"): []}
    assert cycles(edges) == [["portal.a", "portal.b", "portal.c"]]
    assert cycles({("portal.a", "portal.b"): [], ("portal.b", "portal.c"): []}) == []


def test_no_import_cycle_between_the_parts_of_portal():
    edges = import_graph()
    assert len({part for edge in edges for part in edge}) >= 8, "the import graph was read"
    report = []
    for component in cycles(edges):
        report.append("cycle between " + ", ".join(component) + ":")
        for (a, b), where in sorted(edges.items()):
            if a in component and b in component:
                shown = ", ".join(where[:3]) + (f" (+{len(where) - 3} more)" if len(where) > 3 else "")
                report.append(f"  {a} -> {b}: {shown}")
    assert report == [], "\n".join(report)


# -- no hand-built org URL -----------------------------------------------------------------------

PYTHON_PATTERNS = [
    re.compile(r"""\b[rR]?[fF][rR]?(["'])/orgs/\{"""),  # f"/orgs/{slug}/members"
    re.compile(r"""(["'])/orgs/\1\s*[+~]"""),  # "/orgs/" + slug
    re.compile(r"""(["'])/orgs/(%s|\{\w*\})[^"']*\1\s*(%|\.format\()"""),  # "/orgs/%s" % slug, "/orgs/{}".format(slug)
    re.compile(r"""/orgs/\{\{"""),
]
TEMPLATE_PATTERNS = [
    re.compile(r"""/orgs/\{\{"""),  # href="/orgs/{{ org.slug }}/members"
    re.compile(r"""(["'])/orgs/\1\s*[~+]"""),  # '/orgs/' ~ org.slug
    re.compile(r"""\borg\.org\.slug\s*~"""),  # org.org.slug ~ '/members'
    re.compile(r"""/orgs/["']\s*~"""),
]
# The one place an org path is written by hand: the org router's own prefix.
ALLOWED = {("portal/app.py", 'ORG_PREFIX = "/orgs/{slug:str}"')}
DECORATOR = re.compile(r"""^\s*@\w+(\.\w+)*\(\s*(path\s*=\s*)?\[?\s*["']""")  # @get("/path"...), @route(path=["/a"])


def hand_built_urls() -> list[str]:
    found = []
    for root, glob, patterns in ((PORTAL, "*.py", PYTHON_PATTERNS), (TEMPLATES, "*.html", TEMPLATE_PATTERNS)):
        for path in sorted(root.rglob(glob)):
            rel = str(path.relative_to(ROOT))
            for n, line in enumerate(path.read_text().splitlines(), 1):
                stripped = line.strip()
                if glob == "*.py" and (stripped.startswith("#") or DECORATOR.match(line)):
                    continue
                if (rel, stripped) in ALLOWED:
                    continue
                if any(p.search(line) for p in patterns):
                    found.append(f"{rel}:{n}: {stripped[:140]}")
    return found


def test_the_url_patterns_catch_hand_built_urls():
    python = ['f"/orgs/{slug}/members"', "f'/orgs/{org.slug}'", '"/orgs/" + slug', '"/orgs/%s/x" % slug', '"/orgs/{}/x".format(s)']
    template = ['href="/orgs/{{ org.slug }}/members"', "{{ '/orgs/' ~ org.slug }}", '{{ "/orgs/" ~ slug ~ "/x" }}', "{{ org.org.slug ~ '/x' }}"]
    assert all(any(p.search(s) for p in PYTHON_PATTERNS) for s in python)
    assert all(any(p.search(s) for p in TEMPLATE_PATTERNS) for s in template)
    fine = ['ORG_PREFIX = "/orgs/{slug:str}"', 'url_for("members.list", slug=org.slug)', 'next="/orgs"', '"/orgs/x"']
    assert not any(p.search(s) for p in PYTHON_PATTERNS for s in fine)
    assert DECORATOR.match('@get("/orgs/{slug:str}/members", name="members")') and not DECORATOR.match('url = f"/orgs/{slug}"')


def test_no_hand_built_org_urls_in_code_or_templates():
    found = hand_built_urls()
    assert found == [], f"{len(found)} hand-built org URLs (use url_for with the route's name):\n" + "\n".join(found)
