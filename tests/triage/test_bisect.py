"""Release bisection: the search with a fake step runner (no installs), the report, the CLI, one real run."""

import json
import math
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

from ftcompat.cli import main
from ftcompat.core.status import Status
from ftcompat.core.versions import key as version_key
from ftcompat.env import releases
from ftcompat.flows import bisect
from ftcompat.triage import bisectdoc
from ftcompat.triage import trials as trials
from ftcompat.triage.bisector import Bisector
from ftcompat.triage.trials import CellRun, Trial

CELL = "phi3_generate[remote_seen_tokens@tiny-phi3]"
SIG = "AttributeError: 'DynamicCache' object has no attribute 'seen_tokens'"
INDEX = {
    "transformers": ["4.52.4", "4.53.0", "4.53.1", "4.53.2", "4.53.3", "4.54.0", "4.54.1", "4.55.0", "4.55.1",
                     "4.55.2", "4.56.0rc1", "4.56.0", "4.56.1", "4.56.2"],
    "trl": ["0.19.0", "0.19.1", "0.20.0", "0.21.0", "0.22.0", "0.22.1", "0.22.2", "0.23.0", "0.23.1", "0.24.0"],
    "peft": ["0.16.0", "0.17.0", "0.17.1"],
    "accelerate": ["1.9.0", "1.10.0", "1.10.1"],
}
GOOD = {"torch": "2.13.0", "transformers": "4.53.3", "trl": "0.19.1", "peft": "0.16.0", "accelerate": "1.9.0"}


def lister(index=INDEX, pre=False):
    return lambda pkg, a, b: releases.between(index[pkg], a, b, pre)


class Fake:
    """A step runner from a rule ``pins -> status``; versions may be uninstallable or flaky."""

    def __init__(self, rule, uninstallable=(), flaky=(), runs=2):
        self.rule, self.uninstallable, self.flaky, self.runs = rule, set(uninstallable), set(flaky), runs
        self.calls = []

    def __call__(self, pins):
        self.calls.append(dict(pins))
        pinned = {(p, x) for p, x in pins.items()}
        if pinned & self.uninstallable:
            return Trial(reason="No solution found when resolving dependencies", install_s=1.0)
        status = Status(self.rule(pins))
        one = (CellRun(CELL, status, SIG if status == Status.FAIL else ""),
               CellRun("phi3_generate[native@tiny-phi3]", Status.PASS))
        runs = [one] * self.runs
        if pinned & self.flaky:
            flipped = Status.FAIL if status == Status.PASS else Status.PASS
            runs[1] = (CellRun(CELL, flipped, SIG if flipped == Status.FAIL else ""), one[1])
        return Trial(tuple(runs), install_s=2.0, run_s=(3.0,) * self.runs)


def breaks_from(pkg, version):
    return lambda pins: "fail" if version_key(pins[pkg]) >= version_key(version) else "pass"


def bad_side(**moved):
    return {**GOOD, **moved}


def doc_of(bis, result):
    return bisectdoc.to_json(CELL, bis, result)


def test_single_package_regression():
    fake = Fake(breaks_from("transformers", "4.54.0"))
    bis = Bisector(fake, lister(), GOOD, bad_side(transformers="4.56.2"), log=lambda *_: None)
    result = bis.run()
    doc = doc_of(bis, result)
    assert doc["verdict"] == "found" and doc["direction"] == "regression"
    assert doc["culprit"] == ["transformers"]
    assert doc["first_bad"] == {"transformers": "4.54.0"} and doc["last_good"] == {"transformers": "4.53.3"}
    assert doc["candidates"]["transformers"] == ["4.54.0", "4.54.1", "4.55.0", "4.55.1", "4.55.2", "4.56.0",
                                                "4.56.1"]  # no pre-release, no endpoints
    assert doc["envs_built"] == len(fake.calls) == len(doc["steps"])
    assert doc["steps"][0]["phase"] == "good side" and doc["steps"][1]["verdict"] == "bad"
    assert doc["line"] == (f"`{CELL}` first fails with transformers 4.54.0 (last good 4.53.3); "
                           f"bisected by ftcompat over 9 releases, {len(fake.calls)} environments")
    assert doc["untestable"] == [] and doc["watched"] == [CELL]  # the passing native cell is not watched


