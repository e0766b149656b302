"""Newest tested: per package, the newest version the grid ran and how that version's cells came out."""

from conftest import record

from ftcompat.results.grid import Grid
from ftcompat.results.newest import newest_tested, result_text


def _cell(cell_id, status, trl, **more):
    env = {"python": "3.11.7", "device": {"type": "cpu", "name": "cpu", "cuda": None},
           "versions": {"trl": trl, "torch": "2.13.0+cpu"}}
    return record(cell_id, status, env=env, **more)


def test_the_newest_version_and_only_its_cells_are_reported():
    cells = (_cell("old::sft[a]", "pass", "0.19.1"), _cell("new::sft[a]", "fail", "1.16.0", triage="known"),
             _cell("new::sft[b]", "pass", "1.16.0"), _cell("new2::sft[a]", "error", "1.16.0", triage="new"),
             _cell("gone::sft[a]", "not-installable", "1.17.0"))
    grid = Grid(cells, ({"id": "old"}, {"id": "new"}, {"id": "new2"}, {"id": "gone"}), ("sft[a]", "sft[b]"))
    rows = {r.package: r for r in newest_tested(grid)}
    trl = rows["trl"]
    assert trl.version == "1.16.0" and trl.combos == ("new", "new2")  # 1.17.0 never installed: not tested
    assert dict(trl.counts) == {"fail": 1, "pass": 1, "error": 1} and trl.known == 1
    assert result_text(trl) == ("1 error, 1 fail, 1 pass; 1 of the 2 failing explained by known issues; "
                                "not explained: `new2::sft[a]`")
    assert rows["torch"].version == "2.13.0" and "peft" not in rows
