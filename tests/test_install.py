"""Installing pins: wheel sources passed on, reuse only on identical pins, resolver errors summarised."""

import json
from pathlib import Path

from ftcompat import install


def test_pip_settings_are_passed_to_uv(fixture_matrix):
    env = {"PIP_FIND_LINKS": "/opt/wheels /more", "PIP_EXTRA_INDEX_URL": "https://x/simple",
           "UV_FIND_LINKS": "/ignored-by-us"}
    assert install.index_args(env, "uv") == ["--find-links", "/opt/wheels", "--find-links", "/more",
                                             "--extra-index-url", "https://x/simple"]
    assert install.index_args(env, "pip") == ["--find-links", "/ignored-by-us"]


def test_install_command_uv_and_pip(tmp_path):
    reqs = ["torch==2.13.0", "pytest"]
    uv = install.install_command(tmp_path, reqs, {"PIP_FIND_LINKS": "/w"}, False, "/bin/uv")
    assert uv == ["/bin/uv", "pip", "install", "--python", str(tmp_path / "bin/python"),
                  "--find-links", "/w", "torch==2.13.0", "pytest"]
    pip = install.install_command(tmp_path, reqs, {}, True, None)
    assert pip[:3] == [str(tmp_path / "bin/python"), "-m", "pip"] and "--upgrade" in pip


def test_requirements_pin_exactly_and_leave_canaries_open(fixture_matrix):
    assert install.requirements(fixture_matrix.combo("old"))[:2] == ["accelerate==1.2.1",
                                                                     "bitsandbytes==0.45.0"]
    canary = install.requirements(fixture_matrix.combo("canary"))
    assert "torch" in canary and "datasets==3.6.0" in canary and "pytest" in canary


def _fake_env(tmp_path: Path, combo, environ):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text("")
    (tmp_path / install.STAMP).write_text(json.dumps(install.stamp_for(combo, environ)))


def test_reuse_only_when_pins_match(tmp_path, fixture_matrix):
    old = fixture_matrix.combo("old")
    _fake_env(tmp_path, old, {})
    assert install.can_reuse(tmp_path, old, {})
    assert not install.can_reuse(tmp_path, old, {"PIP_FIND_LINKS": "/other"})
    changed = type(old)(old.id, old.python, {**old.pins, "trl": "0.14.0"}, old.tags)
    assert not install.can_reuse(tmp_path, changed, {})


def test_canary_is_never_reused(tmp_path, fixture_matrix):
    canary = fixture_matrix.combo("canary")
    _fake_env(tmp_path, canary, {})
    assert not install.can_reuse(tmp_path, canary, {})


def test_uv_resolver_failure_summary():
    out = """Using Python 3.11.7
  × No solution found when resolving dependencies:
  ╰─▶ Because trl==0.22.2 depends on transformers>=4.56.1 and you require transformers==4.47.1, we
      can conclude that your requirements are unsatisfiable.
"""
    got = install.failure_summary(out)
    assert got.startswith("No solution found when resolving dependencies: Because trl==0.22.2 depends")


def test_pip_failure_summary():
    out = "Collecting x\nERROR: Could not find a version that satisfies the requirement torch==9.9\n"
    assert install.failure_summary(out).startswith("ERROR: Could not find a version")
