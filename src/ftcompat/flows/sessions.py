"""nox sessions for a config: one per combo, plus ``render``. Nox is the engine that builds and runs them.

ftcompat's own ``noxfile.py`` and ``ftcompat run`` use this, and so can a project's own noxfile::

    # noxfile.py
    from ftcompat.noxsessions import register

    register("ftcompat.yaml")   # then: nox -l, nox -s <combo>, nox (CPU combos, then render)

Results (``results/``), environments' work files (``.ftcompat/``) go to the work folder: the config's
folder unless ``work`` (or FTCOMPAT_WORK) says otherwise.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import nox

from ftcompat.config.library import packaged
from ftcompat.config.matrix import load
from ftcompat.config.plan import case_selectors
from ftcompat.core.domain import Combo, Matrix
from ftcompat.core.errors import InputError
from ftcompat.env.installer import find_uv
from ftcompat.flows.combo import nox_session

WORK_ENV, CONFIG_ENV = "FTCOMPAT_WORK", "FTCOMPAT_CONFIG"
GPU_TAGS = frozenset({"gpu", "device"})
# Run only when named (``--combos tag:main``): the upstream-main lane builds from git histories, which a
# machine without GitHub (or a mirror given as a source) cannot reach, and its answer moves every day.
ON_DEMAND_TAGS = frozenset({"main"})


def _fail(exc: InputError) -> None:
    """One message naming file, place and value, and the same exit code ``ftcompat validate`` gives."""
    print(f"nox: {exc}", file=sys.stderr)
    sys.exit(exc.return_code)


def register(config: str | Path | None = None, work: str | Path | None = None):
    """Define a nox session per combo of ``config`` (FTCOMPAT_CONFIG wins) and ``render``; return the matrix.

    ``nox`` with no ``-s`` runs every combo that needs no GPU (none tagged ``gpu`` or ``device``), then ``render``.
    """
    import nox


    config = Path(os.environ.get(CONFIG_ENV) or config or "ftcompat.yaml").resolve()
    work = Path(os.environ.get(WORK_ENV) or work or config.parent).resolve()
    try:
        if packaged(work):  # never write results into the installed package
            raise InputError(f"no work folder for {config}: run `ftcompat run`, or set {WORK_ENV}")
        matrix = load(config)
        if os.environ.get("FTCOMPAT_CASES") is not None:  # a typo must not run nothing and succeed
            case_selectors(os.environ["FTCOMPAT_CASES"], matrix)
    except InputError as exc:
        _fail(exc)
    nox.options.default_venv_backend = "uv|virtualenv" if find_uv() else "virtualenv"
    nox.options.reuse_venv = "yes"
    nox.options.envdir = str(work / ".nox")
    nox.options.sessions = [*default_combos(matrix), "render"]
    for combo in matrix.combos:
        _combo_session(combo, config, work)

    @nox.session(python=False, tags=["cpu", "gpu"])
    def render(session: nox.Session) -> None:
        """Merge results/cells into results/grid.json and write results/GRID.md."""
        session.run(sys.executable, "-m", "ftcompat.cli", "--config", str(config), "render",
                    "--results", str(work / "results"))

    return matrix


def default_combos(matrix: Matrix) -> list[str]:
    """The combos a plain run takes: all but those that need a GPU runner (``gpu``), the device check, or
    upstream main (``main``: run with ``--combos tag:main``)."""
    return [c.id for c in matrix.combos if not (GPU_TAGS | ON_DEMAND_TAGS) & set(c.tags)]


def _combo_session(combo: Combo, config: Path, work: Path) -> None:
    def grid_cell_session(session: Any) -> None:
        nox_session(session, combo.id, work, config)

    grid_cell_session.__doc__ = combo.description or f"Run the cases in combo {combo.id}."
    if combo.pair:  # the two sides' environments are built by the pair's run, none by nox
        nox.session(name=combo.id, python=False, tags=["combo", "pair", *combo.tags])(grid_cell_session)
        return
    nox.session(name=combo.id, python=combo.python, tags=["combo", *combo.tags], reuse_venv=True)(grid_cell_session)
