"""The named sets of statuses, and how each status is shown."""

from ftcompat.core.status import (
    FAILING,
    LOOK,
    NEEDS_ATTENTION,
    NOT_CHECKED,
    RERUN_IF_TRANSIENT,
    REUSABLE,
    TRIAGE_LOOK,
    TRIAGED,
    Status,
    Triage,
)


def test_failing_is_what_did_not_hold_and_flaky_only_needs_attention():
    assert FAILING == {Status.FAIL, Status.ERROR, Status.CRASH, Status.TIMEOUT}
    assert NEEDS_ATTENTION == FAILING | {Status.FLAKY}


def test_only_exceptions_of_the_versions_are_matched_against_known_issues():
    assert TRIAGED < FAILING and Status.CRASH not in TRIAGED and Status.TIMEOUT not in TRIAGED


def test_a_timeout_is_not_rerun_and_accidents_of_a_run_are_not_reused():
    assert Status.TIMEOUT not in RERUN_IF_TRANSIENT and RERUN_IF_TRANSIENT < FAILING
    assert not REUSABLE & {Status.CRASH, Status.TIMEOUT, Status.ERROR, Status.NOT_INSTALLABLE}


def test_nothing_checked_is_neither_passing_nor_failing():
    assert not NOT_CHECKED & (FAILING | {Status.PASS, Status.FLAKY})


def test_every_status_and_triage_has_one_distinct_look():
    assert set(LOOK) == set(Status) and set(TRIAGE_LOOK) == {Triage.KNOWN, Triage.FIXED}
    looks = [*LOOK.values(), *TRIAGE_LOOK.values()]
    for attr in ("emoji", "symbol", "css", "word"):
        values = [getattr(look, attr) for look in looks]
        assert len(set(values)) == len(values), attr
    assert all(look.legend for look in looks)
