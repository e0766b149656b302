"""Commit bisection over a real git history the test makes, each step judged by a fake runner (no installs)."""

import json
import subprocess

import pytest
from conftest import ROOT, record
from gitrepo import commit, git, history

from ftcompat.cli import main
from ftcompat.core import gitref
from ftcompat.core.domain import Matrix
from ftcompat.core.status import Status
from ftcompat.env import gitsource
from ftcompat.flows import bisect as release
from ftcompat.flows import bisect_commits, handoff
from ftcompat.flows.adhoc import parse_pins
from ftcompat.triage import commitdoc, report, report_md
from ftcompat.triage.commits import Ask, CommitBisector
from ftcompat.triage.repro import dependencies
from ftcompat.triage.trials import BisectError, CellRun, Result, Trial, Verdict

CELL = "answer[value]"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("hist") / "peft"
    ids = history(path)
    return gitsource.Repo("peft", str(path), path), ids


class Runner:
    """Judges a step by the package's real file at the pinned commit: ``answer()`` must return 1."""

    def __init__(self, repo, flaky_runs=(), untestable=()):
        self.repo, self.flaky_runs, self.untestable = repo, set(flaky_runs), set(untestable)
        self.calls = []

    def __call__(self, pins, runs):
        sha = gitref.ref_of(pins["peft"])
        self.calls.append((sha, runs))
        if sha in self.untestable:
            return Trial(reason="No solution found when resolving dependencies", install_s=1.0)
        source = git(self.repo.path, "show", f"{sha}:src/peft/__init__.py")
        ok = "return 1" in source
        out = []
        for k in range(runs):
            status = Status.PASS if ok or k in self.flaky_runs else Status.FAIL
            out.append((CellRun(CELL, status, "" if status == Status.PASS else "AssertionError: 2 != 1"),))
        return Trial(tuple(out), install_s=2.0, run_s=(1.0,) * runs)


def bisect(repo, good, bad, **kw):
    r, ids = repo
    runner = Runner(r, kw.pop("flaky_runs", ()), kw.pop("untestable", ()))
    ask = Ask("peft", r.commit(good), r.commit(bad), {"torch": "2.13.0"}, **kw)
    bis = CommitBisector(runner, r, ask, log=lambda *_: None)
    return bis, bis.run(), runner, ids


def test_a_break_is_found_with_its_pull_request(repo):
    bis, found, runner, ids = bisect(repo, "v0.1.0", "v0.2.0")
    assert found.verdict == Verdict.FOUND and found.direction == "regression"
    assert found.commit == ids["c3"] and found.before == ids["c2"]
    assert runner.calls[0] == (ids["c6"], 3) and runner.calls[1] == (ids["c0"], 1)  # flake screen first
    assert all(runs == 1 for _, runs in runner.calls[2:])
    doc = commitdoc.to_json(CELL, bis, found, {"good": "v0.1.0", "bad": "v0.2.0"}, "a local clone (peft)",
                            "https://github.com/huggingface/peft", repo[0].info, {"duration_s": 9.0})
    bad = doc["first_bad"]
    assert bad["sha"] == ids["c3"] and bad["pr"] == 3 and bad["subject"] == "Change the answer (#3)"
    assert bad["link"] == f"https://github.com/huggingface/peft/commit/{ids['c3']}"
    assert bad["pr_link"] == "https://github.com/huggingface/peft/pull/3" and bad["merge"] is False
    assert doc["steps"][1]["pins"]["peft"] == "@" + ids["c6"] and doc["held"] == {"torch": "2.13.0"}
    assert "first fails at peft" in doc["line"] and doc["line"].count("(#3)") == 1
    md = commitdoc.to_markdown(doc)
    assert "[#3](https://github.com/huggingface/peft/pull/3)" in md and "| merge commit | no |" in md
    assert f"| first bad | [{ids['c3'][:12]}](https://github.com/huggingface/peft/commit/" in md  # a link, not code


def test_the_step_count_is_logarithmic_in_the_path(repo):
    bis, found, runner, ids = bisect(repo, "v0.1.0", "v0.2.0")
    path = repo[0].first_parent_path(ids["c0"], ids["c6"])
    assert found.path_length == len(path) == 6  # c1 c2 c3 c4 m5 c6: the feature's own commits are not on it
    assert len(runner.calls) <= 2 + 3


