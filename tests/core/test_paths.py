"""Portable paths: what a result quotes of this machine's folders reads the same everywhere."""

import tempfile

from ftcompat.core.paths import Portable


def test_pytest_base_temp_names_neither_the_user_nor_the_run():
    tmp = tempfile.gettempdir()
    text = Portable().text(f"OSError: no file named model.safetensors in {tmp}/pytest-of-alice/pytest-234/t_0/saved")
    assert text == "OSError: no file named model.safetensors in <tmp>/t_0/saved"
    assert "alice" not in text


def test_site_packages_and_the_project_are_relative():
    text = Portable("/w").text("/w/cases/x.py:3 and /opt/venv/lib/python3.11/site-packages/trl/__init__.py")
    assert text == "cases/x.py:3 and site-packages/trl/__init__.py"
