"""Rendering against golden files (set FTCOMPAT_UPDATE_GOLDEN=1 to rewrite them after a deliberate change)."""

import dataclasses
import os

import pytest
from conftest import FIXTURES

from ftcompat.results import grid as grid_mod
from ftcompat.results import render

GOLDEN = FIXTURES.parent / "golden"


@pytest.fixture
def grid(fixture_matrix, fixture_cases):
    got = grid_mod.merge(fixture_matrix, fixture_cases, FIXTURES / "cells")
    return dataclasses.replace(got, generated_at="2026-11-21T00:00:00Z")


def check_golden(name, text):
    path = GOLDEN / name
    if os.environ.get("FTCOMPAT_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; rerun with FTCOMPAT_UPDATE_GOLDEN=1 if intended"


def test_markdown_golden(grid):
    check_golden("GRID.md", render.markdown(grid))


def test_terminal_golden(grid):
    check_golden("terminal.txt", render.terminal(grid))


def test_same_signature_shares_one_note(grid):
    text = render.markdown(grid)
    assert text.count("'DynamicCache' object has no attribute 'seen_tokens'") == 1
    assert text.count("📌 known [1]") == 2


def test_known_fixed_and_stale_entries(grid):
    text = render.markdown(grid)
    assert "## Known issues" in text and "https://github.com/example/upstream/issues/1" in text
    assert "❓ fixed? [2]" in text
    assert "known issue 'stale' covers no cell in this grid" in text
    assert text.index("## Known issues") < text.index("## Possibly fixed") < text.index("## Skipped")


def test_unpinned_versions_say_newest(grid):
    assert "newest" in render.versions_table(grid, "github")


def test_header_splits_case_variant_model():
    assert render.header("gen[remote@tiny-a]", "|") == "gen|remote|@tiny-a"
    assert render.header("api[import]", "|") == "api|import"


def test_a_device_combo_says_its_unpinned_versions_are_the_devices(grid):
    combo = {**grid.combos[0], "tags": ["device"], "pins": {"torch": None}, "resolved": {"torch": "2.11.0"}}
    table = render.versions_table(dataclasses.replace(grid, combos=(combo,)), "github")
    assert "2.11.0 (the device's)" in table and "newest" not in table
