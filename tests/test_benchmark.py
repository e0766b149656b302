"""The benchmark script's plan, timing, ratio and report logic, with fake timings (nothing is run)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("grid_benchmark", ROOT / "benchmarks" / "grid_benchmark.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["grid_benchmark"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("grid_benchmark", None)


@pytest.fixture
def layout(bench, tmp_path):
    return bench.Layout(tmp_path / "scratch")


def _cmd(step):
    return step.argv or []


def test_plan_has_every_phase_in_order_with_the_right_switches(bench, fixture_matrix, layout):
    combos = bench.select(fixture_matrix.combos, None)
    assert [c.id for c in combos] == ["old", "canary"]  # the default grid: cpu-tagged combos
    steps = bench.build_plan(fixture_matrix, combos, layout, python="PY")
    assert steps[0].phase == "setup" and "copy the project" in steps[0].label
    phases = [s.phase for s in steps if s.timed]
    assert phases == sorted(phases, key=bench.PHASES.index)
    cold = [s for s in steps if s.phase == "cold"]
    assert [s.argv[-1] for s in cold] == ["old", "canary", "render"]  # one nox per combo: its own cold time
    assert all(s.env.get("FTCOMPAT_FORCE") == "1" for s in cold[:2])
    (warm,) = [s for s in steps if s.phase == "warm"]
    (cached,) = [s for s in steps if s.phase == "cached"]
    assert warm.argv == ["PY", "-m", "nox", "-f", "noxfile.py", "-s", "old", "canary", "render"]
    assert warm.env == {"FTCOMPAT_FORCE": "1"} and cached.env == {} and cached.argv == warm.argv
    assert all(s.cwd == layout.project for s in cold + [warm, cached])
    (add,) = [s for s in steps if s.phase == "add"]
    assert add.argv[-3:] == ["canary", "old-added", "render"] and "FTCOMPAT_FORCE" not in add.env


def test_naive_lane_is_venv_pip_and_one_pytest_per_case_without_xdist(bench, fixture_matrix, layout):
    combos = bench.select(fixture_matrix.combos, ["old"])
    steps = [s for s in bench.build_plan(fixture_matrix, combos, layout, python="PY", venv_python="python3.11",
                                         phases=("naive",)) if s.phase == "naive"]
    venv = layout.naive / "old" / "venv"
    assert steps[0].argv == ["python3.11", "-m", "venv", str(venv)]
    pip = steps[1].argv
    assert pip[:4] == [str(venv / "bin" / "python"), "-m", "pip", "install"]
    assert pip[-7:] == ["accelerate==1.2.1", "bitsandbytes==0.45.0", "peft==0.14.0", "torch==2.5.1",
                        "transformers==4.47.1", "trl==0.13.0", "pytest"]
    assert not any("uv" in a or "xdist" in a for a in pip)
    cases = [s for s in steps if "pytest" in s.argv and "-m" in s.argv and s.argv[2] == "pytest"]
    assert [s.argv[-1] for s in cases] == ["cases/gen.py", "cases/api.py"]
    assert all("-n" not in s.argv for s in cases)
    assert all(s.ok_codes == (0, 1) for s in cases)  # a failing case is a result, not a broken step
    assert steps[1].ok_codes == (0,)


def test_pip_cache_is_warmed_untimed_unless_asked_not_to(bench, fixture_matrix, layout):
    combos = bench.select(fixture_matrix.combos, ["old"])
    warm = bench.build_plan(fixture_matrix, combos, layout, phases=("naive",))
    downloads = [s for s in warm if s.argv and "download" in s.argv]
    assert len(downloads) == 1 and not downloads[0].timed
    cold = bench.build_plan(fixture_matrix, combos, layout, phases=("naive",), warm_pip=False)
    assert not [s for s in cold if s.argv and "download" in s.argv]


def test_cold_uv_cache_points_every_ftcompat_phase_at_an_empty_cache(bench, fixture_matrix, layout):
    combos = bench.select(fixture_matrix.combos, ["old"])
    steps = bench.build_plan(fixture_matrix, combos, layout, cold_uv_cache=True, phases=("cold", "warm", "cached"))
    nox = [s for s in steps if s.argv]
    assert nox and all(s.env["UV_CACHE_DIR"] == str(layout.uv_cache) for s in nox)


def test_select_and_added_id(bench, fixture_matrix):
    assert [c.id for c in bench.select(fixture_matrix.combos, ["c*", "gpu-*"])] == ["canary", "gpu-nightly"]
    with pytest.raises(SystemExit, match="matches no combo in matrix.yaml"):
        bench.select(fixture_matrix.combos, ["nope*"])
    assert bench.added_id("old", {"old", "old-added"}) == "old-added2"


def test_run_steps_times_only_the_phases_and_runs_actions(bench, tmp_path):
    ticks = iter(range(0, 1000, 5))
    done = []
    steps = [bench.Step("setup", "prep", action=lambda: done.append("prep")),
             bench.Step("setup", "untimed command", ["true"]),
             bench.Step("cold", "a", ["nox", "a"], combo="a"),
             bench.Step("warm", "all", ["nox", "a", "render"]),
             bench.Step("naive", "case", ["pytest", "x.py"], ok_codes=(0, 1))]
    ran = []

    def execute(step, log):
        ran.append(step.label)
        return {"warm": 3, "naive": 1}.get(step.phase, 0)

    timings = bench.run_steps(steps, tmp_path, execute=execute, clock=lambda: next(ticks), echo=lambda *a, **k: None)
    assert done == ["prep"] and ran == ["untimed command", "a", "all", "case"]
    assert [(t.phase, t.seconds, t.rc, t.combo, t.ok) for t in timings] == [
        ("cold", 5, 0, "a", True), ("warm", 5, 3, None, False), ("naive", 5, 1, None, True)]


def _t(bench, phase, seconds, combo=None, rc=0):
    return bench.Timing(phase, f"{phase} {combo}", seconds, rc, combo, rc == 0)


def test_summary_ratios_and_targets(bench):
    timings = [_t(bench, "cold", 300, "a"), _t(bench, "cold", 200, "b"), _t(bench, "cold", 5),
               _t(bench, "warm", 100), _t(bench, "cached", 12), _t(bench, "add", 330, "a-added"),
               _t(bench, "naive", 250, "a"), _t(bench, "naive", 150, "b")]
    s = bench.summarize(timings, "a")
    assert s["totals"] == {"cold": 505, "warm": 100, "cached": 12, "add": 330, "naive": 400}
    assert s["cold_by_combo"] == {"a": 300, "b": 200}
    assert s["ratios"] == {"naive_over_warm": 4.0, "cold_over_warm": 5.05, "naive_over_cold": 0.79,
                           "add_over_own_cold": 1.1}
    assert s["targets"] == {"cached_under_30s": True, "warm_3x_faster_than_naive": True}
    assert s["failed_steps"] == []


def test_summary_flags_missed_targets_and_failed_steps(bench):
    s = bench.summarize([_t(bench, "warm", 100), _t(bench, "cached", 45), _t(bench, "naive", 200, "a", rc=1)])
    assert s["targets"] == {"cached_under_30s": False, "warm_3x_faster_than_naive": False}
    assert s["failed_steps"] == ["naive: naive a (exit 1)"]
    assert "add_over_own_cold" not in s["ratios"]


def test_report_prints_machine_times_and_ratios(bench):
    s = bench.summarize([_t(bench, "cold", 300, "a"), _t(bench, "warm", 100), _t(bench, "cached", 12),
                         _t(bench, "add", 310, "a-added"), _t(bench, "naive", 450, "a")], "a")
    machine = {"cpu": "AMD EPYC 7B13", "cores": 2, "ram_gib": 7.8, "os": "Linux", "python": "3.11.7"}
    text = bench.format_report(s, machine, ["a"], ["uv's download cache: warm (as found)"])
    assert "AMD EPYC 7B13, 2 cores, 7.8 GiB RAM" in text
    assert "300.0 s (5.0 min)" in text and "4.50x" in text and "0.12x" in text
    assert "naive / warm (target >= 3): 4.50" in text
    assert "adding one combo / that combo's own cold time (target close to 1): 1.03" in text
    assert "target cached_under_30s: met" in text and "note: uv's download cache: warm" in text


def test_machine_info_has_the_fields_the_report_needs(bench):
    info = bench.machine_info()
    assert info["cores"] >= 1 and info["cpu"] and info["python"]


def test_add_combo_writes_a_matrix_the_loader_accepts(bench, tmp_path):
    from ftcompat.config.matrix import load

    (tmp_path / "cases").mkdir()
    for case in (FIXTURES / "cases").glob("*.py"):
        (tmp_path / "cases" / case.name).write_text(case.read_text())
    path = tmp_path / "matrix.yaml"
    path.write_text((FIXTURES / "matrix.yaml").read_text())
    bench.add_combo(path, "old", "old-added")
    matrix = load(path)
    new, old = matrix.combo("old-added"), matrix.combo("old")
    assert new.pins == old.pins and new.tags == old.tags and len(matrix.combos) == 4


def test_copy_project_takes_tracked_and_untracked_files_but_no_ignored_ones_or_cells(bench, tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=src, check=True)
    (src / ".gitignore").write_text(".nox/\n")
    for rel in ("noxfile.py", "results/cells/a.json", "results/grid.json", ".nox/env/x", "new.py"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("x")
    subprocess.run([*git, "add", ".gitignore", "noxfile.py", "results"], cwd=src, check=True)
    bench.copy_project(src, dest)
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == [".gitignore", "new.py", "noxfile.py", "results/grid.json"]
    assert (dest / "results" / "cells").is_dir()


def test_naive_plan_records_nothing(bench, fixture_matrix, layout):
    bench.write_naive_plan(fixture_matrix, fixture_matrix.combo("old"), layout)
    plan = json.loads((layout.naive / "old" / "plan.json").read_text())
    assert plan["out"] is None and plan["work_dir"] == str(layout.naive / "old" / "work")
    assert set(plan["cases"]) == {"gen", "api"}


def test_dry_run_prints_the_plan_and_creates_nothing(bench, tmp_path, capsys):
    scratch = tmp_path / "s"
    assert bench.main(["--dry-run", "--combos", "torch2.13-cpu", "--scratch", str(scratch)]) == 0
    out = capsys.readouterr().out
    assert "[cold] FTCOMPAT_FORCE=1" in out and "-s torch2.13-cpu" in out and "[naive]" in out
    assert not scratch.exists()


def test_env_reuse_dry_run_plans_three_builds_and_runs_nothing(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "env_reuse.py"), "--dry-run"],
                          capture_output=True, text=True, check=True)
    lines = proc.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["first", "second", "second-with-upgrade"]
    assert "trl==0.20.0 (uv pip install --upgrade)" in lines[2] and "build.install" in lines[1]

