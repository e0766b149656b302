"""Repairing an environment ftcompat resolved itself: which package changes, what is added, what is reported."""

import dataclasses
from typing import ClassVar

import pytest

from ftcompat.core.domain import Combo
from ftcompat.core.health import Defect, Health
from ftcompat.env.base import Built, Touches
from ftcompat.env.repair import Search
from ftcompat.runner import repairs

ARROW = Defect("transformers.trainer", "ImportError", "pyarrow requires NumPy 2.0 or newer, found 1.26.4", "pyarrow",
               None, {"pyarrow": "26.0.1", "numpy": "1.26.4"})
RICH = Defect("trl", "ModuleNotFoundError", "No module named 'rich'", "trl", "rich", {"trl": "0.8.0", "rich": None})
TOPK = Defect("trl", "ImportError", "cannot import name 'top_k_top_p_filtering' from 'transformers'", "trl",
              "transformers", {"trl": "0.7.11", "transformers": "4.39.0"})
PINS = {"torch": "2.13.0", "transformers": "4.46.3", "numpy": "1.26.4", "trl": None, "peft": None,
        "bitsandbytes": None, "accelerate": None}


@dataclasses.dataclass(frozen=True)
class FakeEnv:
    kind: ClassVar[str] = "fake"
    touches: ClassVar[Touches] = Touches.OWN_FOLDER
    repairs: ClassVar[bool] = True
    combo: Combo
    prepared: list = dataclasses.field(default_factory=list)

    def prepare(self, log):
        self.prepared.append(self.combo)
        return Built(python="/venv/bin/python", versions={}, fingerprint="+".join(self.combo.extra))

    def release(self):
        pass

    def with_combo(self, combo):
        return dataclasses.replace(self, combo=combo)


@pytest.fixture
def world(monkeypatch):
    """The probe answers from a script: what each prepared combo's environment would say."""
    answers = {}
    searched = []

    def check(root, built, modules, log):
        return answers[built.fingerprint]

    def newest_clean(built, package, installed, module, log, root):
        searched.append((package, installed, module))
        return Search("25.0.1", "26.0.0", 2)

    monkeypatch.setattr(repairs.health, "check", check)
    monkeypatch.setattr(repairs.repair, "newest_clean", newest_clean)
    monkeypatch.setattr(repairs.resolved, "resolved", lambda venv, pkgs: {p: "25.0.1" for p in pkgs if p == "pyarrow"})
    return answers, searched


def _repair(answers, pins, first):
    env = FakeEnv(Combo("adhoc-x", "3.11", pins))
    return repairs.repair_env(env, Built(python="/venv/bin/python"), first, "cap", None, (), log=lambda *_: None)


def test_an_unpinned_package_that_raises_is_capped_below_its_first_bad_release(world):
    answers, searched = world
    answers["pyarrow<26.0.0"] = Health(("datasets",))
    env, built, report = _repair(answers, PINS, Health(defects=(ARROW,)))
    assert searched == [("pyarrow", "26.0.1", "transformers.trainer")]
    assert env.combo.extra == ("pyarrow<26.0.0",)
    assert env.combo.pins == PINS  # the question asked is unchanged
    assert report.health.ok and report.repair.healthy
    fix = report.repair.fixes[0]
    assert (fix.requirement, fix.first_bad, fix.kept) == ("pyarrow<26.0.0", "26.0.0", "25.0.1")
    assert report.repair.before == (ARROW,)


def test_an_undeclared_requirement_is_added(world):
    answers, searched = world
    answers["rich"] = Health(("trl",))
    env, _, report = _repair(answers, {**PINS, "trl": "0.8.0"}, Health(defects=(RICH,)))
    assert searched == []
    assert env.combo.extra == ("rich",)
    assert report.repair.healthy


def test_a_break_between_pinned_packages_is_the_answer_not_repaired(world):
    answers, searched = world
    pins = {**PINS, "trl": "0.7.11", "transformers": "4.39.0"}
    env, _, report = _repair(answers, pins, Health(defects=(TOPK,)))
    assert searched == [] and env.combo.extra == ()
    assert not report.repair.healthy and "every package involved is pinned" in report.repair.note
    assert report.health.defects == (TOPK,)


def test_an_unpinned_stack_package_is_ftcompats_choice_and_is_capped_too(world):
    answers, searched = world
    answers["transformers<26.0.0"] = Health(("trl",))  # the stub's search answers 26.0.0 for any package
    env, _, report = _repair(answers, {**PINS, "trl": "0.7.11", "transformers": None},
                             Health(defects=(dataclasses.replace(TOPK, versions={"trl": "0.7.11",
                                                                                 "transformers": "4.57.3"}),)))
    assert searched == [("transformers", "4.57.3", "trl")]
    assert env.combo.extra == ("transformers<26.0.0",) and report.repair.healthy


def test_a_repair_that_uncovers_the_next_break_goes_on(world):
    answers, searched = world
    answers["pyarrow<26.0.0"] = Health(defects=(RICH,))
    answers["pyarrow<26.0.0+rich"] = Health(("trl",))
    env, _, report = _repair(answers, {**PINS, "trl": "0.8.0"}, Health(defects=(ARROW,)))
    assert env.combo.extra == ("pyarrow<26.0.0", "rich")
    assert report.repair.healthy and [f.requirement for f in report.repair.fixes] == ["pyarrow<26.0.0", "rich"]


def test_a_repair_the_resolver_refuses_is_a_note_and_the_last_environment_stays(world, monkeypatch):
    from ftcompat.core.errors import NotInstallable

    answers, _ = world
    answers[""] = Health(defects=(ARROW,))

    def prepare(self, log):
        if self.combo.extra:
            raise NotInstallable("No solution found when resolving dependencies")
        return Built(python="/venv/bin/python", versions={}, fingerprint="")

    monkeypatch.setattr(FakeEnv, "prepare", prepare)
    env, built, report = _repair(answers, PINS, Health(defects=(ARROW,)))
    assert env.combo.extra == () and built.fingerprint == ""
    assert report.repair.fixes == () and not report.repair.healthy
    assert report.repair.note.startswith("pyarrow<26.0.0 cannot be installed beside the pins: No solution found")
