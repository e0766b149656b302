"""Every command of the parser is a flow of flows.tasks or a view that runs nothing; each flow's
environment kinds exist; the command line runs cases only through the flows."""

import ast
from pathlib import Path

from ftcompat.cli import build_parser
from ftcompat.env.base import Environment
from ftcompat.env.device import DeviceSite
from ftcompat.env.existing import Existing
from ftcompat.env.venv import AdhocVenv, NoxVenv, StepVenv
from ftcompat.flows.tasks import FLOWS, VIEWS

KINDS = (NoxVenv, AdhocVenv, StepVenv, Existing, DeviceSite)
CLI = Path(__file__).resolve().parents[2] / "src" / "ftcompat" / "cli"


def _commands() -> set[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return set(sub.choices)


def test_every_command_is_a_flow_or_a_view_and_nothing_else_is_listed():
    commands = _commands()
    flows = {name for name in FLOWS if name in commands}
    assert commands == flows | set(VIEWS)
    assert not flows & set(VIEWS)
    # The flows not typed on the command line are run by nox or by scripts/device-check.
    assert set(FLOWS) - commands == {"nox -s <combo>", "device-check"}


def test_each_flows_environment_kinds_exist_and_meet_the_protocol():
    kinds = {k.kind: k for k in KINDS}
    assert {e for f in FLOWS.values() for e in f.environments} <= set(kinds)
    for kind in KINDS:
        assert {"combo", "prepare", "release", "with_combo"} <= set(dir(kind)) | set(kind.__dataclass_fields__)
        assert isinstance(kind.repairs, bool)
        assert kind.touches is not None and callable(kind.prepare) and callable(kind.release)
    assert Environment.__name__ == "Environment"


def test_the_command_line_runs_cases_only_through_flows():
    for path in CLI.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m for m in imported if m.startswith("ftcompat.runner")}, path.name
        assert not imported & {"ftcompat.env.venv", "ftcompat.env.existing", "ftcompat.env.device",
                               "ftcompat.env.build", "ftcompat.env.target"}, path.name
