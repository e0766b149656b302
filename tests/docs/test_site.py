"""The documentation site and the README: the site builds in strict mode with no warning, its generated
pages match the code (every subcommand and argument, every config key, every known issue, every case), and
the README stays short, its links resolve and every number in it comes from a committed result."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT

from ftcompat.cli import build_parser

README = ROOT / "README.md"


def load_hooks():
    """docs/hooks.py, the module mkdocs loads, imported the same way."""
    spec = importlib.util.spec_from_file_location("ftcompat_docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hooks():
    return load_hooks()


def build_site(out):
    """``mkdocs build --strict`` of the checkout into ``out``; returns the finished process."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner about its successor is no build warning
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"), "--site-dir", str(out)], cwd=ROOT, capture_output=True,
                          text=True, env=env)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    proc = build_site(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stdout + proc.stderr


def test_the_site_builds_in_strict_mode_with_no_warning(site):
    out, log = site
    assert "Documentation built" in log
    assert not [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line], log
    for page in ("index.html", "reference/cli/index.html", "reference/config/index.html", "grid.html",
                 "reference/known-issues/index.html", "cases/index.html", "findings/phi3_generate/index.html",
                 "guide/tutorial/index.html", "contributing/index.html", "grid-schema/index.html"):
        assert (out / page).is_file(), page
    assert not (out / "hooks.py").exists()  # the hook is not published
    assert (out / "grid.html").read_bytes() == (ROOT / "results" / "index.html").read_bytes()


def test_a_broken_link_fails_the_strict_build(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# x\n\n[gone](nowhere.md)\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: x\nstrict: true\n")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode != 0 and "nowhere.md" in proc.stderr


# --- the command-line reference ---------------------------------------------------------------------------

def sections(markdown):
    """The CLI page split at each ``## `ftcompat NAME` `` heading: {NAME: its text}."""
    parts = re.split(r"^## `ftcompat ([a-z-]+)`$", markdown, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def named_arguments(text):
    """The arguments a section's table names: its options, and its positionals by dest."""
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    names = set()
    for row in rows:
        first = row.split(" | ")[0]
        names |= set(re.findall(r"`([^`]+)`", first))
    return names


def test_the_cli_reference_names_every_subcommand_and_argument_the_parser_has(hooks):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    page = hooks.cli_reference()
    found = sections(page)
    assert list(found) == list(sub.choices)  # every subcommand, in --help's order, and no other
    for name, subparser in sub.choices.items():
        expected = {s for a in subparser._actions for s in (a.option_strings or [a.dest])} - {"-h", "--help"}
        assert named_arguments(found[name]) == expected, name
        assert f"usage: ftcompat {name}" in found[name]
        helps = {a.dest: a.help for a in sub._choices_actions}
        assert helps[name] and helps[name] in found[name]
    top = page.split("## `ftcompat ", 1)[0]
    assert named_arguments(top) == {"--config", "--matrix", "--version"}


def test_the_built_cli_page_has_an_anchor_per_subcommand(site):
    out, _ = site
    html = (out / "reference" / "cli" / "index.html").read_text()
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in sub.choices:
        assert f'id="ftcompat-{name}"' in html, name


# --- the config reference ---------------------------------------------------------------------------------

def schema_keys(node, schema):
    """Every property name the schema allows anywhere, found by a walk of its own."""
    if isinstance(node, dict):
        if "$ref" in node:
            yield from schema_keys(schema["$defs"][node["$ref"].rsplit("/", 1)[1]], schema)
        for key, value in node.items():
            if key == "properties":
                yield from value
            if key != "$defs":
                yield from schema_keys(value, schema)
    elif isinstance(node, list):
        for value in node:
            yield from schema_keys(value, schema)


def test_the_config_reference_lists_every_key_of_the_schema_and_of_a_project_file(hooks):
    from ftcompat.config.project import PROJECT_KEYS

    schema = json.loads((ROOT / "src" / "ftcompat" / "config" / "matrix.schema.json").read_text())
    page = hooks.config_reference()
    documented = {re.split(r"[.\[\] ]", path.rstrip("]").replace("[]", ""))[-1]
                  for path in re.findall(r"^\| `([^`]+)`", page, flags=re.MULTILINE)}
    documented |= {path.split(" (")[0].rsplit(".", 1)[-1]
                   for path in re.findall(r"^\| `([^`]+)`", page, flags=re.MULTILINE)}
    missing = set(schema_keys(schema, schema)) - documented
    assert not missing
    assert not set(PROJECT_KEYS) - documented  # extends, builtin_cases, case_dirs: the project file's own


# --- the known issues and the cases -----------------------------------------------------------------------

def test_the_known_issue_page_has_every_entry_of_the_matrix(hooks, site):
    issues = yaml.safe_load((ROOT / "matrix.yaml").read_text())["known_issues"]
    page = hooks.known_issues_reference()
    assert re.findall(r"^### `([^`]+)`$", page, flags=re.MULTILINE) == [i["id"] for i in issues]
    html = (site[0] / "reference" / "known-issues" / "index.html").read_text()
    assert all(i["url"] in html for i in issues)


def test_every_case_has_a_page_linked_from_the_generated_table(hooks, site):
    out, _ = site
    table = hooks.cases_table()
    for path in sorted((ROOT / "cases").glob("*.py")):
        case = path.stem
        assert (ROOT / "docs" / "findings" / f"{case}.md").is_file(), f"{case} has no findings page"
        assert f"[`{case}`](../findings/{case}.md)" in table
        assert (out / "findings" / case / "index.html").is_file()
    nav = (out / "cases" / "index.html").read_text()
    assert "phi3_generate" in nav and "Phi-3" in nav  # the docstring's first line is in the table


def test_an_unknown_marker_fails_instead_of_leaving_a_hole(hooks):
    with pytest.raises(ValueError, match="unknown generated section 'nope'"):
        hooks.generate("<!-- generated: nope -->")


def test_links_to_repository_files_go_to_the_repository_and_missing_ones_stay(hooks):
    repo = "https://github.com/o/r"
    out = hooks.repository_links("[c](../../cases/phi3_generate.py) [d](../../results/adhoc/) [p](pins.md) "
                                 "[x](../../cases/no_such_case.py) [w](https://example.org)", "guide/a.md", repo)
    assert "(https://github.com/o/r/blob/main/cases/phi3_generate.py)" in out
    assert "(https://github.com/o/r/tree/main/results/adhoc)" in out
    assert "(pins.md)" in out and "(../../cases/no_such_case.py)" in out and "(https://example.org)" in out


# --- the README -------------------------------------------------------------------------------------------

def test_the_readme_is_short():
    assert len(README.read_text().splitlines()) <= 160


def test_every_link_of_the_readme_resolves():
    links = re.findall(r"\]\(([^)#\s]+)", README.read_text())
    local = [link for link in links if not re.match(r"^[a-z]+:", link)]
    assert local and not [link for link in local if not (ROOT / link).exists()]


NUMBER = re.compile(r"(\d[\d,.]*)\s*(s|min|minutes|seconds|h|hours|tests|passed|skipped|failed|cells|combos|cases|"
                    r"GB|MB|GiB|MiB|KB|×|%)(?![\w-])")


def _numbers(data) -> set[str]:
    """Every number in a JSON document, as written and, for seconds, in whole seconds and minutes."""
    if isinstance(data, dict):
        return {n for v in data.values() for n in _numbers(v)}
    if isinstance(data, list):
        return {n for v in data for n in _numbers(v)}
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return {str(data), str(round(data)), str(round(data / 60))}
    return set()


def test_every_number_in_the_readme_comes_from_a_committed_result():
    text = README.read_text()
    claims = NUMBER.findall(text)
    runs = json.loads((ROOT / "benchmarks" / "test-suite-runs.json").read_text())["runs"]
    recorded = {str(v) for run in runs for v in run.values() if isinstance(v, (int, float))}
    # A number may also come from a result file the README links to (a bisection's steps and cost).
    for link in re.findall(r"\]\((results/[^)#\s]+\.json)\)", text):
        recorded |= _numbers(json.loads((ROOT / link).read_text()))
    assert claims, "the README quotes the test suite's durations"
    assert not [f"{n} {unit}" for n, unit in claims if n.replace(",", "") not in recorded]
    assert "benchmarks/test-suite-runs.json" in text  # and says where they come from


def quickstart():
    """The README's Quickstart commands: the bash block between the two ``<!-- quickstart -->`` markers."""
    block = README.read_text().split("<!-- quickstart -->")[1]
    return block.split("```bash\n", 1)[1].split("```", 1)[0]


def test_the_quickstart_installs_inits_runs_and_shows_the_grid():
    commands = [line.split("#")[0].strip() for line in quickstart().splitlines()]
    assert "ftcompat init" in commands and "ftcompat run" in commands and "ftcompat show" in commands
    assert any(c.startswith("pip install ") for c in commands)


def test_the_tutorials_example_project_file_validates_as_written(tmp_path, capsys):
    from ftcompat.cli import main

    page = (ROOT / "docs" / "guide" / "tutorial.md").read_text()
    example = page.split("`ftcompat.yaml` names only what is yours", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert main(["init", str(tmp_path)]) == 0  # the example's own case, ftcompat_cases/my_lora_step.py
    (tmp_path / "ftcompat.yaml").write_text(example)
    assert main(["--config", str(tmp_path / "ftcompat.yaml"), "validate"]) == 0, capsys.readouterr()
