"""The config's ``handoffs:``: pairs of combos expanded from globs into grid rows, and their mistakes refused."""

import pytest
from helpers import PINS, project

from ftcompat.config.checks import MatrixError
from ftcompat.config.matrix import load
from ftcompat.config.plan import combo_cases
from ftcompat.core.domain import HANDOFF

COMBOS = [{"id": "train-5", "python": "3.11", "pins": PINS},
          {"id": "serve-4.42", "python": "3.12", "pins": {**PINS, "transformers": "4.42.4", "peft": "0.13.2"}},
          {"id": "serve-4.57", "python": "3.11", "pins": {**PINS, "transformers": "4.57.6"}, "tags": ["gpu"]}]


def load_with(tmp_path, handoffs, **more):
    return load(project(tmp_path, combos=COMBOS, handoffs=handoffs,
                        builtin_cases=["api_surface", "lora_adapter_handoff", "tokenizer_handoff"], **more))


def test_globs_pick_every_pair_but_a_combo_with_itself_and_each_row_is_the_consumers_environment(tmp_path):
    matrix = load_with(tmp_path, [{"from": "train-5", "to": "serve-*"}, {"from": "serve-4.57", "to": "train-5"}])
    assert [c.id for c in matrix.pairs] == ["train-5~serve-4.42", "train-5~serve-4.57", "serve-4.57~train-5"]
    assert [c.id for c in matrix.environments] == ["train-5", "serve-4.42", "serve-4.57"]
    row = matrix.combo("train-5~serve-4.42")
    assert row.pair == ("train-5", "serve-4.42") and row.python == "3.12"
    assert dict(row.pins) == dict(matrix.combo("serve-4.42").pins) and HANDOFF in row.tags
    assert "gpu" in matrix.combo("serve-4.57~train-5").tags  # made on a GPU runner: the pair needs one too
    # Only handoff cases run in a pair's row, and never in one environment.
    assert combo_cases(matrix, row) == ["lora_adapter_handoff", "tokenizer_handoff"]
    assert combo_cases(matrix, matrix.combo("train-5")) == ["api_surface", "mine"]


def test_cases_narrow_a_pair(tmp_path):
    matrix = load_with(tmp_path, [{"from": "train-5", "to": "serve-4.42", "cases": ["tok*"]}])
    assert combo_cases(matrix, matrix.combo("train-5~serve-4.42")) == ["tokenizer_handoff"]


@pytest.mark.parametrize("handoffs, said", [
    ([{"from": "train-6", "to": "serve-4.42"}], "handoffs[0].from: 'train-6' selects no combo; did you mean 'train-5'"),
    ([{"from": "train-5", "to": "train-5"}], "handoffs[0]: from and to select the same one combo"),
    ([{"from": "train-5", "to": "serve-4.42", "cases": ["api_surface"]}],
     "handoffs[0].cases[0]: 'api_surface': api_surface runs in one environment, not a handoff"),
    ([{"from": "train-5", "to": "serve-4.42", "cases": ["lora_handoff"]}], "did you mean 'lora_adapter_handoff'"),
    ([{"from": "train-5", "to": "serve-4.42"}, {"from": "train-*", "to": "serve-4.42"}],
     "handoffs[1]: the pair train-5 → serve-4.42 is already declared"),
    ([{"from": "train-5", "too": "serve-4.42"}], "handoffs[0]"),
    ({"from": "train-5"}, "handoffs: expected a list of {from, to} pairs"),
])
def test_a_mistake_is_named_by_its_place(tmp_path, handoffs, said):
    with pytest.raises(MatrixError) as err:
        load_with(tmp_path, handoffs)
    assert said in str(err.value)
    assert err.value.return_code == 2
