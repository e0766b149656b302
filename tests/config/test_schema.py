"""The shipped JSON Schema agrees with the validator on the real and fixture matrices."""

import json

import pytest
import yaml
from conftest import FIXTURES, ROOT

jsonschema = pytest.importorskip("jsonschema")
SCHEMA = json.loads((ROOT / "src" / "ftcompat" / "config" / "matrix.schema.json").read_text())


@pytest.mark.parametrize("path", [ROOT / "matrix.yaml", FIXTURES / "matrix.yaml"])
def test_valid_matrices_pass_schema(path):
    jsonschema.validate(yaml.safe_load(path.read_text()), SCHEMA)


def test_schema_rejects_unknown_key_and_bad_version(matrix_data):
    matrix_data["combos"][0]["pin"] = {}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(matrix_data, SCHEMA)
    del matrix_data["combos"][0]["pin"]
    matrix_data["combos"][0]["pins"]["trl"] = "0.22.x"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(matrix_data, SCHEMA)
