"""What every command needs: which config file to read, and the folder its results go to."""

from __future__ import annotations

from pathlib import Path

from ftcompat.config.library import builtin_matrix, is_builtin
from ftcompat.config.project import FILE_NAME

# Looked for in the current folder, in this order, when no --config is given.
CONFIG_NAMES = (FILE_NAME, "matrix.yaml")


def config_path(given: str | None) -> str:
    """The config to read: the one given, else ftcompat.yaml or matrix.yaml here, else the built-in matrix."""
    if given:
        return given
    for name in CONFIG_NAMES:
        if Path(name).is_file():
            return name
    return str(builtin_matrix())


def matrix_path(given: str | None) -> str:
    """The same as ``config_path``, under the name the commands have always used."""
    return config_path(given)


def root_of(config: str | Path) -> Path:
    """The work folder (results/, .ftcompat/, .nox/): the config's own folder, or the current one for
    the built-in matrix, so an installed ftcompat never writes into its package."""
    if is_builtin(config):
        return Path.cwd().resolve()
    return Path(config).resolve().parent


REPAIRS = ("cap", "asof", "none")


def add_repair(parser) -> None:
    """``--repair``: how an environment ftcompat resolved itself is repaired when an import breaks in it."""
    parser.add_argument("--repair", choices=REPAIRS, default="cap",
                        help="when a package ftcompat chose breaks an import beside the pins: 'cap' it below its "
                             "first release that fails (default), resolve everything unpinned 'asof' the pins' date, "
                             "or 'none' (cells that need the broken import are error)")


def repair_method(value: str | None) -> str | None:
    """The runner's repair method for a ``--repair`` value (None: do not repair)."""
    return None if value in (None, "none") else value


def source_arg(value: str) -> str:
    """``PKG=PATH_OR_URL`` for ``--source``, refused by argparse (exit 2) when it is not that."""
    import argparse

    pkg, sep, where = value.partition("=")
    if not sep or not pkg.strip() or not where.strip() or "," in value:
        raise argparse.ArgumentTypeError(f"{value!r} is not PKG=PATH_OR_URL (e.g. trl=../trl)")
    return value


def add_source(parser) -> None:
    """``--source PKG=PATH_OR_URL``: where a package pinned at a git ref takes its history."""
    parser.add_argument("--source", action="append", default=[], type=source_arg, metavar="PKG=PATH_OR_URL",
                        help="where a package pinned at a git ref (trl@main) takes its history: a clone, a "
                             "mirror or a URL (default: its public repository; repeatable; over the config's "
                             "sources:)")
