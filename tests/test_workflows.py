"""The GitHub workflows: schema, hygiene, the plan against nox's own session list, and their shell steps run."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ftcompat.config.matrix import load as load_matrix
from ftcompat.flows import ciplan

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
CI, NIGHTLY, REUSABLE = WORKFLOWS / "ci.yml", WORKFLOWS / "nightly.yml", WORKFLOWS / "ftcompat.yml"
FILES = [CI, NIGHTLY, REUSABLE]
SHA_USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)@([0-9a-f]{40})\s+#\s*v\d+\.\d+\.\d+\s*$")


def load(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def jobs(path):
    return load(path)["jobs"]


def steps(path):
    for job_id, job in jobs(path).items():
        for step in job.get("steps", []):
            yield job_id, step


def runs(path):
    return [(job_id, step["run"]) for job_id, step in steps(path) if "run" in step]


def step_named(path, job_id, name):
    return next(s for s in jobs(path)[job_id]["steps"] if s.get("name") == name)


def walk(node, where=()):
    """Every string in the document with the path of keys that leads to it."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*where, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, (*where, i))
    elif isinstance(node, str):
        yield where, node


# --- schema -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_valid_against_the_github_workflow_schema(path):
    pytest.importorskip("check_jsonschema", reason="check-jsonschema (dev extra) ships the workflow schema")
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- hygiene ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version(path):
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    assert lines
    bad = [line.strip() for line in lines if not SHA_USES.match(line)]
    assert not bad, f"not pinned as `uses: owner/repo@<40 hex> # vX.Y.Z`: {bad}"
    parsed = [step["uses"] for _, step in steps(path) if "uses" in step]
    assert len(parsed) == len(lines)  # no `uses:` hiding in a form the line check missed


def test_one_commit_per_action_across_workflows():
    pins = {}
    for path in FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            m = SHA_USES.match(line)
            if m:
                pins.setdefault(m.group(1), set()).add(line.split("@", 1)[1].strip())
    assert {a: v for a, v in pins.items() if len(v) > 1} == {}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_permissions_are_restricted(path):
    wf = load(path)
    top = wf.get("permissions")
    if top not in ({}, {"contents": "read"}, "read-all"):
        assert all("permissions" in job for job in wf["jobs"].values())
    for job_id, job in wf["jobs"].items():
        if top is None:
            assert "permissions" in job, f"{job_id} has no permissions and none are set above it"


def test_nightly_grants_each_write_permission_to_one_job_only():
    wf = load(NIGHTLY)
    assert wf["permissions"] == {}
    writes = {}
    for job_id, job in wf["jobs"].items():
        assert "permissions" in job, job_id
        for scope, level in job["permissions"].items():
            if level == "write":
                writes.setdefault(scope, []).append(job_id)
    assert writes == {"contents": ["publish"], "pages": ["deploy"], "id-token": ["deploy"], "issues": ["issues"]}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_expression_is_pasted_into_a_script(path):
    for job_id, script in runs(path):
        assert "${{ secrets." not in script, job_id
        assert "${{ inputs." not in script and "github.event" not in script, job_id
        # Stricter: every value reaches a script through env:, so nothing is spliced into its text.
        assert "${{" not in script, f"{job_id}: expression inside run: {script[:200]}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_secrets_only_in_the_env_of_the_steps_that_need_them(path):
    for where, text in walk(load(path)):
        if "secrets." in text:
            assert where[0] == "jobs" and where[2] == "steps" and where[4] == "env", where
    for where, text in walk(load(path)):
        if "secrets.HF_TOKEN" in text:
            # The reusable workflow's one run job hands it to the matrix entries of GPU combos only.
            gated = path == REUSABLE and where[1] == "run" and text.startswith("${{ matrix.gpu && secrets.")
            assert where[1] == "run-gpu" or gated, f"the Hub token must reach the GPU jobs only: {where}"
    for _, script in runs(path):
        assert not re.search(r"(echo|printf)\b[^\n]*\$\{?\w*(TOKEN|SECRET)", script.replace("printf 'x-access", ""))


