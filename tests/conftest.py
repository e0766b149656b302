import os
import shutil
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


def record(cell_id: str, status="pass", **fields):
    """A complete cell record for ``combo::case[variant@model]``, as the harness writes one."""
    from ftcompat.core.record import Record
    from ftcompat.core.status import Status

    combo, column = cell_id.split("::", 1)
    case, rest = column.split("[", 1)
    variant, _, model = rest.rstrip("]").partition("@")
    base = {"id": cell_id, "combo": combo, "case": case, "variant": variant, "model": model or None,
            "status": Status(status).value, "signature": None if status == "pass" else f"{status}: x",
            "exc_type": None, "message": None, "step": None, "details": {}, "traceback": None,
            "duration_s": 0.1, "finished_at": "2026-12-01T00:00:00Z",
            "env": {"python": "3.11.7", "device": {"type": "cpu", "name": "cpu", "cuda": None}, "versions": {}}}
    for key, value in fields.items():
        base[key] = value.value if hasattr(value, "value") else value
    return Record.from_dict(base)


def grid_of(records, combos=None, generated_at="2026-12-01T00:00:00Z", warnings=()):
    """A grid of these records; each combo an entry with its id unless ``combos`` gives them."""
    from ftcompat.results.grid import Grid

    records = tuple(records)
    if combos is None:
        combos = [{"id": c} for c in dict.fromkeys(r.combo for r in records)]
    columns = tuple(sorted(dict.fromkeys(r.column for r in records)))
    return Grid(records, tuple(combos), columns, generated_at, tuple(warnings))


# --- a real browser, for the grid page's and the documentation site's tests --------------------------------

def chromium_path():
    """FTCOMPAT_CHROMIUM, else Debian's Chromium (.ci/run installs it with apt), else a preinstalled Chrome."""
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    for candidate in (os.environ.get("FTCOMPAT_CHROMIUM"), "/usr/bin/chromium", *map(shutil.which, names)):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium driven by Playwright; skipped where no Chromium binary is installed."""
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium binary (apt-get install -y chromium, or set FTCOMPAT_CHROMIUM)")
    from playwright.sync_api import sync_playwright  # a dev dependency: a missing one is a failure, not a skip

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path)
        yield browser
        browser.close()
