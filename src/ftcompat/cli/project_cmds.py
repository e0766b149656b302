"""``ftcompat init``, ``run`` and ``cases``: a project of one's own, run through nox."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ftcompat.cli.common import add_source, root_of
from ftcompat.config.cases import cases_of
from ftcompat.config.library import library_dir
from ftcompat.config.matrix import load
from ftcompat.config.plan import case_selectors
from ftcompat.config.project import FILE_NAME
from ftcompat.core.errors import InputError, MachineError
from ftcompat.flows import noxdrive

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
CASE_DIR, EXAMPLE_CASE = "ftcompat_cases", "my_lora_step.py"


def cmd_init(args) -> int:
    """Write a commented ftcompat.yaml and an example case of your own in this folder."""
    folder = Path(args.dir)
    config, case = folder / FILE_NAME, folder / CASE_DIR / EXAMPLE_CASE
    existing = [p for p in (config, case) if p.exists()]
    if existing and not args.force:
        raise InputError(f"{existing[0]} exists; ftcompat init overwrites nothing (--force to replace it)")
    case.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TEMPLATES / FILE_NAME, config)
    shutil.copyfile(TEMPLATES / EXAMPLE_CASE, case)
    load(config)  # what init writes must validate as it stands
    ignored = ignore_work_folders(folder)
    if ignored:
        print(f"added {', '.join(ignored)} to {folder / '.gitignore'} (environments and work, not results)")
    print(f"wrote {config} and {case}\n\nnext:\n  ftcompat validate\n  ftcompat run          "
          "# every combo that needs no GPU; --combos GLOB for some\n  cat results/GRID.md")
    return 0


IGNORED = (".nox/", ".ftcompat/")


def ignore_work_folders(folder: Path) -> list[str]:
    """Add the environments' and work folders to ``.gitignore`` (made if missing); return the lines added."""
    path = folder / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    have = {line.strip().rstrip("/") for line in text.splitlines()}
    missing = [p for p in IGNORED if p.rstrip("/") not in have and f"/{p.rstrip('/')}" not in have]
    if missing:
        lead = "" if not text or text.endswith("\n") else "\n"
        added = "# ftcompat: environments and work folders\n" + "".join(f"{m}\n" for m in missing)
        path.write_text(text + lead + added, encoding="utf-8")
    return missing


ASK_ABOVE = 8  # more combos than this in one run is hours and tens of GB: said first, and run only with --all


def cmd_run(args) -> int:
    """Build each selected combo's environment with nox and uv, run its cases, render the grid."""
    matrix = load(args.matrix)
    combos = noxdrive.select(matrix, args.combos)
    if len(combos) > ASK_ABOVE and not args.all:
        builtin = Path(args.matrix).resolve() == (library_dir() / "matrix.yaml").resolve()
        where = ("there is no project file here (ftcompat.yaml), so this is the built-in matrix: "
                 if builtin else f"{args.matrix}: ")
        shown = ", ".join(combos[:6]) + (f" and {len(combos) - 6} more" if len(combos) > 6 else "")
        pairs = sum(1 for c in combos if c in {p.id for p in matrix.pairs})
        counted = " and ".join(t for t in (f"{len(combos) - pairs} combos" * bool(len(combos) - pairs),
                                           f"{pairs} handoff pairs (two each)" * bool(pairs)) if t)
        raise InputError(f"{where}{counted} would build environments (1 to 6 GB each, several GB of "
                         f"downloads for a CUDA torch) and run their cases, hours on a small machine: {shown}. "
                         f"Pass --all to run them all, --combos GLOB for some"
                         + (", or `ftcompat init` to start a project of your own" if builtin else ""))
    if args.cases:
        case_selectors(",".join(args.cases), matrix, "--cases")  # a typo is refused here, not in every session
    elif os.environ.get("FTCOMPAT_CASES") is not None:
        case_selectors(os.environ["FTCOMPAT_CASES"], matrix)
    code = noxdrive.run(Path(args.matrix), root_of(args.matrix), combos, args.cases, render=not args.no_render,
                      extra=args.nox_args)
    if code:
        # Bad input was refused above, so a failed session is the machine's (or a combo busy elsewhere).
        raise MachineError(f"nox exited with status {code}: a session failed (its message above says why); "
                           "the cells it wrote are kept")
    return 0


def cmd_cases(args) -> int:
    """List the config's cases: id, where it comes from, its models and first docstring line."""
    matrix = load(args.matrix)
    builtin = (library_dir() / "cases").resolve()
    for cid, case in cases_of(matrix).items():
        where = "built-in" if case.path.resolve().parent == builtin else _shown(case.path)
        kind = "  handoff (ftcompat handoff)" if case.handoff else ""
        print(f"{cid:24} {where:10} models: {', '.join(matrix.cases[cid].models) or '-'}{kind}\n    {case.summary}")
    return 0


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def register(sub) -> None:
    """Add ``init``, ``run`` and ``cases``."""
    p = sub.add_parser("init", help=cmd_init.__doc__)
    p.add_argument("dir", nargs="?", default=".", help="the project's folder (default: here)")
    p.add_argument("--force", action="store_true", help="replace files init wrote before")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("run", help=cmd_run.__doc__)
    p.add_argument("--combos", nargs="+", metavar="GLOB",
                   help="combo id globs, tag:GLOB by tag (default: every combo not tagged gpu, device or main; "
                        "tag:main runs the upstream-main lane)")
    p.add_argument("--cases", nargs="+", metavar="GLOB", help="case id globs (default: each combo's own)")
    p.add_argument("--no-render", action="store_true", help="leave results/grid.json as it is")
    add_source(p)
    p.add_argument("--all", action="store_true",
                   help=f"run even when more than {ASK_ABOVE} combos are selected (otherwise said first, exit 2)")
    p.add_argument("nox_args", nargs="*", metavar="-- NOX_ARGS", help="passed on to nox after `--`")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("cases", help=cmd_cases.__doc__)
    p.set_defaults(func=cmd_cases)