def test_gpu_jobs_run_on_the_labels_of_one_repository_variable():
    wf = jobs(NIGHTLY)
    gpu = wf["run-gpu"]
    assert gpu["runs-on"] == "${{ matrix.runner }}"
    assert gpu["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.gpu) }}"
    plan_step = next(s for s in wf["plan"]["steps"] if s.get("id") == "plan")
    setting = plan_step["env"]["GPU_RUNNER"]
    assert "vars.FTCOMPAT_GPU_RUNNER" in setting
    default = re.search(r"\|\|\s*'(.*)'\s*}}", setting).group(1)
    assert ciplan.gpu_runner_labels(default) == ciplan.DEFAULT_GPU_RUNNER
    assert '--gpu-runner "$GPU_RUNNER"' in plan_step["run"]
    readers = [where for where, text in walk(load(NIGHTLY)) if "FTCOMPAT_GPU_RUNNER" in text]
    # The one place it is read: the plan step's environment.
    assert [(w[:3], w[4:]) for w in readers] == [(("jobs", "plan", "steps"), ("env", "GPU_RUNNER"))]
    assert wf["run-cpu"]["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.cpu) }}"


def test_matrix_jobs_do_not_fail_fast():
    with_matrix = {job_id: job for job_id, job in jobs(NIGHTLY).items() if "strategy" in job}
    assert set(with_matrix) == {"run-cpu", "run-gpu", "adhoc"}
    assert all(job["strategy"]["fail-fast"] is False for job in with_matrix.values())


def test_each_combo_job_runs_nox_and_uploads_its_cells_even_when_it_fails():
    for job_id in ("run-cpu", "run-gpu"):
        job = jobs(NIGHTLY)[job_id]
        scripts = "\n".join(s.get("run", "") for s in job["steps"])
        assert 'nox -s "$COMBO"' in scripts
        upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
        assert upload["if"] == "always()"
        assert upload["with"]["name"] == "cells-${{ matrix.combo }}"
        assert upload["with"]["path"] == "results/cells/${{ matrix.combo }}.json"
        cache = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/cache@"))
        assert "hashFiles('matrix.yaml', 'pyproject.toml')" in cache["with"]["key"]
        assert "~/.cache/uv" in cache["with"]["path"]


def test_publish_collects_every_cell_then_deploys_the_page_from_its_own_job():
    wf = jobs(NIGHTLY)
    publish = wf["publish"]
    assert set(publish["needs"]) >= {"run-cpu", "run-gpu"}
    assert "!cancelled()" in publish["if"]
    download = next(s for s in publish["steps"] if s.get("uses", "").startswith("actions/download-artifact@"))
    assert download["with"] == {"pattern": "cells-*", "path": "results/cells", "merge-multiple": True}
    scripts = "\n".join(s.get("run", "") for s in publish["steps"])
    for command in ("ftcompat render", "ftcompat history latest", "ftcompat diff", "--format md",
                    "--issues regressions.json", "GITHUB_STEP_SUMMARY", "results/GRID.md",
                    "ftcompat history add results/grid.json", "ftcompat page"):
        assert command in scripts, command
    assert any(s.get("uses", "").startswith("actions/upload-pages-artifact@") for s in publish["steps"])
    deploy = wf["deploy"]
    assert deploy["environment"]["name"] == "github-pages"
    assert [s["uses"].split("@")[0] for s in deploy["steps"]] == ["actions/deploy-pages"]


def test_regression_issues_use_the_job_token_in_their_own_job():
    job = jobs(NIGHTLY)["issues"]
    step = step_named(NIGHTLY, "issues", "Open or update one issue per new regression")
    assert step["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert "--label ftcompat-regression" in step["run"]
    assert job["permissions"] == {"issues": "write"}


def test_triggers_schedule_and_dispatch_inputs():
    on = load(NIGHTLY)["on"]
    assert on["schedule"][0]["cron"]
    assert set(on["workflow_dispatch"]["inputs"]) == {"combos", "pins"}
    ci_on = load(CI)["on"]
    assert "push" in ci_on and "pull_request" in ci_on


def test_ci_runs_the_projects_ci_script_and_keeps_its_artifacts():
    steps_ = jobs(CI)["tests"]["steps"]
    scripts = "\n".join(s.get("run", "") for s in steps_)
    assert "bash .ci/run" in scripts and "chromium" in scripts
    upload = next(s for s in steps_ if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()" and upload["with"]["path"] == ".ci/artifacts/"


def test_every_ftcompat_command_in_the_workflows_exists():
    from ftcompat.cli import build_parser

    parser = build_parser()
    known = set(next(a for a in parser._actions if a.dest == "command").choices)
    used = {m.group(1) for path in FILES for _, script in runs(path)
            for m in re.finditer(r"\bftcompat ([a-z][a-z-]*)", script)}
    # Added by other parts of issue 5; their CLI registration lands with them.
    pending = {"ci-plan", "diff", "history", "page"} - known
    assert used - known - pending == set()
    if used & pending:
        pytest.skip(f"not registered in cli.py yet: {sorted(used & pending)}")


def test_zizmor_finds_nothing():
    zizmor = shutil.which("zizmor") or shutil.which("zizmor", path=str(Path(sys.executable).parent))
    if not zizmor:
        pytest.skip("zizmor (dev extra) not installed")
    proc = subprocess.run([zizmor, "--offline", "--persona", "pedantic", str(WORKFLOWS)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- the plan is nox's session list -------------------------------------------------------------------

def test_plan_is_the_nox_combo_sessions_of_matrix_yaml():
    sessions = ciplan.nox_sessions(ROOT / "noxfile.py")
    matrix = ciplan.plan(sessions, ciplan.DEFAULT_GPU_RUNNER, "ubuntu-latest", None)
    planned = [e["combo"] for e in matrix["include"]]
    assert planned == [s["session"] for s in sessions if "combo" in s["tags"]]
    assert planned == [c.id for c in load_matrix(ROOT / "matrix.yaml").combos]
    gpu = {e["combo"] for e in matrix["include"] if e["gpu"]}
    assert gpu == {c.id for c in load_matrix(ROOT / "matrix.yaml").combos if "gpu" in c.tags}
    assert gpu, "matrix.yaml has a gpu combo: a bare `nox -l --json` would have dropped it"


def test_a_bare_nox_listing_leaves_out_the_non_default_combos():
    # Why nox_sessions asks for `-t combo`: without it nox lists only the default (CPU) sessions.
    proc = subprocess.run([sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "-l", "--json"],
                          capture_output=True, text=True, check=True)
    bare = {s["session"] for s in json.loads(proc.stdout)}
    assert "gpu-latest" not in bare
    assert "gpu-latest" in {s["session"] for s in ciplan.nox_sessions(ROOT / "noxfile.py")}


def test_plan_follows_an_edited_matrix(tmp_path):
    data = yaml.safe_load((ROOT / "matrix.yaml").read_text(encoding="utf-8"))
    # Remove a combo no case names in its `combos:` (removing a named one is refused, as it should be).
    named = {sel for spec in data["cases"].values() for sel in (spec or {}).get("combos", [])}
    named |= {h[side] for h in data.get("handoffs") or [] for side in ("from", "to")}
    first = next(c for c in data["combos"] if c["id"] not in named and "gpu" not in c.get("tags", []))
    removed = first["id"]
    data["combos"] = [c for c in data["combos"] if c is not first] + [
        {**first, "id": "tf4.99-new", "description": "added by the test"},
        {**first, "id": "gpu-extra", "tags": ["gpu"], "description": "a second gpu lane"},
    ]
    (tmp_path / "matrix.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    shutil.copy(ROOT / "noxfile.py", tmp_path / "noxfile.py")
    for name in ("src", "cases"):
        (tmp_path / name).symlink_to(ROOT / name)
    edited = ciplan.plan(ciplan.nox_sessions(tmp_path / "noxfile.py"), ["self-hosted", "h100"], "ubuntu-latest", None)
    original = ciplan.plan(ciplan.nox_sessions(ROOT / "noxfile.py"), ["self-hosted", "h100"], "ubuntu-latest", None)
    ids = [e["combo"] for e in edited["include"]]
    before = [e["combo"] for e in original["include"] if e["combo"] != removed]
    pairs = [c for c in before if "~" in c]  # handoff pairs' rows follow every combo
    assert pairs and ids == [c for c in before if c not in pairs] + ["tf4.99-new", "gpu-extra"] + pairs
    by_id = {e["combo"]: e for e in edited["include"]}
    assert by_id["tf4.99-new"]["runner"] == "ubuntu-latest"
    assert by_id["gpu-extra"]["runner"] == ["self-hosted", "h100"]


# --- the shell steps, run against stand-ins for git's remote, gh and ftcompat -------------------------

FAKE_FTCOMPAT = """#!/bin/bash
all="$*"
if [ "$1" = "--config" ]; then shift 2; fi
case "$1 $2" in
  "history latest") f=$(ls results/history/*.json 2>/dev/null | sort | tail -1); [ -n "$f" ] || exit 1; echo "$f";;
  "history add") mkdir -p results/history; cp "$3" "results/history/$NIGHT-0123abcd.json";;
  *) echo "ftcompat $all";;
esac
"""


def script(job_id, name):
    return "set -eo pipefail\n" + step_named(NIGHTLY, job_id, name)["run"]


def bash(text, cwd, env):
    proc = subprocess.run(["bash", "-c", text], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture
def shell_env(tmp_path):
    if not (shutil.which("git") and shutil.which("bash") and shutil.which("jq")):
        pytest.skip("needs git, bash and jq")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ftcompat").write_text(FAKE_FTCOMPAT)
    (bin_dir / "ftcompat").chmod(0o755)
    (tmp_path / "home").mkdir()
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path / "home"), "GIT_CONFIG_NOSYSTEM": "1",
            "HISTORY_BRANCH": "ftcompat-history", "GH_TOKEN": "token", "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": "1", "COMPLETE": "true", "LANG": "C.UTF-8"}


def test_history_branch_is_created_then_restored_and_extended(tmp_path, shell_env):
    origin = tmp_path / "origin.git"
    env = {**shell_env, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    bash(f"git init -q --bare {origin} && git init -q seed && cd seed && echo hi >README && git add README"
         f" && git commit -qm init && git push -q {origin} HEAD:refs/heads/main", tmp_path, env)

    def night(date):
        work = tmp_path / f"ws-{date}"
        bash(f"git clone -q --depth 1 -b main file://{origin} {work}", tmp_path, env)
        (work / "results").mkdir()
        (work / "results" / "grid.json").write_text(json.dumps({"night": date}))
        night_env = {**env, "NIGHT": date}
        out = bash(script("publish", "Restore the history of earlier nights"), work, night_env)
        bash("ftcompat history add results/grid.json", work, night_env)
        bash(script("publish", "Push the grid to the history branch"), work, night_env)
        return out

    assert "0 earlier grids" in night("2026-11-20")
    assert "1 earlier grids" in night("2026-11-21")
    tree = bash(f"git --git-dir={origin} ls-tree --name-only ftcompat-history", tmp_path, env).split()
    assert tree == ["2026-11-20-0123abcd.json", "2026-11-21-0123abcd.json"]  # the grids alone, not main's files
    assert "basic" not in bash(f"git --git-dir={origin} config --list", tmp_path, env)


def test_compare_step_summarises_and_marks_a_partial_run(tmp_path, shell_env):
    (tmp_path / "results" / "history").mkdir(parents=True)
    (tmp_path / "results" / "history" / "2026-11-20-0123abcd.json").write_text("{}")
    (tmp_path / "results" / "GRID.md").write_text("# the grid\n")
    summary = tmp_path / "summary.md"
    env = {**shell_env, "GITHUB_STEP_SUMMARY": str(summary), "COMPLETE": "false",
           "PREVIOUS_GRID": "results/history/2026-11-20-0123abcd.json"}
    bash(script("publish", "Compare with the previous grid"), tmp_path, env)
    text = summary.read_text()
    assert "ftcompat diff results/history/2026-11-20-0123abcd.json results/grid.json --format md" in text
    assert "not recorded in history" in text and text.rstrip().endswith("# the grid")
    assert json.loads((tmp_path / "regressions.json").read_text()) == []


def test_render_step_takes_the_previous_grid_before_rendering_without_history(tmp_path, shell_env):
    (tmp_path / "results" / "history").mkdir(parents=True)
    (tmp_path / "results" / "history" / "2026-11-20-0123abcd.json").write_text("{}")
    github_env = tmp_path / "github_env"
    out = bash(script("publish", "Render the grid"), tmp_path, {**shell_env, "GITHUB_ENV": str(github_env)})
    assert github_env.read_text() == "PREVIOUS_GRID=results/history/2026-11-20-0123abcd.json\n"
    assert "ftcompat render --no-history" in out
    (tmp_path / "results" / "history" / "2026-11-20-0123abcd.json").unlink()
    github_env.unlink()
    bash(script("publish", "Render the grid"), tmp_path, {**shell_env, "GITHUB_ENV": str(github_env)})
    assert github_env.read_text() == "PREVIOUS_GRID=\n"  # first night: nothing to compare with


def test_adhoc_step_passes_each_pin_as_one_argument(tmp_path, shell_env):
    summary = tmp_path / "summary.md"
    env = {**shell_env, "GITHUB_STEP_SUMMARY": str(summary), "PINS": "transformers==4.56.2 trl==0.23.0",
           "ADHOC_ID": "adhoc-transformers4.56.2-trl0.23.0"}
    out = bash(script("adhoc", "Run the cases on the ad-hoc pins"), tmp_path, env)
    assert "ftcompat adhoc transformers==4.56.2 trl==0.23.0 --out " \
           "results/adhoc/adhoc-transformers4.56.2-trl0.23.0.json" in out
    assert "ftcompat show results/adhoc/adhoc-transformers4.56.2-trl0.23.0.json" in summary.read_text()


FAKE_GH = """#!/bin/bash
printf '%s\\n' "$*" >>gh.log
if [ "$1 $2" = "issue list" ]; then
  echo '[{"number": 7, "title": "Regression in tf4.54-trl0.20::phi3_generate[remote_seen_tokens@tiny-phi3]"},
         {"number": 9, "title": "unrelated"}]'
fi
"""


def test_issue_step_comments_on_the_open_issue_of_a_cell_else_opens_one(tmp_path, shell_env):
    (tmp_path / "bin" / "gh").write_text(FAKE_GH)
    (tmp_path / "bin" / "gh").chmod(0o755)
    hostile = "latest::api_surface[import_peft@tiny-llama]"
    (tmp_path / "regressions.json").write_text(json.dumps([
        {"cell": "tf4.54-trl0.20::phi3_generate[remote_seen_tokens@tiny-phi3]", "title": "t1",
         "body": "first", "labels": ["ftcompat-regression"]},
        {"cell": hostile, "title": f"New failure $(touch pwned) `id` in {hostile}",
         "body": "second $(touch pwned)", "labels": ["ftcompat-regression"]},
    ]))
    env = {**shell_env, "RUN_URL": "https://example.invalid/run/1"}
    bash(script("issues", "Open or update one issue per new regression"), tmp_path, env)
    log = (tmp_path / "gh.log").read_text().splitlines()
    assert log[0].startswith("label create ftcompat-regression")
    assert "issue comment 7 --body-file body.md" in log
    assert f"issue create --title New failure $(touch pwned) `id` in {hostile} --body-file body.md " \
           "--label ftcompat-regression" in log
    assert not (tmp_path / "pwned").exists()
    assert "second $(touch pwned)" in (tmp_path / "body.md").read_text()


def test_issue_step_does_nothing_without_regressions(tmp_path, shell_env):
    (tmp_path / "regressions.json").write_text("[]")
    out = bash(script("issues", "Open or update one issue per new regression"), tmp_path, shell_env)
    assert "No new regressions." in out


# --- the reusable workflow users call (ftcompat.yml) ---------------------------------------------------

# The example users copy: docs/guide/nightly-ci.md, between two <!-- reusable-workflow-example --> markers.
NIGHTLY_GUIDE = ROOT / "docs" / "guide" / "nightly-ci.md"


def reusable(job_id, name):
    return "set -eo pipefail\n" + step_named(REUSABLE, job_id, name)["run"]


def test_reusable_workflow_is_called_with_the_inputs_the_guide_example_gives():
    wf = load(REUSABLE)
    call = wf["on"]["workflow_call"]
    guide = NIGHTLY_GUIDE.read_text(encoding="utf-8")
    example = yaml.safe_load(guide.split("<!-- reusable-workflow-example -->", 2)[1].split("```yaml", 1)[1]
                             .split("```", 1)[0])
    if True in example:
        example["on"] = example.pop(True)
    job = example["jobs"]["ftcompat"]
    assert job["uses"].split("@")[0].endswith("/.github/workflows/ftcompat.yml")
    assert re.fullmatch(r"[0-9a-f]{40}", job["uses"].split("@")[1].split()[0])  # pinned by commit
    assert set(job["with"]) <= set(call["inputs"])
    assert set(job.get("secrets", {})) <= set(call["secrets"])
    assert job["permissions"] == {"contents": "read", "issues": "write"}  # what the issues job needs, no more


def test_reusable_workflow_example_is_a_valid_workflow(tmp_path):
    pytest.importorskip("check_jsonschema", reason="check-jsonschema (dev extra) ships the workflow schema")
    guide = NIGHTLY_GUIDE.read_text(encoding="utf-8")
    block = guide.split("<!-- reusable-workflow-example -->", 2)[1].split("```yaml", 1)[1].split("```", 1)[0]
    (tmp_path / "example.yml").write_text(block)
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           str(tmp_path / "example.yml")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_reusable_run_step_passes_config_combo_and_each_case_as_arguments(tmp_path, shell_env):
    (tmp_path / "sub" / "results" / "cells").mkdir(parents=True)
    stale = tmp_path / "sub" / "results" / "cells" / "prod.json"
    stale.write_text("{}")
    github_env = tmp_path / "github_env"
    env = {**shell_env, "GITHUB_ENV": str(github_env), "CONFIG": "sub/my config.yaml", "COMBO": "prod",
           "CASES": "api_* my_lora_step"}
    out = bash(reusable("run", "Run the combo"), tmp_path, env)
    expected = "ftcompat --config sub/my config.yaml run --combos prod --no-render --cases api_* my_lora_step"
    assert out.strip() == expected
    assert github_env.read_text() == "RESULTS=sub/results\n" and not stale.exists()
    out = bash(reusable("run", "Run the combo"), tmp_path, {**env, "CASES": ""})
    assert out.strip() == "ftcompat --config sub/my config.yaml run --combos prod --no-render"
    # The upstream-main lane's sources (a fork, a mirror) reach the run as --source, one per package.
    out = bash(reusable("run", "Run the combo"), tmp_path, {**env, "CASES": "", "SOURCES": "trl=https://x/trl.git peft=https://y/peft"})
    assert out.strip() == ("ftcompat --config sub/my config.yaml run --combos prod --no-render --source "
                           "trl=https://x/trl.git --source peft=https://y/peft")


def test_reusable_grid_step_compares_with_the_cached_history_and_writes_the_summary(tmp_path, shell_env):
    (tmp_path / "results" / "history").mkdir(parents=True)
    (tmp_path / "results" / "history" / "2026-11-20-0123abcd.json").write_text("{}")
    (tmp_path / "results" / "GRID.md").write_text("# the grid\n")
    summary = tmp_path / "summary.md"
    env = {**shell_env, "GITHUB_STEP_SUMMARY": str(summary), "CONFIG": "ftcompat.yaml", "RESULTS": "results"}
    out = bash(reusable("grid", "Render the grid and compare it with the previous run's"), tmp_path, env)
    assert "ftcompat --config ftcompat.yaml render --results results" in out
    text = summary.read_text()
    assert "ftcompat diff results/history/2026-11-20-0123abcd.json results/grid.json --format md " \
           "--issues results/regressions.json" in text
    assert text.rstrip().endswith("# the grid")
    (tmp_path / "results" / "history" / "2026-11-20-0123abcd.json").unlink()
    summary.unlink()
    bash(reusable("grid", "Render the grid and compare it with the previous run's"), tmp_path, env)
    assert "No earlier grid in the cache" in summary.read_text()
    assert json.loads((tmp_path / "results" / "regressions.json").read_text()) == []


def test_reusable_issue_step_files_through_ftcompat(tmp_path, shell_env):
    out = bash(reusable("issues", "Open or update one issue per new regression"), tmp_path,
               {**shell_env, "RUN_URL": "https://example.invalid/run/1"})
    assert out.strip() == "ftcompat file-issues regressions.json --run-url https://example.invalid/run/1"