def test_a_fix_is_found_when_the_bad_side_is_older(repo):
    _, found, _, ids = bisect(repo, "v0.3.0", "v0.2.0")
    assert found.verdict == Verdict.FOUND and found.direction == "fix"
    assert found.commit == ids["c7"] and found.before == ids["c6"]


def test_a_flaky_bad_side_is_reported_not_bisected(repo):
    bis, found, runner, _ = bisect(repo, "v0.1.0", "v0.2.0", flaky_runs=(1,))
    assert found.verdict == Verdict.FLAKY and "not bisected" in found.note
    assert len(runner.calls) == 2 and [s.verdict.value for s in bis.steps] == ["flaky", "not judged"]


def test_a_patch_release_on_its_own_branch_is_bisected_from_the_merge_base(repo):
    bis, found, runner, ids = bisect(repo, "v0.1.1", "v0.2.0")
    assert found.verdict == Verdict.FOUND and found.commit == ids["c3"]
    assert found.base == ids["c1"]  # where release-0.1 left main
    assert (ids["c1"], 1) in runner.calls and any("merge base" in n for n in found.notes)
    assert [s.phase for s in bis.steps][:3] == ["good side", "bad side", "merge base"]


def test_a_merge_base_that_already_fails_is_named(repo):
    # A fix made only on a release branch (off v0.2.0, which fails) and main's v0.4.0 (fails): the flip is on
    # the branch, not on the path from the merge base to main.
    r, ids = repo
    git(r.path, "checkout", "-q", "-b", "hotfix", ids["c6"])
    fixed_on_branch = commit(r.path, "Hotfix the answer", 1)
    git(r.path, "checkout", "-q", "main")
    bis, found, _, _ = bisect(repo, fixed_on_branch, "v0.4.0")
    assert found.verdict == Verdict.ENDPOINTS_WRONG and found.base == ids["c6"]
    assert "merge base" in found.note and "is bad, not good" in found.note
    assert [s.phase for s in bis.steps] == ["good side", "bad side", "merge base"]


def test_a_merged_pull_request_is_one_step_its_merge_commit(repo):
    bis, found, _, ids = bisect(repo, "v0.3.0", "v0.4.0")
    assert found.verdict == Verdict.FOUND and found.commit == ids["m9"]  # not w1 inside the merged branch
    doc = commitdoc.to_json(CELL, bis, found, {"good": "v0.3.0", "bad": "v0.4.0"}, "x", "/some/folder",
                            repo[0].info, {})
    assert doc["first_bad"]["merge"] is True and doc["first_bad"]["pr"] == 9
    assert doc["first_bad"]["link"] == f"https://github.com/huggingface/peft/commit/{ids['m9']}"  # public repo


def test_an_untestable_boundary_commit_gives_a_range(repo):
    r, ids = repo
    _, found, _, _ = bisect(repo, "v0.1.0", "v0.2.0", untestable=(ids["c3"],))
    assert found.verdict == Verdict.INCONCLUSIVE
    assert found.untested == (ids["c3"],) and found.candidates == (ids["c3"], ids["c4"])


def test_asking_for_a_fix_on_a_break_is_refused(repo):
    with pytest.raises(BisectError, match="drop --fix"):
        bisect(repo, "v0.1.0", "v0.2.0", fix=True)


def test_the_same_commit_twice_is_refused(repo):
    with pytest.raises(BisectError, match="same peft commit"):
        bisect(repo, "v0.2.0", "v0.2.0")


# --- the command line: bad input is exit 2 and writes nothing ------------------------------------------

@pytest.fixture()
def project(tmp_path, repo):
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "answer.py").write_text((ROOT / "tests" / "fixtures" / "commit_cases" / "answer.py")
                                                  .read_text())
    (tmp_path / "matrix.yaml").write_text((ROOT / "tests" / "fixtures" / "commit_cases" / "matrix.yaml").read_text())
    return tmp_path


def run_cli(project, capsys, *argv):
    code = main(["--config", str(project / "matrix.yaml"), "bisect", CELL, *argv,
                 "--out", str(project / "out" / "b.json")])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (("--good", "v0.1.0", "--bad", "v9.9.9"), "no branch, tag or commit 'v9.9.9'"),
    (("--good", "v0.1.0", "--bad", "v0.1.0"), "are the same peft commit"),
    (("--good", "v0.1.0", "--bad", "v0.2.0..main"), "is not a git ref"),
])
def test_bad_refs_are_exit_2_and_write_nothing(project, capsys, repo, argv, message):
    code, err = run_cli(project, capsys, "--commits", "peft", *argv, "--source", f"peft={repo[0].path}")
    assert code == 2 and message in err and not (project / "out").exists()


