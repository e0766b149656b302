"""Safe pins: which combo is picked, what is blamed, and the files pip and uv read."""

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, record

from ftcompat import cli
from ftcompat.env.build import find_uv
from ftcompat.results.grid import Grid
from ftcompat.triage import pins, pinsfiles

BASE = {"torch": "2.13.0+cpu", "transformers": "4.57.6", "trl": "0.25.1", "peft": "0.18.0",
        "bitsandbytes": "0.50.2", "accelerate": "1.12.0", "datasets": "4.4.1", "tokenizers": "0.22.1"}
ISSUE = {"id": "trl-freeze", "url": "https://github.com/huggingface/trl/issues/3926", "summary": "s",
         "workaround": "pass peft_config", "when": {"trl": ">=0.20.0,<0.23.1", "peft": ">=0.17"}}


def cell(combo, column, status="pass", versions=None, issue=None, signature=None):
    """One cell record as the harness writes it, triaged like grid.merge does."""
    case = column.split("[", 1)[0]
    bad = status in ("fail", "error")
    return record(f"{combo}::{column}", status, env={"versions": versions},
                  signature=signature or (f"AssertionError: {case} broke" if bad else None),
                  known_issue=issue if status != "pass" else None,
                  triage=("known" if issue else "new") if bad else None)


def grid(rows):
    """A grid from ``{combo: (version overrides, {column: status or (status, issue)})}``."""
    cells, combos = [], []
    for combo, (overrides, statuses) in rows.items():
        versions = {**BASE, **overrides}
        combos.append({"id": combo, "ran": True, "resolved": versions, "device": {"name": "test cpu"}})
        for column, status in statuses.items():
            status, issue = status if isinstance(status, tuple) else (status, None)
            cells.append(cell(combo, column, status, versions, issue))
    columns = tuple(dict.fromkeys(c.column for c in cells))
    return Grid(tuple(cells), tuple(combos), columns, "2026-11-22T00:00:00Z")


OK = {"sft[legacy]": "pass", "sft[recommended]": "pass", "gen[native@tiny]": "pass"}


def test_picks_the_newest_combo_whose_selected_cells_all_pass():
    g = grid({"old": ({"transformers": "4.53.3", "trl": "0.19.1"}, OK),
              "mid": ({"transformers": "4.57.6", "trl": "0.25.1"}, OK),
              "new": ({"transformers": "5.4.0", "trl": "0.29.1"}, {**OK, "sft[legacy]": "fail"})})
    sp = pins.safe_pins(g)
    assert sp.pick.combo == "mid"
    trl = next(a for a in sp.packages if a.package == "trl")
    assert trl.picked == "0.25.1" and trl.known_good == ("0.19.1", "0.25.1")
    assert trl.newer == (("0.29.1", "new: sft[legacy] is fail (AssertionError: sft broke)"),)
    # Narrowing the cases changes the answer: the newest combo passes the recommended variant.
    assert pins.safe_pins(g, ["sft[recommended]", "gen"]).pick.combo == "new"


def test_newness_compares_versions_not_strings():
    g = grid({"a": ({"transformers": "4.9.0"}, OK), "b": ({"transformers": "4.10.0"}, OK)})
    assert pins.safe_pins(g).pick.combo == "b"


def test_a_skipped_cell_was_not_checked_so_it_does_not_qualify():
    g = grid({"old": ({"transformers": "4.53.3"}, OK),
              "new": ({"transformers": "5.4.0"}, {**OK, "gen[native@tiny]": "skip"})})
    sp = pins.safe_pins(g)
    assert sp.pick.combo == "old"
    transformers = next(a for a in sp.packages if a.package == "transformers")
    assert "gen[native@tiny] is skip" in dict(transformers.newer)["5.4.0"]


