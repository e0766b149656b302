"""The pipeline: stages run in order, stop when one is done, and the grid stages write the grid."""

import contextlib
import dataclasses
import json
import shutil

from conftest import FIXTURES

from ftcompat.flows import combo, render
from ftcompat.flows.stages import execute


def test_stages_run_in_order_until_one_is_done_and_what_they_held_is_released(tmp_path):
    seen, released = [], []

    @contextlib.contextmanager
    def held():
        yield
        released.append(seen[:])

    def first(state):
        seen.append("first")
        state.exits.enter_context(held())
        return state

    def stop(state):
        seen.append("stop")
        return dataclasses.replace(state, done="nothing left to do")

    def never(state):
        seen.append("never")
        return state

    state = execute((first, stop, never), render.GridState(tmp_path))
    assert seen == ["first", "stop"] and state.done == "nothing left to do"
    assert released == [["first", "stop"]]  # closed after the last stage that ran, not before


def test_the_grid_stages_write_grid_page_and_history(tmp_path):
    shutil.copy(FIXTURES / "matrix.yaml", tmp_path / "matrix.yaml")
    shutil.copytree(FIXTURES / "cases", tmp_path / "cases")
    shutil.copytree(FIXTURES / "cells", tmp_path / "results" / "cells")
    state = execute(render.GRID, render.GridState(tmp_path))
    grid_json, grid_md, index, kept = state.written
    data = json.loads(grid_json.read_text())
    assert data["schema"] == "ftcompat-grid/1" and len(data["cells"]) == len(state.grid.cells) > 0
    assert grid_md.read_text().startswith("#") and index.read_text().startswith("<!DOCTYPE html>")
    assert kept.parent == tmp_path / "results" / "history" and kept.read_text() == grid_json.read_text()
    again = execute(render.GRID, render.GridState(tmp_path, keep_history=False))
    assert len(again.written) == 3


def test_a_combo_whose_selector_selects_none_of_its_cases_stops_before_any_install(tmp_path):
    shutil.copy(FIXTURES / "matrix.yaml", tmp_path / "matrix.yaml")
    shutil.copytree(FIXTURES / "cases", tmp_path / "cases")
    state = execute(combo.COMBO, combo.ComboState(tmp_path, "canary", tmp_path / ".nox" / "canary", selectors="api"))
    assert state.done == "FTCOMPAT_CASES selects none of canary's cases"
    assert state.outcome is None and not (tmp_path / "results").exists()


def test_grid_md_names_the_config_it_came_from(tmp_path, monkeypatch):
    from helpers import project

    from ftcompat.flows import render

    config = project(tmp_path)
    state = render.flow(tmp_path, config, keep_history=False)
    text = (state.out / "GRID.md").read_text()
    assert "from ftcompat.yaml." in text and "from matrix.yaml" not in text
