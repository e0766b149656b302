"""mkdocs hooks: the pages generated from the code, so the site cannot drift from it.

A page holds a marker such as ``<!-- generated: cli -->``; the hook replaces it with Markdown built from
the argument parser (``cli``), the config's JSON Schema (``config``), the built-in matrix's known issues
(``known-issues``) and the case files' docstrings (``cases``). Links from a page to a repository file
outside ``docs/`` become links to that file on the repository (a missing one is left alone, so the
strict build fails on it). The grid page (``results/index.html``) is published as ``grid.html``.
The functions are plain so that the tests call them (tests/docs/).
"""

from __future__ import annotations

import argparse
import ast
import json
import posixpath
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:  # the checkout's own ftcompat, even beside an installed one
    sys.path.insert(0, str(ROOT / "src"))

MARKER = re.compile(r"<!-- generated: ([a-z-]+) -->")
GRID_PAGE = "grid.html"  # where results/index.html is published in the site

# The keys a project file (ftcompat.yaml) has besides the matrix's (config/project.PROJECT_KEYS).
PROJECT_ONLY = {
    "extends": ("`builtin`", "what the file extends: the built-in library's tiny models, cases and known issues "
                             "come with it; a file with this key is a project file, not a full matrix"),
    "builtin_cases": ("array of globs", "the built-in cases to run, as globs over their ids (default: all); "
                                        "`ftcompat cases` lists them"),
    "case_dirs": ("array of folders", "folders of the project's own cases, relative to the file: one file per "
                                      "case, written with the same case API as the built-in ones"),
}


def cell(text: object) -> str:
    """Text made safe for one Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


# --- the command line -------------------------------------------------------------------------------------

def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """Each subcommand of ``parser`` with its one-line help, in the order ``--help`` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return {name: (helps.get(name, ""), sub) for name, sub in action.choices.items()}
    return {}


