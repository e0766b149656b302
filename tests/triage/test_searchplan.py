"""Planning a pins search: the bounds a candidate must meet and the package each failure steps back."""

from conftest import record

from ftcompat.core.domain import KnownIssue, frozen_map
from ftcompat.triage import searchplan
from ftcompat.triage.pins import parse_keep

VERSIONS = {"torch": "2.13.0+cpu", "transformers": "4.55.4", "trl": "0.22.2", "peft": "0.17.1",
            "bitsandbytes": "0.47.0", "accelerate": "1.10.1"}


def test_requirements_join_kept_pins_and_steps_per_package():
    keep = [parse_keep("torch==2.13.0"), parse_keep("transformers==4.55.*")]
    steps = [searchplan.Step("trl", "<0.20.0", "x"), searchplan.Step("trl", "<0.19", "y")]
    assert searchplan.requirements(keep, steps) == ["torch==2.13.0", "transformers==4.55.*", "trl<0.20.0,<0.19",
                                                "peft", "bitsandbytes", "accelerate"]
    assert searchplan.kept_exactly(keep) == {"torch"}  # a range may still move


def test_steps_go_below_the_minor_release_or_the_issue_range():
    assert searchplan.below_minor("0.22.2") == "<0.22"
    assert searchplan.below_minor("5.0.0") == "<5.0.0"
    assert searchplan.below_minor("2.13.0+cpu") == "<2.13.0"
    assert searchplan.lower_bound(">=0.20.0,<0.23.1") == "0.20.0"
    assert searchplan.lower_bound("<4.40") is None


def test_a_candidate_inside_a_known_issue_steps_out_without_running():
    issue = KnownIssue("trl-freeze", ("qlora[legacy]",), frozen_map({"trl": ">=0.20.0,<0.23.1"}), "https://x/1", "s")
    step = searchplan.avoid_issue(VERSIONS, issue, frozen=set())
    assert (step.package, step.spec) == ("trl", "<0.20.0") and "trl-freeze" in step.why
    assert searchplan.avoid_issue({**VERSIONS, "trl": "0.23.1"}, issue, set()) is None
    assert searchplan.avoid_issue(VERSIONS, issue, frozen={"trl"}) is None  # kept exactly: the search may not move it


def test_a_failure_steps_back_the_package_its_issue_or_traceback_names():
    known = record("c::sft[legacy]", "fail", known_issue={"id": "trl-freeze", "url": "u",
                                                           "when": {"trl": ">=0.20.0,<0.23.1"}})
    assert searchplan.step_for(known, VERSIONS, set(), []).spec == "<0.20.0"
    tb = ('Traceback (most recent call last):\n  File "cases/x.py", line 3, in test_a\n'
          '  File "site-packages/trl/trainer/sft_trainer.py", line 9, in __init__\n'
          '  File "site-packages/transformers/trainer.py", line 5, in __init__\nTypeError: boom')
    raised = record("c::sft[legacy]", "fail", traceback=tb, signature="TypeError: boom")
    step = searchplan.step_for(raised, VERSIONS, set(), [])
    assert (step.package, step.spec) == ("transformers", "<4.55") and "runs through transformers 4.55.4" in step.why
    # transformers kept: its caller in the traceback, trl, is the suspect
    assert searchplan.step_for(raised, VERSIONS, {"transformers"}, []).spec == "<0.22"
    assert searchplan.step_for(raised, VERSIONS, {"transformers", "trl"}, []).why.startswith("no package named")


def test_with_no_package_named_each_movable_one_is_stepped_in_turn():
    plain = record("c::sft[legacy]", "fail", signature="AssertionError: loss flat")
    frozen = {"torch", "transformers"}
    first = searchplan.step_for(plain, VERSIONS, frozen, [])
    second = searchplan.step_for(plain, VERSIONS, frozen, [first])
    assert (first.package, second.package) == ("trl", "peft")
    everything = set(VERSIONS)
    assert searchplan.step_for(plain, VERSIONS, everything, []) is None


def test_skips_cannot_be_stepped_away():
    failing, skipped = searchplan.blockers([record("c::a[x]", "pass"), record("c::a[y]", "skip"),
                                        record("c::a[z]", "error")])
    assert [c.column for c in failing] == ["a[z]"] and [c.column for c in skipped] == ["a[y]"]


def test_kept_pins_inside_a_known_issue_trap_the_search():
    issue = KnownIssue("sftconfig", ("api[x]",), frozen_map({"trl": ">=0.20.0"}), "https://x/2", "s")
    assert searchplan.trapped({**VERSIONS, "trl": "1.16.0"}, issue, frozen={"trl"})
    assert not searchplan.trapped({**VERSIONS, "trl": "1.16.0"}, issue, frozen={"torch"})  # trl may still move
    known = record("c::api[x]", "fail", known_issue={"id": "sftconfig", "url": "u", "when": {"trl": ">=0.20.0"}})
    assert searchplan.step_for(known, VERSIONS, {"trl"}, []) is None
