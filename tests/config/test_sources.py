"""Pins at a git ref in the config: their value, where their history is (sources:, --source), and what is refused."""

import json

import jsonschema
import pytest
import yaml
from conftest import ROOT
from helpers import PINS, project

from ftcompat.config.checks import MatrixError
from ftcompat.config.matrix import SOURCES_ENV, load

SCHEMA = json.loads((ROOT / "src" / "ftcompat" / "config" / "matrix.schema.json").read_text())


def problems_of(path):
    with pytest.raises(MatrixError) as err:
        load(path)
    return [p.render(str(path)) for p in err.value.problems]


def test_a_git_pin_takes_its_public_repository_or_the_configs_source(tmp_path, monkeypatch):
    monkeypatch.delenv(SOURCES_ENV, raising=False)
    pins = {**PINS, "trl": "@main", "peft": "@v0.17.0"}
    path = project(tmp_path, combos=[{"id": "prod", "python": "3.11", "pins": pins}], sources={"trl": "../trl"})
    matrix = load(path)
    combo = matrix.combo("prod")
    assert combo.git_pins == {"peft": "v0.17.0", "trl": "main"} and combo.tracks_newest
    assert combo.sources == {"trl": str((tmp_path.parent / "trl").resolve())}  # relative to the config file
    reqs = combo.requirements()
    assert f"trl @ git+{(tmp_path.parent / 'trl').as_uri()}@main" in reqs
    assert "peft @ git+https://github.com/huggingface/peft@v0.17.0" in reqs
    monkeypatch.setenv(SOURCES_ENV, "trl=https://example.com/fork/trl.git")  # --source, over the config's
    assert load(path).combo("prod").sources == {"trl": "https://example.com/fork/trl.git"}


def test_a_pinned_commit_does_not_track_anything(tmp_path):
    pins = {**PINS, "trl": "@" + "a" * 40}
    matrix = load(project(tmp_path, combos=[{"id": "prod", "python": "3.11", "pins": pins}]))
    assert not matrix.combo("prod").tracks_newest


@pytest.mark.parametrize("pin, message", [
    ({"torch": "@main"}, "torch is not pure Python"),
    ({"trl": "@main..v1"}, "is not a git ref"),
    ({"mylib": "@main"}, "no public repository ftcompat knows"),
])
def test_a_git_pin_that_cannot_be_built_is_named(tmp_path, pin, message):
    path = project(tmp_path, combos=[{"id": "prod", "python": "3.11", "pins": {**PINS, **pin}}])
    found = problems_of(path)
    assert any(message in p and f"combos[0].pins.{next(iter(pin))}" in p for p in found), found


def test_a_source_must_be_text(tmp_path):
    assert any("sources.trl" in p and "expected a folder or a git URL" in p
               for p in problems_of(project(tmp_path, sources={"trl": 3})))


def test_the_schema_takes_git_pins_and_sources():
    data = yaml.safe_load((ROOT / "matrix.yaml").read_text())
    jsonschema.validate({**data, "sources": {"trl": "../trl"}}, SCHEMA)
    main = next(c for c in data["combos"] if c["id"] == "main-trl")
    assert main["pins"]["trl"] == "@main" and "main" in main["tags"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "combos": [{**main, "pins": {**main["pins"], "trl": "@"}}]}, SCHEMA)