def test_known_failures_disqualify_unless_allowed():
    g = grid({"old": ({"transformers": "4.53.3", "trl": "0.19.1"}, OK),
              "new": ({"trl": "0.22.2"}, {**OK, "sft[legacy]": ("fail", ISSUE)})})
    assert pins.safe_pins(g).pick.combo == "old"
    tolerant = pins.safe_pins(g, allow_known=True)
    assert tolerant.pick.combo == "new"
    assert "pass peft_config" in pinsfiles.report_text(tolerant)
    assert "known issues tolerated" in pinsfiles.constraints_text(tolerant)


def test_no_combo_qualifies_shows_the_closest_and_writes_no_constraints():
    g = grid({"a": ({"trl": "0.19.1"}, {**OK, "sft[legacy]": "fail", "sft[recommended]": "fail"}),
              "b": ({"trl": "0.20.0"}, {**OK, "sft[legacy]": "error"}),
              "c": ({"trl": "0.21.0"}, {**OK, "gen[native@tiny]": "skip"})})
    sp = pins.safe_pins(g)
    assert sp.pick is None
    assert [v.combo for v in sp.closest(2)] == ["c", "b"]
    text = pinsfiles.report_text(sp)
    assert "No combo qualifies" in text and "`sft[legacy]`: error" in text
    with pytest.raises(ValueError, match="no combo qualifies"):
        pinsfiles.constraints_text(sp)


def test_a_known_issue_blames_only_its_packages_whose_version_never_passes():
    # peft 0.18.0 is named by the issue too, but it passes in "good": it must not be excluded.
    g = grid({"good": ({"trl": "0.25.1"}, OK),
              "bad": ({"trl": "0.22.2"}, {**OK, "sft[legacy]": ("fail", ISSUE)})})
    sp = pins.safe_pins(g)
    avoid = {(a.package, a.version) for adv in sp.packages for a in adv.avoid}
    assert avoid == {("trl", "0.22.2")}
    text = pinsfiles.constraints_text(sp)
    assert "trl==0.25.1" in text and "trl!=0.22.2" in text and "peft!=" not in text


def test_a_new_failure_is_blamed_only_when_one_package_explains_it():
    one = grid({"good": ({}, OK), "bad": ({"trl": "0.22.2"}, {**OK, "sft[legacy]": "fail"})})
    blamed = {(a.package, a.version) for a in pins.blame(one.cells)[0]}
    assert blamed == {("trl", "0.22.2")}
    two = grid({"good": ({}, OK), "bad": ({"trl": "0.22.2", "peft": "0.17.0"}, {**OK, "sft[legacy]": "fail"})})
    avoid, unattributed = pins.blame(two.cells)
    assert avoid == [] and [c.id for c in unattributed] == ["bad::sft[legacy]"]
    assert "ftcompat bisect" in pinsfiles.report_text(pins.safe_pins(two))


def test_picked_versions_are_never_excluded():
    g = grid({"a": ({"trl": "0.19.1"}, OK), "b": ({"trl": "0.20.0"}, {**OK, "sft[legacy]": ("fail", ISSUE)}),
              "c": ({"trl": "0.25.1", "peft": "0.17.1"}, {**OK, "sft[legacy]": ("fail", ISSUE)})})
    sp = pins.safe_pins(g)
    lines = pinsfiles.constraints_text(sp).splitlines()
    pinned = {line.split("==")[0]: line.split("==")[1] for line in lines if "==" in line}
    excluded = {tuple(line.split("!=")) for line in lines if "!=" in line}
    assert not any(pinned.get(p) == v for p, v in excluded)


def test_constraints_use_public_versions_and_pin_what_the_cases_ran_with():
    sp = pins.safe_pins(grid({"a": ({}, OK)}))
    text = pinsfiles.constraints_text(sp)
    assert "torch==2.13.0\n" in text and "+cpu" not in text
    assert "datasets==4.4.1" in text and "tokenizers==0.22.1" in text
    assert "trl==0.25.1" in pinsfiles.requirements_text(sp)
    assert "datasets" not in pinsfiles.requirements_text(sp)


