from pathlib import Path

import pytest
import yaml

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


@pytest.fixture
def fixture_cases():
    from ftcompat.cases import discover

    return discover(FIXTURES / "cases")


@pytest.fixture
def matrix_data():
    """The fixture matrix as parsed YAML, for tests to break one thing at a time."""
    return yaml.safe_load((FIXTURES / "matrix.yaml").read_text())


@pytest.fixture
def fixture_matrix(matrix_data, fixture_cases):
    from ftcompat.matrix import parse

    return parse(matrix_data, "matrix.yaml", fixture_cases)