def flags(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The parser's arguments that a user types (options and positionals), ``--help`` left out."""
    return [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


def _argument(action: argparse.Action) -> str:
    """What an option takes, written as ``--help`` writes it."""
    if action.option_strings and action.nargs == 0:
        return ""
    metavar = action.metavar or (action.dest.upper() if action.option_strings else action.dest)
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        metavar = "{" + ",".join(map(str, action.choices)) + "}"
    nargs = action.nargs
    if nargs in ("*", "+"):
        return f"{metavar} ..." if nargs == "+" else f"[{metavar} ...]"
    if nargs == "?":
        return f"[{metavar}]"
    if isinstance(nargs, int) and nargs > 1:
        return " ".join([str(metavar)] * nargs)
    return str(metavar)


def _default(action: argparse.Action) -> str:
    """The default worth showing, or nothing."""
    if action.default in (None, False, argparse.SUPPRESS) or action.nargs == 0 or action.default == []:
        return ""
    return f"`{action.default}`"


def _usage(parser: argparse.ArgumentParser) -> str:
    """The usage line at a fixed width, so the page does not depend on the terminal that built it."""
    formatter = argparse.HelpFormatter(parser.prog, width=100)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _table(actions: list[argparse.Action]) -> list[str]:
    """A Markdown table of arguments: the names, what each takes, its default and help."""
    rows = ["| argument | takes | default | what it does |", "|---|---|---|---|"]
    for a in actions:
        names = ", ".join(f"`{s}`" for s in a.option_strings) if a.option_strings else f"`{a.dest}` (positional)"
        takes = f"`{_argument(a)}`" if _argument(a) else ""
        what = (a.help or "").replace("%(default)s", str(a.default)).replace("%%", "%")
        rows.append(f"| {names} | {cell(takes)} | {cell(_default(a))} | {cell(what)} |")
    return rows


def cli_reference() -> str:
    """Every subcommand of ``ftcompat`` with every argument it takes, from the parser itself."""
    from ftcompat.cli import build_parser

    parser = build_parser()
    out = [f"`ftcompat` has {len(subcommands(parser))} subcommands. Options that come before the subcommand:", "",
           "```text", _usage(parser), "```", "", *_table(flags(parser)), ""]
    for name, (summary, sub) in subcommands(parser).items():
        out += [f"## `ftcompat {name}`", "", summary, ""]
        if sub.description and sub.description != summary:
            out += [sub.description, ""]
        out += ["```text", _usage(sub), "```", "", *_table(flags(sub)), ""]
    return "\n".join(out)


# --- the config's keys ------------------------------------------------------------------------------------

def _schema() -> dict[str, Any]:
    """The JSON Schema ftcompat ships for matrix.yaml and ftcompat.yaml."""
    return json.loads((ROOT / "src" / "ftcompat" / "config" / "matrix.schema.json").read_text(encoding="utf-8"))


def _resolve(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema node with its ``$ref`` followed (the keys beside the ``$ref`` kept)."""
    while "$ref" in node:
        target = schema
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _type(node: dict[str, Any]) -> str:
    """A short human name for what a schema node accepts."""
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return " or ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    kind = node.get("type", "")
    if not kind and ("oneOf" in node or "anyOf" in node):
        kinds = [_type(v) for v in node.get("oneOf", node.get("anyOf", []))]
        return " or ".join(dict.fromkeys(kinds))
    if not kind and "properties" in node:
        kind = "object"
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if "pattern" in node:
        kind += f" matching `{node['pattern']}`"
    return kind or "any"


def config_keys(node: dict[str, Any] | None = None, path: str = "", required: bool = False,
                schema: dict[str, Any] | None = None) -> list[tuple[str, str, bool, str]]:
    """Every key the schema allows, as (path, type, required, description) rows, parents before children."""
    schema = schema or _schema()
    node = _resolve(node if node is not None else schema, schema)
    rows = [(path, _type(node), required, node.get("description", ""))] if path else []
    for variant in node.get("oneOf", []):
        variant = _resolve(variant, schema)
        if "properties" in variant:
            label = next((f"{k}: {v['const']}" for k, v in variant["properties"].items() if "const" in v), "")
            for key, sub in variant["properties"].items():
                rows += config_keys(sub, f"{path}.{key}" + (f" ({label})" if label and "const" not in sub else ""),
                                    key in variant.get("required", []), schema)
    for key, sub in node.get("properties", {}).items():
        rows += config_keys(sub, f"{path}.{key}" if path else key, key in node.get("required", []), schema)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        name = "<case>" if path == "cases" else "<id>" if path == "models" else "<package>"
        rows += config_keys(extra, f"{path}.{name}", False, schema)
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        items = _resolve(node["items"], schema)
        if "properties" in items or "oneOf" in items:
            rows += config_keys(items, f"{path}[]", False, schema)
    return rows


def config_reference() -> str:
    """The keys of matrix.yaml and ftcompat.yaml: the JSON Schema's, then the project file's own."""
    schema = _schema()
    out = [schema.get("description", ""), "", "| key | accepts | required | what it is |", "|---|---|---|---|"]
    for path, kind, required, description in config_keys(schema=schema):
        out.append(f"| `{path}` | {cell(kind)} | {'yes' if required else ''} | {cell(description)} |")
    out += ["", "## Keys of a project file only", "",
            "A project file (`ftcompat.yaml`, written by `ftcompat init`) takes every key above and these:", "",
            "| key | accepts | what it is |", "|---|---|---|"]
    out += [f"| `{key}` | {kind} | {cell(what)} |" for key, (kind, what) in PROJECT_ONLY.items()]
    return "\n".join(out) + "\n"


# --- the known-issue registry -----------------------------------------------------------------------------

def known_issues() -> list[dict[str, Any]]:
    """The built-in matrix's known issues, as matrix.yaml lists them."""
    import yaml

    return yaml.safe_load((ROOT / "matrix.yaml").read_text(encoding="utf-8")).get("known_issues") or []


def known_issues_reference() -> str:
    """One section per known issue of the built-in matrix: what it covers, when, the link and workaround."""
    issues = known_issues()
    out = [f"The built-in registry has {len(issues)} entries (`known_issues:` in `matrix.yaml`), in its order.", ""]
    for issue in issues:
        out += [f"### `{issue['id']}`", "", issue.get("summary", ""), ""]
        if issue.get("environment"):
            out.append("- **kind:** an environment issue, matched against the health probe's findings")
        if issue.get("cells"):
            out.append("- **cells:** " + ", ".join(f"`{c}`" for c in issue["cells"]))
        if issue.get("when"):
            out.append("- **when:** " + ", ".join(f"`{k} {v}`" for k, v in issue["when"].items()))
        if issue.get("signature"):
            out.append(f"- **signature:** `{issue['signature']}`")
        out.append(f"- **upstream:** <{issue['url']}>")
        if issue.get("workaround"):
            out.append(f"- **workaround:** {issue['workaround']}")
        out.append("")
    return "\n".join(out)


# --- the cases --------------------------------------------------------------------------------------------

def cases() -> dict[str, str]:
    """Each built-in case id with its docstring's first line, sorted by id."""
    out = {}
    for path in sorted((ROOT / "cases").glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        out[path.stem] = doc.strip().splitlines()[0] if doc.strip() else ""
    return out


def cases_table() -> str:
    """The table of built-in cases, each linked to its page (its findings)."""
    found = cases()
    out = [f"The built-in library has {len(found)} cases (`cases/*.py`). Each links to its page: what running it "
           "across releases showed, and why.", "", "| case | what it checks (its docstring's first line) |",
           "|---|---|"]
    for case, first in found.items():
        link = f"[`{case}`](../findings/{case}.md)" if (ROOT / "docs" / "findings" / f"{case}.md").exists() \
            else f"`{case}`"
        out.append(f"| {link} | {cell(first)} |")
    return "\n".join(out) + "\n"


def kit_reference() -> str:
    """The helpers ``ftcompat.harness.kit`` exports, each with its docstring's first line."""
    tree = ast.parse((ROOT / "src" / "ftcompat" / "harness" / "kit.py").read_text(encoding="utf-8"))
    exported = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets))
    out = ["| helper | what it does |", "|---|---|"]
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in exported:
            first = (ast.get_docstring(node) or "").strip().splitlines()
            out.append(f"| `{node.name}` | {cell(first[0] if first else '')} |")
    return "\n".join(out) + "\n"


GENERATORS = {"cli": cli_reference, "config": config_reference, "known-issues": known_issues_reference,
              "cases": cases_table, "kit": kit_reference}


def generate(markdown: str) -> str:
    """Markdown with each ``<!-- generated: NAME -->`` marker replaced by what NAME's generator writes."""
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"unknown generated section {name!r}; known: {', '.join(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(one, markdown)


LINK = re.compile(r"(\]\()([^)\s#]+)(#[^)\s]*)?(\))")


def repository_links(markdown: str, src_path: str, repo_url: str) -> str:
    """Links from a page (``src_path`` inside docs/) to repository files outside docs/, made repository links."""
    def one(match: re.Match[str]) -> str:
        target = match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
            return match.group(0)
        inside = posixpath.normpath(posixpath.join("docs", posixpath.dirname(src_path), target))
        if inside.startswith("docs/") or inside.startswith("../") or not (ROOT / inside).exists():
            return match.group(0)  # a page of the site, or a missing file: the strict build judges it
        kind = "tree" if (ROOT / inside).is_dir() else "blob"
        return f"{match.group(1)}{repo_url.rstrip('/')}/{kind}/main/{inside}{match.group(3) or ''}{match.group(4)}"

    return LINK.sub(one, markdown)


# --- mkdocs events ----------------------------------------------------------------------------------------

def on_config(config):
    """Add one Cases page per case (its findings) to the nav, after the table of cases."""
    for entry in config["nav"]:
        if isinstance(entry, dict) and "Cases" in entry:
            entry["Cases"] += [{case: f"findings/{case}.md"} for case in cases()
                               if (ROOT / "docs" / "findings" / f"{case}.md").exists()]
    return config


def on_files(files, config):
    """Publish the grid page (results/index.html) in the site as grid.html."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, GRID_PAGE, abs_src_path=str(ROOT / "results" / "index.html")))
    return files


def on_page_markdown(markdown, page, config, files):
    """Fill the generated sections and point links to repository files at the repository."""
    return repository_links(generate(markdown), page.file.src_uri, config["repo_url"])