def test_kept_pins_rule_out_combos_before_the_newest_is_picked():
    g = grid({"old": ({"torch": "2.5.1", "transformers": "4.47.1"}, OK),
              "mid": ({"torch": "2.13.0+cpu", "transformers": "4.57.6"}, OK),
              "new": ({"torch": "2.15.0", "transformers": "5.4.0"}, OK)})
    assert pins.safe_pins(g).pick.combo == "new"
    sp = pins.safe_pins(g, keep=[pins.parse_keep("torch==2.13.0")])  # the local +cpu tag is not part of it
    assert sp.pick.combo == "mid" and [v.combo for v in sp.kept] == ["mid"]
    torch = next(a for a in sp.packages if a.package == "torch")
    assert ("2.15.0", "new: outside the kept pins (torch 2.15.0 is not ==2.13.0)") in torch.newer
    ranges = [pins.parse_keep("transformers<5"), pins.parse_keep("torch>=2.6")]
    assert pins.safe_pins(g, keep=ranges).pick.combo == "mid"
    assert pins.safe_pins(g, keep=[pins.parse_keep("transformers==4.47.*")]).pick.combo == "old"
    assert "kept pins: torch==2.13.0" in pinsfiles.constraints_text(sp).splitlines()[1]


def test_kept_python_matches_the_declared_or_resolved_version():
    g = grid({"a": ({}, OK), "b": ({}, OK)})
    combos = ({**g.combos[0], "python": "3.10", "python_resolved": "3.10.14"},
              {**g.combos[1], "python": "3.11", "python_resolved": "3.11.7"})
    g = Grid(g.cells, combos, g.columns, g.generated_at)
    assert pins.safe_pins(g, keep=[pins.parse_keep("python=3.10")]).pick.combo == "a"
    assert pins.safe_pins(g, keep=[pins.parse_keep("python==3.11.7")]).pick.combo == "b"
    none = pins.safe_pins(g, keep=[pins.parse_keep("python=3.12")])
    assert none.pick is None and not none.kept
    text = pinsfiles.report_text(none)
    assert "No combo of the grid meets the kept pins" in text and "ftcompat adhoc --python 3.12 --cases *" in text


@pytest.mark.parametrize("bad, says", [("torch", "write PACKAGE==VERSION"), ("torch==2.x", "not a version specifier"),
                                       ("torhc==2.5.1", "records no version of 'torhc'; did you mean 'torch'?")])
def test_bad_kept_pins_are_refused_with_one_message(bad, says):
    from ftcompat.core.errors import InputError

    g = grid({"a": ({}, OK)})
    with pytest.raises(InputError, match=re.escape(says)):
        pins.check_keep(g, [pins.parse_keep(bad)])


def test_cli_writes_the_files_and_exits_1_without_an_answer(tmp_path):
    out = tmp_path / "pins"
    assert cli.main(["pins", "--grid", str(ROOT / "results" / "grid.json"), "--out", str(out)]) == 1
    assert not out.exists()  # no answer: nothing written, not a PINS.md beside no constraints
    assert cli.main(["pins", "--grid", str(ROOT / "results" / "grid.json"), "--out", str(out),
                     "--cases", "qlora_sft_trainable", "phi3_generate[native@*]"]) == 0
    assert "transformers==" in (out / "constraints.txt").read_text()
    assert (out / "requirements.txt").exists()


