"""What every command needs: where the matrix is, and the project root it sits in."""

from __future__ import annotations

from pathlib import Path


def matrix_path(given: str) -> str:
    """matrix.yaml here, else the one of the checkout ftcompat was installed from."""
    if Path(given).exists() or given != "matrix.yaml":
        return given
    checkout = Path(__file__).resolve().parents[3] / "matrix.yaml"
    return str(checkout) if checkout.exists() else given


def root_of(matrix: str) -> Path:
    """The project root: the folder the matrix file is in."""
    return Path(matrix).resolve().parent
