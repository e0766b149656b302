"""ftcompat's command line: each command group registers itself; one handler turns errors into exit codes."""

from __future__ import annotations

import argparse
import os
import sys

from ftcompat import __version__
from ftcompat.cli import bisect_cmd, config_cmds, grid_cmds, project_cmds, run_cmds, triage_cmds, upgrade_cmd
from ftcompat.cli.common import matrix_path
from ftcompat.config.matrix import SOURCES_ENV
from ftcompat.core.errors import INTERRUPTED, FtcompatError

# In the order ``ftcompat --help`` lists them: start a project, configure, run, look at the grid, work from it.
GROUPS = (project_cmds, config_cmds, run_cmds, grid_cmds, triage_cmds, upgrade_cmd, bisect_cmd)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for ``ftcompat``."""
    parser = argparse.ArgumentParser(
        prog="ftcompat", description="Run fine-tuning-stack cases in pinned combos and work from the grid.")
    parser.add_argument("--config", "--matrix", dest="matrix", default=None, metavar="FILE",
                        help="project file or matrix (default: ./ftcompat.yaml, else ./matrix.yaml, else the "
                             "built-in matrix); results go beside it")
    parser.add_argument("--version", action="version", version=f"ftcompat {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    for command in sub.choices.values():  # `ftcompat run --config F` as well as `ftcompat --config F run`
        command.add_argument("--config", "--matrix", dest="matrix", default=argparse.SUPPRESS, metavar="FILE",
                             help="project file or matrix (as before the command)")
    return parser


def main(argv=None) -> int:
    """Entry point for the ``ftcompat`` command: one message and a documented exit code per kind of error."""
    args = build_parser().parse_args(argv)
    args.matrix = matrix_path(args.matrix)
    if getattr(args, "source", None):  # read where the config is loaded, here and in nox's sessions
        os.environ[SOURCES_ENV] = ",".join(args.source)
    try:
        return args.func(args)
    except FtcompatError as exc:  # errors.py: the code says what kind; the message, where and what
        print(f"ftcompat {args.command}: {exc}", file=sys.stderr)
        return exc.return_code
    except BrokenPipeError:  # `ftcompat pins | head`: the reader left; nothing more to say
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"ftcompat {args.command}: interrupted; finished cells are kept, run the same command to resume",
              file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
