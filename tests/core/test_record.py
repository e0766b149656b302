"""The cell record: one type, read and written without changing a byte of the JSON."""

import json

import pytest
from conftest import FIXTURES, ROOT, record

from ftcompat.core.errors import InputError
from ftcompat.core.record import ALWAYS, Record
from ftcompat.core.status import Status, Triage


def committed_cells():
    cells = json.loads((ROOT / "results" / "grid.json").read_text())["cells"]
    for path in sorted((FIXTURES / "cells").glob("*.json")):
        cells += json.loads(path.read_text())["cells"]
    return cells


def test_every_committed_record_reads_and_writes_back_unchanged():
    cells = committed_cells()
    assert len(cells) > 100
    for data in cells:
        assert Record.from_dict(data).to_dict() == data, data["id"]


def test_the_enums_are_typed_and_written_as_their_words():
    r = record("c::case[v@m]", "fail", triage="known", rerun_status="pass")
    assert (r.status, r.triage, r.rerun_status) == (Status.FAIL, Triage.KNOWN, Status.PASS)
    out = r.to_dict()
    assert (out["status"], out["triage"], out["rerun_status"]) == ("fail", "known", "pass")
    assert json.loads(json.dumps(out)) == out


def test_an_optional_key_is_written_once_set_and_not_after_it_is_dropped():
    r = record("c::case[v@m]")
    assert set(r.to_dict()) == set(ALWAYS)
    cached = r.with_(cached=True)
    assert cached.to_dict()["cached"] is True and "cached" not in r.to_dict()  # frozen: r is unchanged
    assert "cached" not in cached.without("cached").to_dict()
    with pytest.raises(AttributeError):
        r.status = Status.PASS  # type: ignore[misc]


def test_what_readers_ask_of_a_record():
    r = record("tf4.54::phi3_generate[remote_code@tiny-phi3]", "timeout",
               env={"versions": {"transformers": "4.54.1"}})
    assert r.column == "phi3_generate[remote_code@tiny-phi3]"
    assert r.versions == {"transformers": "4.54.1"} and r.failing
    assert not record("c::a[x]", "flaky").failing  # flaky passed on its rerun: needs attention, not failing


@pytest.mark.parametrize("data, message", [
    ({"id": "c::a[x]", "combo": "c", "case": "a", "variant": "x"}, "lacks status"),
    ({"id": "c::a[x]", "combo": "c", "status": "pass"}, "lacks case, variant"),
    ({"id": "c::a[x]", "combo": "c", "case": "a", "variant": "x", "status": "passed"}, "'passed' is not a valid"),
    ({"id": "c::a[x]", "combo": "c", "case": "a", "variant": "x", "status": "fail", "triage": "old"},
     "'old' is not a valid"),
    (["not", "a", "record"], "must be an object"),
])
def test_a_damaged_record_is_refused_naming_it(data, message):
    with pytest.raises(InputError, match=message):
        Record.from_dict(data)