@pytest.mark.e2e
@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_constraints_install_in_a_fresh_environment(tmp_path, installer):
    """pip and uv both accept the file, and installing under it gets exactly the pinned versions."""
    out = tmp_path / "pins"
    assert cli.main(["pins", "--grid", str(ROOT / "results" / "grid.json"), "--out", str(out),
                     "--cases", "qlora_sft_trainable", "learns_something"]) == 0
    constraints = out / "constraints.txt"
    pinned = dict(line.split("==") for line in constraints.read_text().splitlines() if "==" in line)
    venv = tmp_path / "venv"
    uv = find_uv()
    assert uv, "uv is a dependency of ftcompat"
    env = {**os.environ, "VIRTUAL_ENV": str(venv)}
    # transformers and tokenizers alone: a real install under the constraints without a 3 GB torch.
    if installer == "uv":
        subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(venv)], check=True)
        cmd = [uv, "pip", "install", "-q", "-c", str(constraints), "transformers", "tokenizers"]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        cmd = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c", str(constraints),
               "transformers", "tokenizers"]
    subprocess.run(cmd, check=True, env=env)
    got = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "import transformers, tokenizers; print(transformers.__version__, tokenizers.__version__)"],
                         check=True, capture_output=True, text=True).stdout.split()
    assert got == [pinned["transformers"], pinned["tokenizers"]]
    if installer == "uv":
        # The whole stack resolves under the file (in another fresh env), each at its pinned version.
        subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(tmp_path / "dry")], check=True)
        dry = subprocess.run([uv, "pip", "install", "--dry-run", "-c", str(constraints), *pins.STACK],
                             env={**env, "VIRTUAL_ENV": str(tmp_path / "dry")}, capture_output=True,
                             text=True, check=True)
        for p in ("transformers", "trl", "peft", "accelerate", "bitsandbytes"):
            assert f"{p}=={pinned[p]}" in dry.stderr + dry.stdout, dry.stderr


def test_known_issues_over_two_packages_become_pair_rules():
    cve = {"id": "cve", "url": "https://x/37785", "summary": "refuses torch.load", "workaround": "torch >= 2.6",
           "when": {"transformers": ">=4.52.0", "torch": "<2.6"}}
    g = grid({"old": ({"torch": "2.5.1", "transformers": "4.50.3"}, {"resume[x]": "pass"}),
              "guard": ({"torch": "2.5.1", "transformers": "4.52.0"}, {"resume[x]": ("fail", cve)}),
              "new": ({"torch": "2.13.0+cpu", "transformers": "4.52.0"}, {"resume[x]": "pass"})})
    sp = pins.safe_pins(g, ["resume"])
    assert sp.pick.combo == "new"
    assert pinsfiles.pair_rules(sp) == ["`transformers>=4.52.0 with torch<2.6`: refuses torch.load (cve, "
                                        "https://x/37785; seen in `guard::resume[x]`). Workaround: torch >= 2.6"]
    assert "## Versions that only fail together" in pinsfiles.report_text(sp)
    # Neither version is blamed alone: each passes the case elsewhere in the grid.
    assert not [a for adv in sp.packages for a in adv.avoid]


def test_a_combo_that_ran_only_some_selected_columns_does_not_qualify():
    g = grid({"full": ({"transformers": "4.57.6"}, {"sft[a]": "pass", "resume[x]": "fail"}),
              "narrow": ({"transformers": "5.4.0"}, {"resume[x]": "pass"})})
    sp = pins.safe_pins(g, ["sft", "resume"])
    assert sp.pick is None  # narrow never ran sft[a]: not checked there, so not safe
    narrow = next(v for v in sp.verdicts if v.combo == "narrow")
    assert narrow.missing == ("sft[a]",) and not narrow.qualifies
    assert "1 selected column(s) not run there" in pinsfiles.report_text(sp)
    assert pins.safe_pins(g, ["resume"]).pick.combo == "narrow"


def test_the_picked_environments_other_pins_and_repair_are_emitted_beside_the_stack():
    import dataclasses

    g = grid({"old": ({"transformers": "4.46.3"}, OK)})
    combo = {**g.combos[0], "pins": {"torch": "2.13.0", "transformers": "4.46.3", "numpy": "1.26.4", "trl": None},
             "environment": {"health": {}, "repair": {"method": "cap", "fixes": [
                 {"requirement": "pyarrow<26.0.0", "package": "pyarrow", "why": "import datasets fails: ImportError: "
                  "pyarrow requires NumPy 2.0 or newer, found 1.26.4 (raised by pyarrow 26.0.1)"}]}}}
    sp = pins.safe_pins(dataclasses.replace(g, combos=(combo,)))
    assert sp.pick.extra[0] == ("numpy==1.26.4", "pinned by the combo")
    for text in (pinsfiles.constraints_text(sp), pinsfiles.requirements_text(sp)):
        lines = text.splitlines()
        assert "numpy==1.26.4  # pinned by the combo" in lines
        assert any(line.startswith("pyarrow<26.0.0  # ftcompat's repair: import datasets fails") for line in lines)


