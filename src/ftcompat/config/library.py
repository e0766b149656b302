"""Where ftcompat's built-in library is: the canonical cases and the default matrix.

The repository keeps them at its top level (``matrix.yaml``, ``cases/``, ``noxfile.py``, as the
design card says); the wheel's build maps them into the package as ``ftcompat/library/``. An
installed ftcompat reads the packaged copy, a checkout (or an editable install of one) its own.
"""

from __future__ import annotations

from pathlib import Path

from ftcompat.core.errors import InputError

PACKAGED = Path(__file__).resolve().parents[1] / "library"
CHECKOUT = Path(__file__).resolve().parents[3]


def library_dir() -> Path:
    """The folder holding the built-in ``matrix.yaml``, ``cases/`` and ``noxfile.py``."""
    for folder in (PACKAGED, CHECKOUT):
        if (folder / "matrix.yaml").is_file() and (folder / "cases").is_dir() and (folder / "noxfile.py").is_file():
            return folder
    raise InputError(f"ftcompat's built-in library is missing (no {PACKAGED / 'matrix.yaml'}); "
                     "reinstall ftcompat from its wheel or sdist")


def builtin_matrix() -> Path:
    """The built-in matrix file."""
    return library_dir() / "matrix.yaml"


def is_builtin(path: Path | str) -> bool:
    """True when ``path`` is the built-in matrix (of the wheel or of this checkout)."""
    try:
        return Path(path).resolve() == builtin_matrix().resolve()
    except InputError:
        return False


def packaged(path: Path | str) -> bool:
    """True when ``path`` lies inside the installed package (where no result may be written)."""
    return Path(path).resolve().is_relative_to(PACKAGED)
