"""Grid files read at the edge: a damaged one, even schema-valid JSON, is one line and exit 2, never a traceback."""

import json

import pytest
from conftest import FIXTURES

from ftcompat.cli import main
from ftcompat.core.errors import InputError
from ftcompat.results import gridload
from ftcompat.results import grid as grid_mod


@pytest.fixture
def good(tmp_path, fixture_matrix, fixture_cases):
    grid = grid_mod.merge(fixture_matrix, fixture_cases, FIXTURES / "cells")
    return grid.to_dict()


@pytest.mark.parametrize("damage, why", [
    (lambda d: d.update(warnings=5), "its 'warnings' is not a list of strings"),
    (lambda d: d["cells"][0].update(env="x"), "cells[0] has 'env' of the wrong type (str)"),
    (lambda d: d["combos"][0].update(pins=["torch"]), "combos[0] has 'pins' of the wrong type (list)"),
    (lambda d: d["cells"][0].update(id="no-separator"), "cells[0] has the id 'no-separator', not combo::case"),
    (lambda d: d["cells"][0].update(message=["x"]), "cells[0] has 'message' of the wrong type (list)"),
    (lambda d: d["cells"][0].update(env={"versions": "4.1"}), "cells[0] has env.versions that is not a mapping"),
])
def test_a_damaged_grid_says_what_is_wrong(tmp_path, good, damage, why):
    damage(good)
    path = tmp_path / "g.json"
    path.write_text(json.dumps(good))
    with pytest.raises(InputError, match=__import__("re").escape(why)):
        gridload.load(path)


def test_a_grid_nested_too_deeply_is_bad_input(tmp_path, capsys):
    path = tmp_path / "g.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    assert main(["pins", "--grid", str(path)]) == 2
    assert "is nested too deeply" in capsys.readouterr().err


def test_the_command_line_turns_a_damaged_grid_into_exit_2(tmp_path, good, capsys):
    good["cells"][0]["env"] = "x"
    path = tmp_path / "g.json"
    path.write_text(json.dumps(good))
    assert main(["pins", "--grid", str(path)]) == 2
    assert "has 'env' of the wrong type" in capsys.readouterr().err
