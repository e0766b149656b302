"""The timestamps ftcompat writes."""

import re

from ftcompat.core import clock


def test_files_and_names_use_utc_to_the_second():
    assert clock.utc(0) == "1970-01-01T00:00:00Z"
    assert clock.utc(1764633807) == "2025-12-02T00:03:27Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", clock.utc_now())
    assert re.fullmatch(r"\d{8}T\d{6}Z", clock.name_stamp())
