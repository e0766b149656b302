"""The health types and the verdict rule: pure, no environment."""

import pytest

from ftcompat.core.health import Defect, EnvReport, Fix, Health, Repair, broken_message, canonical, explains, outside

ARROW = Defect("datasets", "ImportError", "pyarrow requires NumPy 2.0 or newer, found 1.26.4", "pyarrow", None,
               {"pyarrow": "26.0.1", "numpy": "1.26.4"})
TOPK = Defect("trl", "ImportError", "cannot import name 'top_k_top_p_filtering' from 'transformers'", "trl",
              "transformers", {"trl": "0.7.11", "transformers": "4.39.0"})
RICH = Defect("trl", "ModuleNotFoundError", "No module named 'rich'", "trl", "rich", {"trl": "0.8.0", "rich": None})


def test_canonical_names():
    assert canonical("Foo_Bar.baz") == "foo-bar-baz"
    assert canonical("PyYAML") == "pyyaml"


@pytest.mark.parametrize("defect, subject, out", [
    (ARROW, ("peft", "transformers", "trl"), True),  # a package the case merely uses
    (TOPK, ("peft", "transformers", "trl"), False),  # trl against transformers: import_skew's verdict
    (RICH, ("peft", "transformers", "trl"), True),  # trl's undeclared requirement: not the skew it checks
    (TOPK, (), True),
    (Defect("x", "SyntaxError", "bad", None, None), ("trl",), True),  # nobody to blame: never a verdict
])
def test_outside_the_subject(defect, subject, out):
    assert outside(defect, subject) is out


def test_explains_matches_the_root_cause_text_without_machine_paths():
    health = Health(("datasets",), (), (ARROW,))
    assert explains(health, (), "ImportError", "pyarrow requires NumPy 2.0 or newer, found 1.26.4\nmore") == ARROW
    assert explains(health, (), "ImportError", "something else") is None
    assert explains(health, ("pyarrow", "datasets"), "ImportError", ARROW.message) is None
    path = Defect("m", "ImportError", "cannot import name 'X' from 'y' (site-packages/y/__init__.py)", "z", "y")
    got = explains(Health(defects=(path,)), (), "ImportError",
                   "cannot import name 'X' from 'y' (/home/me/venv/lib/python3.11/site-packages/y/__init__.py)")
    assert got == path


def test_broken_message_names_the_root_and_who_raised_it():
    assert broken_message(ARROW) == ("environment broken: import datasets fails: ImportError: pyarrow requires NumPy "
                                     "2.0 or newer, found 1.26.4 (raised by pyarrow 26.0.1)")


def test_roots_keep_one_defect_per_cause():
    again = Defect("transformers.trainer", *[getattr(ARROW, k) for k in ("exc_type", "message", "raised_by")])
    assert Health(defects=(ARROW, again, RICH)).roots() == (ARROW, RICH)


def test_json_round_trips():
    report = EnvReport(Health(("numpy", "datasets"), ("trl",), (ARROW,), 3.2),
                       Repair("cap", (Fix("pyarrow<26.0.0", "pyarrow", ARROW.summary(), "26.0.0", "25.0.1"),),
                              (ARROW,), True, 2, 30.5))
    assert EnvReport.from_json(report.to_json()) == report
    assert report.repair.requirements() == ("pyarrow<26.0.0",)
    with pytest.raises(ValueError, match="needs 'module'"):
        Health.from_json({"defects": [{"exc_type": "X"}]})


def test_report_lines_say_what_was_repaired_and_what_is_still_broken():
    fixed = EnvReport(Health(), Repair("cap", (Fix("pyarrow<26.0.0", "pyarrow", "why", "26.0.0", "25.0.1"),),
                                       (ARROW,), True))
    assert fixed.lines() == ["repaired: pyarrow<26.0.0, now pyarrow 25.0.1 (before: why)"]
    still = EnvReport(Health(defects=(TOPK,)), Repair("cap", note="every package involved is pinned"))
    assert still.lines()[0] == "not repaired: every package involved is pinned"
    assert still.lines()[1].startswith("environment broken: import trl fails: ImportError: cannot import name")
