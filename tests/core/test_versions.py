"""Version text as the grid holds it."""

from ftcompat.core.versions import key, public


def test_local_labels_are_dropped_and_order_is_pep440():
    assert public("2.13.0+cpu") == "2.13.0" and public(None) is None
    assert key("4.9.0") < key("4.10.0") and key("2.13.0+cpu") == key("2.13.0")


def test_text_that_is_no_version_sorts_first():
    assert key("not-a-version") < key("0.0.1") and key(None) == key("0")