def test_a_source_that_is_no_git_repository_is_exit_2(project, capsys, tmp_path):
    (tmp_path / "plain").mkdir()
    code, err = run_cli(project, capsys, "--commits", "peft", "--good", "a", "--bad", "b",
                        "--source", f"peft={tmp_path / 'plain'}")
    assert code == 2 and "not a git repository" in err and str(tmp_path) not in err


def test_histories_that_never_meet_are_exit_2(project, capsys, repo):
    r, _ = repo
    git(r.path, "checkout", "-q", "--orphan", "elsewhere")
    git(r.path, "commit", "-q", "--allow-empty", "-m", "unrelated root")
    git(r.path, "tag", "-f", "lonely")
    git(r.path, "checkout", "-q", "-f", "main")
    code, err = run_cli(project, capsys, "--commits", "peft", "--good", "lonely", "--bad", "v0.2.0",
                        "--source", f"peft={r.path}")
    assert code == 2 and "share no history" in err


def test_torch_at_a_commit_is_exit_2(project, capsys, repo):
    code, err = run_cli(project, capsys, "--commits", "torch", "--good", "v2.5.0", "--bad", "v2.6.0")
    assert code == 2 and "torch is not pure Python" in err


def test_a_history_that_compiles_is_exit_2(project, capsys, tmp_path):
    src = tmp_path / "ext"
    src.mkdir()
    git(src, "init", "-q", "-b", "main")
    (src / "setup.py").write_text("")
    git(src, "add", "-A")
    git(src, "commit", "-q", "-m", "one")
    git(src, "tag", "a")
    (src / "kernel.cpp").write_text("int main(){}\n")
    git(src, "add", "-A")
    git(src, "commit", "-q", "-m", "two")
    code, err = run_cli(project, capsys, "--commits", "peft", "--good", "a", "--bad", "main",
                        "--source", f"peft={src}")
    assert code == 2 and "not pure Python" in err and "kernel.cpp" in err


def test_commits_flags_without_commits_are_refused(project, capsys):
    code, err = run_cli(project, capsys, "--good", "peft==0.1.0", "--bad", "peft==0.2.0", "--fix")
    assert code == 2 and "go with --commits" in err


def test_a_git_pin_on_the_command_line(repo):
    assert parse_pins(["trl@main", "peft@v0.17.0"])["trl"] == "@main"
    with pytest.raises(ValueError, match="not pure Python"):
        parse_pins(["torch@main"])
    with pytest.raises(ValueError, match="not a git ref"):
        parse_pins(["trl@main..v1"])


def test_a_ref_resolves_in_a_folder_and_names_near_misses(repo):
    r, ids = repo
    assert r.commit("v0.2.0") == ids["c6"] and r.commit(ids["c3"]) == ids["c3"]
    with pytest.raises(ValueError, match="did you mean v0.2.0"):
        r.commit("v0.2.O")


def test_a_recorded_version_carries_the_commit():
    direct = json.dumps({"url": "file:///x", "vcs_info": {"vcs": "git", "commit_id": "294f35b" + "0" * 33}})
    assert gitref.direct_commit(direct) == "294f35b" + "0" * 33
    assert gitref.commit_version("0.17.0.dev0", "294f35b" + "0" * 33) == "0.17.0.dev0+g294f35b"
    assert gitref.commit_version("2.0+cpu", "abcdef1" + "0" * 33) == "2.0+cpu.gabcdef1"
    assert gitref.commit_of("0.17.0.dev0+g294f35b") == "294f35b" and gitref.commit_of("0.17.0") is None
    assert gitref.direct_commit(json.dumps({"url": "file:///x", "dir_info": {}})) is None
    assert gitref.pr_number("Fix get_peft_model() (#4081)") == 4081
    assert gitref.pr_number("Merge pull request #12 from a/b") == 12 and gitref.pr_number("Release 0.2") is None


def test_git_is_needed(monkeypatch, tmp_path):
    monkeypatch.setattr(gitsource.shutil, "which", lambda _: None)
    with pytest.raises(OSError, match="git is not installed"):
        gitsource.open_repo("peft", str(tmp_path), tmp_path)


