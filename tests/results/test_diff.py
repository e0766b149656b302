"""Comparing two grids."""

import json

from conftest import record

from ftcompat import cli
from ftcompat.results import diff
from ftcompat.results.grid import Grid

V1 = {"torch": "2.13.0+cpu", "transformers": "5.23.0", "trl": "1.16.0"}
V2 = {**V1, "transformers": "5.24.0"}


def cell(cid, status, versions, signature=None):
    return record(cid, status, env={"versions": versions},
                  signature=signature or (f"KeyError: {cid}" if status in ("fail", "error") else None)).to_dict()


def grid(stamp, cells, tracking=("latest",)):
    combos = [{"id": c, "pins": {"transformers": None}} for c in tracking]
    return {"schema": "ftcompat-grid/1", "generated_at": stamp, "cells": cells, "combos": combos, "columns": []}


def compare(old, new):
    return diff.compare(Grid.from_dict(old), Grid.from_dict(new))


OLD = grid("2026-11-01", [cell("latest::a[x]", "pass", V1), cell("latest::b[x]", "fail", V1),
                          cell("old::c[x]", "pass", V1), cell("old::d[x]", "fail", V1),
                          cell("old::e[x]", "pass", V1), cell("old::gone[x]", "pass", V1)])
NEW = grid("2026-11-02", [cell("latest::a[x]", "fail", V2, "AttributeError: no seen_tokens"),
                          cell("latest::b[x]", "pass", V2), cell("old::c[x]", "fail", V1),
                          cell("old::d[x]", "fail", V1), cell("old::e[x]", "skip", {**V1, "trl": "1.17.0"}),
                          cell("old::new[x]", "pass", V1)])


def test_each_kind_of_change_is_told_apart():
    d = compare(OLD, NEW)
    assert [c.cell for c in d.of("new-failure")] == ["latest::a[x]"]
    assert [c.cell for c in d.of("fixed")] == ["latest::b[x]"]
    assert [c.cell for c in d.of("flaky")] == ["old::c[x]"]  # same versions, other status
    assert [c.cell for c in d.of("changed")] == ["old::e[x]"]
    assert d.added == ("old::new[x]",) and d.removed == ("old::gone[x]",)
    regression = d.of("new-failure")[0]
    assert regression.moved == (("transformers", "5.23.0", "5.24.0"),) and regression.tracking


def test_markdown_names_what_moved():
    md = diff.markdown(compare(OLD, NEW))
    assert "transformers 5.23.0 → 5.24.0 (latest moved): AttributeError: no seen_tokens" in md
    assert "| `old::c[x]` | pass | fail | same versions: KeyError: old::c[x] |" in md
    assert "1 new failures, 1 fixed, 1 flaky, 0 case changed, 1 other changes" in md


def test_same_versions_with_changed_case_code_is_not_called_flaky():
    def keyed(cid, status, key):
        return {**cell(cid, status, V1), "cache_key": key}

    old = grid("2026-11-01", [keyed("latest::a[x]", "pass", "k1"), keyed("latest::b[x]", "pass", "k1")])
    new = grid("2026-11-02", [keyed("latest::a[x]", "fail", "k2"), keyed("latest::b[x]", "fail", "k1")])
    d = compare(old, new)
    assert [c.cell for c in d.of("case-changed")] == ["latest::a[x]"]
    assert [c.cell for c in d.of("flaky")] == ["latest::b[x]"]  # same key: the same check flipped
    assert "same versions, changed case or harness code: KeyError: latest::a[x]" in diff.markdown(d)


def test_no_change_says_so():
    assert "No cell changed status." in diff.markdown(compare(OLD, OLD))


def test_one_issue_per_new_failure_with_the_cell_id_in_the_title():
    [issue] = diff.issues(compare(OLD, NEW))
    assert issue["title"] == "ftcompat regression: latest::a[x]"
    assert "AttributeError: no seen_tokens" in issue["body"] and 'ftcompat report "latest::a[x]"' in issue["body"]
    assert 'FTCOMPAT_CASES="a" nox -s latest' in issue["body"]


def test_cli_diff_json_and_issues(tmp_path, capsys):
    (tmp_path / "old.json").write_text(json.dumps(OLD))
    (tmp_path / "new.json").write_text(json.dumps(NEW))
    assert cli.main(["diff", str(tmp_path / "old.json"), str(tmp_path / "new.json"), "--format", "json",
                     "--issues", str(tmp_path / "issues.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["new-failure"][0]["moved"] == [{"package": "transformers", "old": "5.23.0", "new": "5.24.0"}]
    assert json.loads((tmp_path / "issues.json").read_text())[0]["cell"] == "latest::a[x]"


def test_a_real_pin_change_shows_as_exactly_the_cells_it_fixed():
    """Two real runs of tf4.54-trl0.20 on CPU: as committed, then with trl 0.20.0 pinned back to 0.19.1."""
    from conftest import FIXTURES

    before, after = (json.loads((FIXTURES / "diff" / f"{n}.json").read_text()) for n in ("before", "after"))
    d = compare(before, after)
    assert [c.cell for c in d.of("fixed")] == [
        "tf4.54-trl0.20::api_surface[import_datacollatorforcompletiononlylm]",
        "tf4.54-trl0.20::api_surface[sftconfig_max_seq_length]",
        "tf4.54-trl0.20::qlora_sft_trainable[legacy@tiny-llama]",
    ]
    assert {c.moved for c in d.of("fixed")} == {(("trl", "0.20.0", "0.19.1"),)}
    assert not d.of("new-failure") and not d.of("flaky") and not d.added and not d.removed


def test_a_main_lane_flip_names_the_commit_range_it_happened_in():
    # Two nightly builds of trl's main: the same public version, another commit. Not flaky: the code moved.
    a = {**V1, "trl": "1.17.0.dev0+g294f35b"}
    b = {**V1, "trl": "1.17.0.dev0+gabc1234"}
    old = grid("2026-12-01", [cell("main-trl::a[x]", "pass", a), cell("main-trl::b[x]", "pass", a)], ())
    new = grid("2026-12-02", [cell("main-trl::a[x]", "fail", b), cell("main-trl::b[x]", "fail", a)], ())
    old["combos"] = new["combos"] = [{"id": "main-trl", "pins": {"trl": "@main", "torch": "2.13.0"}}]
    d = compare(old, new)
    assert [c.cell for c in d.of("new-failure")] == ["main-trl::a[x]"]
    assert [c.cell for c in d.of("flaky")] == ["main-trl::b[x]"]  # the same commit both nights
    change = d.of("new-failure")[0]
    assert change.moved == (("trl", "1.17.0.dev0+g294f35b", "1.17.0.dev0+gabc1234"),) and change.tracking
    md = diff.markdown(d)
    assert ("flipped within trl commits 294f35b..abc1234 "
            "(https://github.com/huggingface/trl/compare/294f35b...abc1234)") in md
    assert "294f35b..abc1234" in diff.issues(d)[0]["body"]
