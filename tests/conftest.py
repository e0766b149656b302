from pathlib import Path

import pytest
import yaml

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


@pytest.fixture
def fixture_cases():
    from ftcompat.config.cases import discover

    return discover(FIXTURES / "cases")


@pytest.fixture
def matrix_data():
    """The fixture matrix as parsed YAML, for tests to break one thing at a time."""
    return yaml.safe_load((FIXTURES / "matrix.yaml").read_text())


@pytest.fixture
def fixture_matrix(matrix_data, fixture_cases):
    from ftcompat.config.matrix import parse

    return parse(matrix_data, "matrix.yaml", fixture_cases)


@pytest.fixture
def fake_uv(tmp_path, monkeypatch):
    """A uv stand-in (tests/fixtures/fake_uv.py) on FTCOMPAT_UV; returns a reader of the calls it got."""
    import json
    import sys

    script = tmp_path / "fake-uv"
    script.write_text(f"#!{sys.executable}\n" + (FIXTURES / "fake_uv.py").read_text())
    script.chmod(0o755)
    calls = tmp_path / "uv-calls.jsonl"
    monkeypatch.setenv("FTCOMPAT_UV", str(script))
    monkeypatch.setenv("FAKE_UV_LOG", str(calls))
    monkeypatch.setenv("FAKE_UV_CACHE", str(tmp_path / "uv-cache"))
    monkeypatch.setenv("FTCOMPAT_INSTALL_RETRIES", "2")
    monkeypatch.setenv("FTCOMPAT_RETRY_DELAYS", "0")

    def read():
        return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []

    return read