def test_subprocess_git_exists():
    assert subprocess.run(["git", "--version"], capture_output=True).returncode == 0


def test_a_report_names_the_commit_and_pull_request_a_commit_bisection_blamed():
    first = {"sha": "5fb8f4c64406" + "0" * 28, "short": "5fb8f4c64406", "subject": "Fix get_peft_model() (#4081)",
             "pr": 4081, "link": "https://github.com/huggingface/trl/commit/5fb8f4c64406",
             "pr_link": "https://github.com/huggingface/trl/pull/4081", "merge": False}
    doc = {"schema": commitdoc.SCHEMA, "verdict": "found", "package": "trl", "first_bad": first,
           "before": {"short": "d7283cd78aaa"}, "line": "`q[l]` first fails at trl 5fb8f4c64406"}
    bound = report.from_bisection(doc)
    assert bound.package == "trl" and bound.first_bad == "commit 5fb8f4c64406" and bound.commit == first
    cell = record("c::q[l]", "fail", env={"versions": {"trl": "0.23.0+g6adfd13"}})
    text = report_md._versions(bound, cell)
    assert ("- first bad commit: [5fb8f4c64406](https://github.com/huggingface/trl/commit/5fb8f4c64406) "
            "`Fix get_peft_model() (#4081)`, pull request "
            "[#4081](https://github.com/huggingface/trl/pull/4081)") in text
    assert report.from_bisection({**doc, "verdict": "flaky"}) is None


def test_adhoc_with_an_unknown_ref_is_exit_2_before_anything_is_built(project, capsys, repo):
    code = main(["--config", str(project / "matrix.yaml"), "adhoc", "peft@v9.9.9", "--source", f"peft={repo[0].path}",
                 "--cases", "answer", "--out", str(project / "out" / "a.json")])
    assert code == 2 and "no branch, tag or commit 'v9.9.9'" in capsys.readouterr().err
    assert not (project / "out").exists() and not (project / ".ftcompat" / "adhoc").exists()


def test_a_handoff_side_at_a_git_ref_takes_the_configs_source(project, repo):
    spec = handoff.SideSpec("from", ("peft@v0.2.0", "torch==2.13.0"), None, None)
    env = handoff.side_environment(project, spec, ("*",), "3.11", None, None, {"peft": str(repo[0].path)})
    assert env.combo.pins["peft"] == "@v0.2.0" and env.combo.sources == {"peft": str(repo[0].path)}
    assert f"peft @ git+{repo[0].path.as_uri()}@v0.2.0" in env.combo.requirements()


def test_a_release_bisections_answer_maps_to_the_tags_its_commits_lie_between(repo):
    r, _ = repo
    assert bisect_commits.release_to_commits(r, "0.1.1", "0.2.0") == ("v0.1.1", "v0.2.0")
    with pytest.raises(ValueError, match="no tag for peft 0.2.1"):
        bisect_commits.release_to_commits(r, "0.2.0", "0.2.1")


def test_a_repro_script_installs_a_main_lane_cell_from_its_commit():
    deps = dependencies({"trl": "1.10.0.dev0+gf2cd577", "torch": "2.13.0+cpu", "peft": "0.21.2"})
    assert "trl @ git+https://github.com/huggingface/trl@f2cd577" in deps
    assert "torch==2.13.0" in deps and "peft==0.21.2" in deps


def test_into_commits_goes_on_between_the_releases_tags_with_the_good_sides_other_pins(repo, tmp_path):
    r, _ = repo
    result = Result(Verdict.FOUND, "regression", ("peft",), {"peft": "0.1.1"}, {"peft": "0.2.0"}, ("0.2.0",), "peft")
    doc = {"case": CELL, "last_good": {"peft": "0.1.1"}, "first_bad": {"peft": "0.2.0"},
           "good": {"peft": "0.1.1", "torch": "2.13.0"}}
    matrix = Matrix((), {}, {}, sources={"peft": str(r.path)})
    ask = bisect_commits.after_release(release.Answer(doc, tmp_path / "b.json", result), matrix, tmp_path)
    assert (ask.pkg, ask.good, ask.bad, dict(ask.held)) == ("peft", "v0.1.1", "v0.2.0", {"torch": "2.13.0"})
