"""The walk down a package's releases, and the pins' date: pure parts, with the index stubbed."""

import pytest

from ftcompat.env.repair import older_finals, pins_date, upload_day, walk


def test_older_finals_newest_first_without_prereleases_or_local_builds():
    got = older_finals(["24.0.0", "25.0.0rc1", "25.0.1", "26.0.0", "26.0.1", "27.0.0", "25.0.1+cpu"], "26.0.1")
    assert got == ["26.0.0", "25.0.1", "24.0.0"]


@pytest.mark.parametrize("boundary", [0, 1, 2, 5, 17, 39])
def test_walk_finds_the_newest_good_release_in_few_probes(boundary):
    candidates = [str(40 - i) for i in range(40)]  # newest first: 40 .. 1
    asked = []

    def good(v):
        asked.append(v)
        return candidates.index(v) >= boundary

    found = walk(candidates, good, installed="41")
    assert found.kept == candidates[boundary]
    assert found.first_bad == (candidates[boundary - 1] if boundary else "41")
    assert found.steps == len(set(asked)) <= 2 * 6 + 1


def test_walk_says_so_when_no_release_imports():
    found = walk(["3", "2", "1"], lambda v: False, installed="4")
    assert found.kept is None and found.first_bad == "1"


def test_walk_checks_the_oldest_release_the_gallop_jumped_over():
    candidates = [str(10 - i) for i in range(10)]
    found = walk(candidates, lambda v: v == "1", installed="11")
    assert found.kept == "1" and found.first_bad == "2"


PAGE = {"files": [{"filename": "pyarrow-26.0.0-cp311-cp311-manylinux_2_28_x86_64.whl",
                   "upload-time": "2026-10-09T08:13:28.000Z"},
                  {"filename": "pyarrow-26.0.0.tar.gz", "upload-time": "2026-10-09T07:00:00Z"},
                  {"filename": "pyarrow-25.0.1.tar.gz", "upload-time": "2026-08-10T12:36:33Z"}]}


def test_upload_day_and_the_pins_date():
    assert str(upload_day(PAGE, "26.0.0")) == "2026-10-09"
    assert upload_day(PAGE, "1.0") is None
    pages = {"pyarrow": PAGE, "torch": {"files": []}}
    assert pins_date({"pyarrow": "25.0.1", "torch": "2.13.0", "trl": None}, {}, listing=pages.__getitem__) == \
        "2026-08-11"
    assert pins_date({"torch": "2.13.0"}, {}, listing=pages.__getitem__) is None


def test_a_candidate_cures_its_own_defect_even_where_another_still_breaks_the_module():
    from ftcompat.core.health import Defect, Health
    from ftcompat.env.repair import cured

    arrow = Defect("transformers.trainer", "ImportError", "pyarrow requires NumPy 2.0", "pyarrow")
    peft = Defect("transformers.trainer", "ImportError", "cannot import name 'EncoderDecoderCache'", "peft",
                  "transformers")
    assert cured(Health(defects=(peft,)), "pyarrow", arrow.root)  # pyarrow's part is done; peft is the next fix
    assert not cured(Health(defects=(arrow,)), "pyarrow", arrow.root)
    other = Defect("datasets", "AttributeError", "module 'pyarrow' has no attribute 'x'", "pyarrow")
    assert not cured(Health(defects=(other,)), "pyarrow", arrow.root)  # an older release that breaks otherwise
    assert not cured(Health(error="probe died"), "pyarrow", arrow.root)
