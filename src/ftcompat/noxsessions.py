"""nox sessions for a config, for a project's own noxfile (the public face of ``flows.sessions``)::

    # noxfile.py
    from ftcompat.noxsessions import register

    register("ftcompat.yaml")   # then: nox -l, nox -s <combo>, nox (CPU combos, then render)
"""

from ftcompat.flows.sessions import CONFIG_ENV, WORK_ENV, default_combos, register

__all__ = ["CONFIG_ENV", "WORK_ENV", "default_combos", "register"]