def test_a_failing_release_past_the_pick_becomes_a_bound_so_untested_ones_between_cannot_slip_in():
    g = grid({"a": ({"trl": "0.19.1"}, OK), "b": ({"trl": "0.20.0"}, {**OK, "sft[legacy]": "fail"}),
              "c": ({"trl": "0.22.2"}, {**OK, "sft[legacy]": "fail"}), "d": ({"trl": "0.18.0"}, OK)})
    sp = pins.safe_pins(g)
    assert sp.pick.combo == "a"
    lines = pinsfiles.constraints_text(sp).splitlines()
    assert "trl<0.20.0" in lines  # 0.20.1, 0.21.x, 0.22.0 and 0.22.1 were never run
    assert not [line for line in lines if line.startswith("trl!=")]


def test_a_combo_without_a_recorded_device_adds_no_question_mark_to_the_devices():
    import dataclasses

    g = grid({"a": ({}, OK), "b": ({"trl": "0.19.1"}, OK)})
    g = dataclasses.replace(g, combos=(g.combos[0], {**g.combos[1], "device": None}))
    assert pins.safe_pins(g).source["devices"] == ["test cpu"]


def test_a_single_equals_is_only_pythons():
    from ftcompat.core.errors import InputError

    assert pins.parse_keep("python=3.10").spec == "==3.10"
    with pytest.raises(InputError, match=r"write trl==0.20 \(a single '=' is only python's"):
        pins.parse_keep("trl=0.20")


def test_a_handoff_pairs_cells_count_for_the_environment_that_loads_and_never_make_another_unchecked():
    import dataclasses

    g = grid({"serve-old": ({"transformers": "4.57.6"}, OK),
              "serve-new": ({"transformers": "5.4.0"}, OK),
              "train~serve-new": ({"transformers": "5.4.0"}, {"tok_handoff[json@tiny]": "fail"}),
              "train~serve-old": ({"transformers": "4.57.6"}, {"tok_handoff[json@tiny]": "pass"})})
    combos = tuple({**c, "pair": {"from": "train", "to": c["id"].split("~")[1]}} if "~" in c["id"] else c
                   for c in g.combos)
    g = dataclasses.replace(g, combos=combos)
    sp = pins.safe_pins(g)
    # serve-new runs every single-environment case but cannot load what train saved: the older one is picked.
    assert sp.pick.combo == "serve-old" and {v.combo for v in sp.verdicts} == {"serve-old", "serve-new"}
    new = next(v for v in sp.verdicts if v.combo == "serve-new")
    assert [c.id for c in new.blockers] == ["train~serve-new::tok_handoff[json@tiny]"] and not new.missing
    # Only the handoff asked about: the environments a pair loads in are the candidates.
    assert pins.safe_pins(g, ["tok_handoff"]).pick.combo == "serve-old"
    # A combo no pair loads in is not "unchecked" on a handoff column.
    lone = dataclasses.replace(g, combos=tuple(c for c in combos if c["id"] != "train~serve-old"),
                               cells=tuple(c for c in g.cells if c.combo != "train~serve-old"))
    assert not next(v for v in pins.safe_pins(lone).verdicts if v.combo == "serve-old").missing


def test_an_upstream_main_row_is_never_picked():
    # trl built from a commit passes everything and is the newest, but pip cannot be pinned to it.
    g = grid({"old": ({"trl": "0.19.1"}, OK), "main-trl": ({"trl": "1.17.0.dev0+g294f35b"}, OK)})
    g = Grid(g.cells, tuple({**c, "pins": {"trl": "@main"}} if c["id"] == "main-trl" else c for c in g.combos),
             g.columns, g.generated_at)
    assert pins.safe_pins(g).pick.combo == "old"