def test_fix_direction_reports_the_first_good_release():
    fixed = lambda pins: "fail" if version_key(pins["trl"]) < version_key("0.23.1") else "pass"  # noqa: E731
    good, bad = bad_side(trl="0.24.0"), bad_side(trl="0.20.0")
    bis = Bisector(Fake(fixed), lister(), good, bad, log=lambda *_: None)
    doc = doc_of(bis, bis.run())
    assert doc["verdict"] == "found" and doc["direction"] == "fix"
    assert doc["first_good"] == {"trl": "0.23.1"} and doc["last_bad"] == {"trl": "0.23.0"}
    assert doc["first_bad"] is None and doc["last_good"] is None
    assert "first passes with trl 0.23.1 (last failing 0.23.0)" in doc["line"]


def test_several_packages_one_flips():
    fake = Fake(breaks_from("transformers", "4.55.0"))
    bad = bad_side(transformers="4.56.2", trl="0.23.0", accelerate="1.10.1")
    bis = Bisector(fake, lister(), GOOD, bad, log=lambda *_: None)
    doc = doc_of(bis, bis.run())
    assert doc["verdict"] == "found" and doc["culprit"] == ["transformers"]
    assert doc["first_bad"] == {"transformers": "4.55.0"}
    singles = [s for s in doc["steps"] if s["phase"].startswith("move ")]
    assert [s["moved"] for s in singles] == [{"transformers": "4.56.2"}, {"trl": "0.23.0"}, {"accelerate": "1.10.1"}]
    assert [s["verdict"] for s in singles] == ["bad", "good", "good"]
    # The search holds the other packages at the good side's versions.
    searched = [s for s in doc["steps"] if s["phase"] == "search transformers"]
    assert searched and all(s["pins"]["trl"] == "0.19.1" for s in searched)


def test_several_packages_a_pair_flips():
    together = lambda pins: ("fail" if version_key(pins["trl"]) >= version_key("0.21.0")  # noqa: E731
                             and pins["peft"] == "0.17.1" else "pass")
    bad = bad_side(transformers="4.56.2", trl="0.23.0", peft="0.17.1")
    bis = Bisector(Fake(together), lister(), GOOD, bad, log=lambda *_: None)
    doc = doc_of(bis, bis.run())
    assert doc["verdict"] == "found" and doc["culprit"] == ["trl", "peft"] and doc["searched"] == "trl"
    assert doc["first_bad"] == {"trl": "0.21.0", "peft": "0.17.1"}
    assert doc["last_good"] == {"trl": "0.20.0", "peft": "0.17.1"}
    assert "only together" in doc["notes"][0]
    assert "first fails with trl 0.21.0 together with peft 0.17.1 (last good 0.20.0)" in doc["line"]


def test_pair_whose_members_cannot_move_alone_is_reported_not_searched():
    together = lambda pins: "fail" if pins["trl"] == "0.23.0" and pins["peft"] == "0.17.1" else "pass"  # noqa: E731
    fake = Fake(together)
    solo = {("trl", "0.23.0"), ("peft", "0.17.1")}

    def runner(pins):  # each installs only beside the other
        if len(solo & set(pins.items())) == 1:
            return Trial(reason="No solution found")
        return fake(pins)

    bis = Bisector(runner, lister(), GOOD, bad_side(trl="0.23.0", peft="0.17.1"), log=lambda *_: None)
    doc = doc_of(bis, bis.run())
    assert doc["verdict"] == "inconclusive" and doc["culprit"] == ["trl", "peft"]
    assert "neither could be tested alone" in doc["note"]
    assert len(doc["untestable"]) == 2


def test_no_flip_when_three_packages_are_needed():
    rule = lambda pins: "fail" if all(pins[p] != GOOD[p] for p in ("trl", "peft", "accelerate")) else "pass"  # noqa: E731
    bis = Bisector(Fake(rule), lister(), GOOD, bad_side(trl="0.23.0", peft="0.17.1", accelerate="1.10.1"),
                   log=lambda *_: None)
    doc = doc_of(bis, bis.run())
    assert doc["verdict"] == "no-flip" and doc["culprit"] == []
    assert len(doc["steps"]) == 2 + 3 + 3  # sides, singles, pairs


