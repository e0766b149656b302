"""Grid history and "failing since"."""

import json

import pytest
from conftest import grid_of, record

from ftcompat import cli
from ftcompat.results import history


def grid(stamp, statuses, finished_at=None):
    """A grid of cells ``c::<name>[v]`` with these statuses, finished when given (else undated)."""
    return grid_of([record(f"c::{name}[v]", st, finished_at=finished_at) for name, st in statuses.items()],
                   generated_at=stamp)


def since(now, past):
    return {cid.split("::")[1][:-3]: day for cid, day in history.failing_since(now.cells, now.generated_at,
                                                                                   past).items()}


def test_failing_since_is_the_start_of_the_unbroken_run_of_failures():
    past = [grid("2026-11-01T02:00:00Z", {"a": "fail", "b": "pass", "c": "fail"}),
            grid("2026-11-02T02:00:00Z", {"a": "pass", "b": "fail", "c": "error"}),
            grid("2026-11-03T02:00:00Z", {"a": "fail", "b": "fail", "c": "fail"})]
    now = grid("2026-11-04T02:00:00Z", {"a": "fail", "b": "fail", "c": "fail", "d": "fail", "e": "pass"})
    assert since(now, past) == {"a": "2026-11-03", "b": "2026-11-02", "c": "2026-11-01", "d": "2026-11-04"}


def test_the_same_run_in_the_history_is_not_counted_twice():
    now = grid("2026-11-04T02:00:00Z", {"a": "fail"})
    assert since(now, [now]) == {"a": "2026-11-04"}


def test_add_names_entries_by_date_and_matrix_hash_and_latest_finds_the_newest(tmp_path):
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text("version: 1\n")
    for stamp in ("2026-11-02T02:00:00Z", "2026-11-01T02:00:00Z"):
        (tmp_path / "g.json").write_text(json.dumps(grid(stamp, {}).to_dict()))
        kept = history.add(tmp_path / "g.json", matrix, tmp_path / "history")
        assert kept.name == f"{stamp[:10]}-{history.matrix_hash(matrix)}.json"
    assert history.latest(tmp_path / "history").name.startswith("2026-11-02")
    assert history.latest(tmp_path / "history", before="2026-11-02").name.startswith("2026-11-01")
    (tmp_path / "history" / "broken.json").write_text("{not json")
    assert len(history.entries(tmp_path / "history")) == 2  # a broken entry does not hide the others


def test_a_grid_without_a_date_is_refused(tmp_path):
    (tmp_path / "g.json").write_text("{}")
    (tmp_path / "m.yaml").write_text("")
    with pytest.raises(ValueError, match="no generated_at"):
        history.add(tmp_path / "g.json", tmp_path / "m.yaml", tmp_path / "h")


def test_cli_history_latest_and_list(tmp_path, capsys):
    assert cli.main(["history", "latest", "--history", str(tmp_path)]) == 1
    (tmp_path / "g.json").write_text(json.dumps(grid("2026-11-02T02:00:00Z", {}).to_dict()))
    (tmp_path / "m.yaml").write_text("version: 1\n")
    assert cli.main(["--matrix", str(tmp_path / "m.yaml"), "history", "add", str(tmp_path / "g.json"),
                     "--history", str(tmp_path / "h")]) == 0
    capsys.readouterr()
    assert cli.main(["history", "latest", "--history", str(tmp_path / "h")]) == 0
    assert "2026-11-02-" in capsys.readouterr().out


def test_a_run_is_dated_by_when_its_cell_finished():
    now = grid("2026-11-05T02:00:00Z", {"a": "fail"}, finished_at="2026-11-04T23:59:00Z")
    assert since(now, []) == {"a": "2026-11-04"}
