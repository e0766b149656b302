"""``ftcompat validate`` and ``ftcompat ci-plan``: the configuration, checked and turned into CI jobs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ftcompat.cli.common import root_of
from ftcompat.config.library import is_builtin, library_dir
from ftcompat.config.matrix import load
from ftcompat.env import preflight
from ftcompat.flows import ciplan, noxdrive


def cmd_validate(args) -> int:
    """Validate the config (and with --online, every pin against the index and the resolver)."""
    matrix = load(args.matrix)
    here = Path(args.matrix).resolve().parent == Path.cwd().resolve()
    name = args.matrix if here or not is_builtin(args.matrix) else "the built-in matrix"
    pairs = f", {len(matrix.pairs)} handoff pairs" if matrix.pairs else ""
    print(f"{name}: {len(matrix.environments)} combos{pairs}, {len(matrix.models)} models, "
          f"{len(matrix.cases)} cases: {'valid; checking the pins online ...' if args.online else 'ok'}")
    if args.online:
        return preflight.validate_online(matrix)
    return 0


def _read_sessions(args) -> list[dict]:
    if args.sessions == "-":
        return json.loads(sys.stdin.read())
    if args.sessions:
        return json.loads(Path(args.sessions).read_text(encoding="utf-8"))
    if args.noxfile:
        return ciplan.nox_sessions(Path(args.noxfile))

    # ftcompat's own noxfile, pointed at the config (a project's file, or matrix.yaml) as `ftcompat run` does
    config = Path(args.matrix)
    return ciplan.nox_sessions(library_dir() / "noxfile.py", noxdrive.environment(config, root_of(config), None))


def cmd_ci_plan(args) -> int:
    """Print the CI job matrix ({"include": [...]}) for the selected combos from nox's session list."""
    sessions = _read_sessions(args)
    gpu_runner = ciplan.gpu_runner_labels(args.gpu_runner)
    matrix = ciplan.plan(sessions, gpu_runner, args.cpu_runner, args.select, args.pins)
    if not gpu_runner and any(ciplan.is_gpu(s) for s in ciplan.combo_sessions(sessions)):
        print("ftcompat ci-plan: no GPU runner configured; the gpu combos are left out", file=sys.stderr)
    print(json.dumps(matrix, indent=2))
    if args.github_output:
        with open(args.github_output, "a", encoding="utf-8") as fh:
            for key, value in ciplan.outputs(matrix, sessions, gpu_runner).items():
                fh.write(f"{key}={value}\n")  # single-line JSON: no heredoc delimiter needed
    return 0


def register(sub) -> None:
    """Add ``validate`` and ``ci-plan``."""
    p = sub.add_parser("validate", help=cmd_validate.__doc__)
    p.add_argument("--online", action="store_true",
                   help="also check every pin is on the package index and each combo resolves (uv; installs nothing)")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("ci-plan", help=cmd_ci_plan.__doc__,
                       description="Print the nightly workflow's job matrix from nox's session list.")
    p.add_argument("--sessions", metavar="FILE",
                   help="`nox -l --json -t combo` output to read ('-' for stdin); default: run nox")
    p.add_argument("--noxfile", help="noxfile to list (default: ftcompat's own, pointed at the config)")
    p.add_argument("--gpu-runner", default="", metavar="JSON",
                   help='runner labels for gpu combos, a JSON list (default ["self-hosted","gpu"]; none: skip them)')
    p.add_argument("--cpu-runner", default=ciplan.DEFAULT_CPU_RUNNER, help="runner for the other combos")
    p.add_argument("--select", default="", metavar="GLOBS",
                   help="combo id globs (tag:GLOB for tags), comma or space separated (default: all)")
    p.add_argument("--pins", nargs="*", default=[], metavar="PKG==VER",
                   help="ad-hoc pins: add a job running `ftcompat adhoc PINS`")
    p.add_argument("--github-output", metavar="PATH",
                   help="also append matrix/cpu/gpu/adhoc/any_*/complete/combos outputs to this file ($GITHUB_OUTPUT)")
    p.set_defaults(func=cmd_ci_plan)