def test_uninstallable_versions_are_skipped_and_noted():
    # 4.55.1 is the first release probed (the middle one): the search goes on beside it.
    fake = Fake(breaks_from("transformers", "4.56.0"), uninstallable={("transformers", "4.55.1")})
    bis = Bisector(fake, lister(), GOOD, bad_side(transformers="4.56.2"), log=lambda *_: None)
    doc = doc_of(bis, bis.run())
    assert doc["verdict"] == "found" and doc["first_bad"] == {"transformers": "4.56.0"}
    assert doc["untestable"] and doc["untestable"][0]["moved"] == {"transformers": "4.55.1"}
    assert "not installable" in doc["untestable"][0]["why"]
    assert doc["envs_built"] == len(fake.calls) - 1  # the uninstallable step built nothing usable


def test_uninstallable_boundary_is_reported_as_a_range():
    fake = Fake(breaks_from("transformers", "4.54.0"), uninstallable={("transformers", "4.54.0")})
    bis = Bisector(fake, lister(), GOOD, bad_side(transformers="4.56.2"), log=lambda *_: None)
    doc = doc_of(bis, bis.run())
    assert doc["verdict"] == "inconclusive"
    assert doc["last_good"] == {"transformers": "4.53.3"} and doc["first_bad"] == {"transformers": "4.54.1"}
    assert doc["range"] == ["4.54.0", "4.54.1"] and doc["untested_between"] == ["4.54.0"]
    assert "first fails with one of transformers 4.54.0, 4.54.1 (last good 4.53.3; untestable: 4.54.0)" \
        in doc["line"]


def test_uninstallable_boundary_in_a_fix():
    fixed = lambda pins: "fail" if version_key(pins["trl"]) < version_key("0.23.1") else "pass"  # noqa: E731
    fake = Fake(fixed, uninstallable={("trl", "0.23.1")})
    bis = Bisector(fake, lister(), bad_side(trl="0.24.0"), bad_side(trl="0.20.0"), log=lambda *_: None)
    doc = doc_of(bis, bis.run())
    assert doc["verdict"] == "inconclusive" and doc["direction"] == "fix"
    assert doc["first_good"] == {"trl": "0.24.0"} and doc["last_bad"] == {"trl": "0.23.0"}
    assert doc["range"] == ["0.23.1", "0.24.0"]


def test_flaky_step_stops_the_bisection_with_both_signatures():
    fake = Fake(breaks_from("transformers", "4.54.0"), flaky={("transformers", "4.55.1")})
    bis = Bisector(fake, lister(), GOOD, bad_side(transformers="4.56.2"), log=lambda *_: None)
    doc = doc_of(bis, bis.run())
    assert doc["verdict"] == "flaky"
    last = doc["steps"][-1]
    assert last["verdict"] == "flaky" and last["moved"] == {"transformers": "4.55.1"}
    assert "run 1: fail" in last["note"] and "run 2: pass" in last["note"] and SIG in last["note"]
    assert "4.55.1" in doc["note"]


def test_flaky_endpoint_is_reported():
    fake = Fake(breaks_from("transformers", "4.54.0"), flaky={("transformers", "4.53.3")})
    bis = Bisector(fake, lister(), GOOD, bad_side(transformers="4.56.2"), log=lambda *_: None)
    doc = doc_of(bis, bis.run())
    assert doc["verdict"] == "flaky" and "good side is flaky" in doc["note"] and len(doc["steps"]) == 2


def test_endpoints_wrong_stops_after_two_envs():
    fake = Fake(breaks_from("transformers", "4.54.0"))
    swapped = Bisector(fake, lister(), bad_side(transformers="4.56.2"), GOOD, log=lambda *_: None)
    doc = doc_of(swapped, swapped.run())
    assert doc["verdict"] == "endpoints-wrong" and "swap --good and --bad" in doc["note"]
    assert len(fake.calls) == 2 and [s["verdict"] for s in doc["steps"]] == ["not good", "not bad"]
    same = Bisector(Fake(lambda pins: "pass"), lister(), GOOD, bad_side(transformers="4.56.2"), log=lambda *_: None)
    assert "nothing flips" in doc_of(same, same.run())["note"]


def test_endpoint_that_does_not_install_is_wrong():
    fake = Fake(breaks_from("transformers", "4.54.0"), uninstallable={("transformers", "4.56.2")})
    bis = Bisector(fake, lister(), GOOD, bad_side(transformers="4.56.2"), log=lambda *_: None)
    doc = doc_of(bis, bis.run())
    assert doc["verdict"] == "endpoints-wrong" and "bad side is not installable" in doc["note"]


def test_error_or_skip_in_a_step_is_untestable():
    def rule(pins):
        if pins["transformers"] == "4.55.1":
            return "error"
        return breaks_from("transformers", "4.56.0")(pins)

    bis = Bisector(Fake(rule), lister(), GOOD, bad_side(transformers="4.56.2"), log=lambda *_: None)
    doc = doc_of(bis, bis.run())
    assert doc["verdict"] == "found" and doc["first_bad"] == {"transformers": "4.56.0"}
    assert any("error" in u["why"] for u in doc["untestable"])


def test_pre_releases_join_the_search_only_when_asked():
    fake = Fake(breaks_from("transformers", "4.56.0rc1"))
    bis = Bisector(fake, lister(pre=True), GOOD, bad_side(transformers="4.56.2"), log=lambda *_: None)
    doc = doc_of(bis, bis.run())
    assert doc["first_bad"] == {"transformers": "4.56.0rc1"} and "4.56.0rc1" in doc["candidates"]["transformers"]
    bis = Bisector(Fake(breaks_from("transformers", "4.56.0rc1")), lister(), GOOD, bad_side(transformers="4.56.2"),
                   log=lambda *_: None)
    assert doc_of(bis, bis.run())["first_bad"] == {"transformers": "4.56.0"}


def test_versions_are_ordered_pep440():
    index = {"transformers": ["4.8.0", "4.9.0", "4.9.2", "4.10.0", "4.11.0", "4.12.0"]}
    bis = Bisector(Fake(breaks_from("transformers", "4.10.0")), lister(index), {"transformers": "4.8.0"},
                   {"transformers": "4.12.0"}, log=lambda *_: None)
    doc = doc_of(bis, bis.run())
    assert doc["candidates"]["transformers"] == ["4.9.0", "4.9.2", "4.10.0", "4.11.0"]
    assert doc["last_good"] == {"transformers": "4.9.2"} and doc["first_bad"] == {"transformers": "4.10.0"}


@pytest.mark.parametrize("n", [1, 7, 100, 1000])
def test_step_count_is_logarithmic(n):
    versions = [f"1.{i}.0" for i in range(n + 2)]
    for k in (1, n // 3 + 1, n + 1):
        fake = Fake(breaks_from("pkg", versions[k]))
        bis = Bisector(fake, lister({"pkg": versions}), {"pkg": versions[0]}, {"pkg": versions[-1]},
                       log=lambda *_: None)
        doc = doc_of(bis, bis.run())
        assert doc["first_bad"] == {"pkg": versions[k]}
        assert len(fake.calls) - 2 <= math.ceil(math.log2(n + 1))


def test_releases_are_listed_before_any_environment_is_built():
    fake = Fake(breaks_from("transformers", "4.54.0"))

    def unreachable(pkg, a, b):
        raise trials.BisectError(f"cannot list the releases of {pkg}")

    with pytest.raises(trials.BisectError, match="cannot list"):
        Bisector(fake, unreachable, GOOD, bad_side(transformers="4.56.2"), log=lambda *_: None).run()
    assert fake.calls == []
    bis = Bisector(fake, lister(), GOOD, bad_side(transformers="4.54.1", trl="0.20.0"), log=lambda *_: None)
    bis.run()
    assert bis.candidates == {"transformers": ["4.54.0"], "trl": []}


def test_repeated_pins_are_not_rebuilt():
    fake = Fake(breaks_from("transformers", "4.54.0"))
    bis = Bisector(fake, lister(), GOOD, bad_side(transformers="4.56.2", trl="0.20.0"), log=lambda *_: None)
    bis.run()
    keys = [tuple(sorted(c.items())) for c in fake.calls]
    assert len(keys) == len(set(keys))


def test_no_package_differs_is_an_error():
    with pytest.raises(trials.BisectError, match="no package differs"):
        Bisector(Fake(lambda p: "pass"), lister(), GOOD, dict(GOOD)).run()
    with pytest.raises(trials.BisectError, match="pin trl on both sides"):
        bisect.check_sides(GOOD, {**GOOD, "trl": None})
    assert trials.differing({"torch": "2.13.0+cpu"}, {"torch": "2.13.0"}) == []


def test_json_and_markdown_are_written(tmp_path):
    fake = Fake(breaks_from("transformers", "4.54.0"))
    bis = Bisector(fake, lister(), GOOD, bad_side(transformers="4.56.2"), log=lambda *_: None)
    result = bis.run()
    doc = bisectdoc.to_json(CELL, bis, result, {"device": "cpu"})
    out = bisect.write(doc, tmp_path / "x.json")
    text = out.read_text()
    data = json.loads(text)
    assert data["schema"] == "ftcompat-bisect/1" and list(data) == sorted(data)
    for key in ("case", "good", "bad", "direction", "culprit", "last_good", "first_bad", "verdict", "steps",
                "envs_built", "candidates", "untestable", "line"):
        assert key in data
    assert {"install_s", "run_s", "pins", "verdict", "signature"} <= set(data["steps"][1])
    md = out.with_suffix(".md").read_text()
    assert data["line"] in md and "| 1 | good side |" in md
    assert str(bisect.default_out(CELL, result)) == \
        "results/bisect/phi3_generate-remote_seen_tokens-tiny-phi3-transformers.json"


def test_a_found_bisection_refreshes_the_report_about_its_cell(tmp_path, monkeypatch):
    from ftcompat.triage import report

    reports = tmp_path / "reports"
    (reports / "r").mkdir(parents=True)
    meta = {"cell": "bad::phi3_generate[remote_seen_tokens@tiny-phi3]", "out": str(reports / "r")}
    (reports / "r" / "report.json").write_text(json.dumps(meta))
    (reports / "other").mkdir()
    (reports / "other" / "report.json").write_text(json.dumps({**meta, "cell": "bad::qlora_sft_trainable[legacy]"}))
    found = tmp_path / "b.json"
    found.write_text(json.dumps({"case": CELL, "verdict": "found"}))
    done = []
    monkeypatch.setattr(report, "generate", lambda m, log=print: done.append(m) or m["out"])
    bisect.refresh_report(found, reports, log=lambda *_: None)
    assert [m["cell"] for m in done] == [meta["cell"]] and done[0]["bisection"] == str(found)


# ---------------------------------------------------------------------------------------------
# CLI arguments


def cli(*argv):
    return main(["--matrix", str(ROOT / "matrix.yaml"), *argv])


def test_cli_unknown_combo(capsys):
    code = cli("bisect", CELL, "--good-combo", "tf4.53-trl0.91", "--bad-combo", "tf4.54-trl0.20",
               "--grid", str(ROOT / "results" / "grid.json"))
    err = capsys.readouterr().err
    assert code == 2 and "unknown combo 'tf4.53-trl0.91'" in err and "did you mean tf4.53-trl0.19" in err


def test_cli_selector_matching_no_case(capsys):
    code = cli("bisect", "phi4_generate[*]", "--good", "transformers==4.53.3", "--bad", "transformers==4.54.1")
    assert code == 2 and "matches no case" in capsys.readouterr().err
    code = cli("bisect", "phi3_generate[nope@*]", "--good", "transformers==4.53.3", "--bad", "transformers==4.54.1")
    err = capsys.readouterr().err
    assert code == 2 and "matches no cell" in err and "remote_seen_tokens@tiny-phi3" in err


def test_cli_nothing_differs_and_missing_side(capsys):
    code = cli("bisect", CELL, "--good-combo", "tf4.53-trl0.19", "--bad-combo", "tf4.53-trl0.19",
               "--grid", str(ROOT / "results" / "grid.json"))
    assert code == 2 and "no package differs" in capsys.readouterr().err
    code = cli("bisect", CELL, "--good", "transformers==4.53.3")
    assert code == 2 and "--bad PKG==VER" in capsys.readouterr().err
    code = cli("bisect", CELL, "--good", "transformers=4.53.3", "--bad", "transformers==4.54.1")
    assert code == 2 and "not a pin" in capsys.readouterr().err


def test_combo_pins_are_the_resolved_versions_without_local_labels():
    pins = bisect.combo_pins(str(ROOT / "results" / "grid.json"), "tf4.53-trl0.19")
    assert pins == {"torch": "2.13.0", "transformers": "4.53.3", "trl": "0.19.1", "peft": "0.16.0",
                    "bitsandbytes": "0.46.1", "accelerate": "1.9.0"}


# ---------------------------------------------------------------------------------------------
# One real bisection


E2E_MATRIX = """
version: 1
combos: []
models:
  tiny-phi3: {kind: tiny, arch: phi3, tokenizer: llama2-chat, seed: 0}
cases:
  phi3_generate: {models: [tiny-phi3]}
"""
FIXED = ["torch==2.13.0", "trl==0.19.1", "peft==0.16.0", "bitsandbytes==0.46.1", "accelerate==1.9.0"]


@pytest.mark.e2e
def test_real_bisection_finds_transformers_4_54_0(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    (root / "cases").mkdir()
    shutil.copy(ROOT / "cases" / "phi3_generate.py", root / "cases")
    (root / "matrix.yaml").write_text(E2E_MATRIX)
    code = "import sys; from ftcompat import cli; sys.exit(cli.main(sys.argv[1:]))"
    argv = ["bisect", CELL, "--good", "transformers==4.53.3", *FIXED, "--bad", "transformers==4.54.1", *FIXED,
            "--out", "out/trials.json"]
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=root, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((root / "out" / "trials.json").read_text())
    assert doc["verdict"] == "found" and doc["direction"] == "regression"
    assert doc["first_bad"] == {"transformers": "4.54.0"} and doc["last_good"] == {"transformers": "4.53.3"}
    assert doc["candidates"] == {"transformers": ["4.54.0"]}
    step_dirs = sorted((root / ".ftcompat" / "bisect").glob("*/*/"))
    assert doc["envs_built"] == len(doc["steps"]) == len(step_dirs) == 3
    assert all(not (d / "venv").exists() for d in step_dirs)  # removed after each step
    middle = doc["steps"][2]
    assert middle["moved"] == {"transformers": "4.54.0"} and middle["verdict"] == "bad"
    assert middle["env"]["versions"]["transformers"] == "4.54.0" and len(middle["run_s"]) == 2
    assert SIG in middle["signature"]
    assert "first fails with transformers 4.54.0 (last good 4.53.3)" in proc.stdout


def test_a_step_environment_counts_the_configs_combos_as_used_and_is_removed_after(fixture_matrix, tmp_path,
                                                                                    monkeypatch):
    # The disk cap evicts environments no combo uses first: a step must not make the matrix's look unused.
    seen = []

    def fake_run(environment, job, log):
        seen.append((environment, job))
        return bisect.runner.Outcome(refused="no such release")

    monkeypatch.setattr(bisect.runner, "run", fake_run)
    steps = bisect.EnvRunner(fixture_matrix, tmp_path, ("api",), "api[*]", tmp_path / "b", runs=2)
    trial = steps({"torch": "2.13.0", "transformers": "4.47.0"})
    env, job = seen[0]
    assert env.kind == "bisect-step" and not env.keep
    assert env.protected == tuple(c.id for c in fixture_matrix.combos)
    assert [o.name for o in job.outs] == ["run1.json", "run2.json"] and job.cached is False
    assert trial.reason == "no such release"
