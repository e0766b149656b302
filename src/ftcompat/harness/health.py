"""The environment health probe: import the stack's modules in the environment and report each failure's root cause.

Run by the controller before any cell, as ``python -m ftcompat.harness.health OUT [--module M ...] [--all]``:
one process imports the modules in order (a failure is caught, the next module tried) and writes
``core.health.Health`` as JSON to OUT (``-`` for stdout). For each failure it finds the root cause
(the innermost exception), the distribution whose code raised it and the one a failed import named.
Only the standard library is imported here before the probing starts.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import re
import sys
import time
import traceback
from importlib import metadata

from ftcompat.core.health import Defect, Health, canonical
from ftcompat.core.outcome import first_line, root_cause, without_env_paths

# What the cases rely on, in import order: the lower layers first, so a root cause shows where it starts.
STACK_MODULES = ("numpy", "torch", "transformers", "transformers.trainer", "accelerate", "datasets", "peft", "trl",
                 "trl.trainer.sft_trainer", "trl.trainer.dpo_trainer", "trl.trainer.grpo_trainer", "bitsandbytes")
# A module name whose distribution is spelled otherwise, for modules that are not installed (so not in metadata).
ALIASES = {"yaml": "pyyaml", "PIL": "pillow", "sklearn": "scikit-learn", "cv2": "opencv-python", "attr": "attrs",
           "google": "protobuf", "dateutil": "python-dateutil", "jwt": "pyjwt", "bs4": "beautifulsoup4"}
# Never imported by --all: the installer's and the test runner's own, and modules that start things.
_SKIP_ALL = {"pip", "setuptools", "pkg_resources", "_distutils_hack", "wheel", "pytest", "_pytest", "xdist",
             "py", "pluggy", "execnet", "iniconfig", "ftcompat", "__editable__", "this", "antigravity", "idlelib"}
_SITE = re.compile(r"(?:site|dist)-packages[/\\]([A-Za-z0-9_]+)")


def _owners() -> dict[str, list[str]]:
    try:
        return {k: list(v) for k, v in metadata.packages_distributions().items()}
    except Exception:  # noqa: BLE001 - a damaged metadata folder must not stop the probe
        return {}


def _installed() -> dict[str, str]:
    out: dict[str, str] = {}
    for dist in metadata.distributions():
        try:
            name = canonical(dist.metadata["Name"] or "")
        except Exception:  # noqa: BLE001
            continue
        if name:
            out.setdefault(name, dist.version)
    return out


class Probe:
    """Imports modules one after another, turning each failure into a ``Defect``."""

    def __init__(self) -> None:
        self.owners = _owners()
        self.installed = _installed()

    def distribution(self, module: str | None) -> str | None:
        """The distribution that holds (or would hold) a top-level module."""
        if not module:
            return None
        top = module.split(".")[0]
        owners = self.owners.get(top)
        if owners:
            return canonical(owners[0])
        return canonical(ALIASES.get(top, top))

    def raiser(self, exc: BaseException) -> str | None:
        """The distribution whose code raised ``exc``: its innermost frame inside an installed package."""
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            m = _SITE.search(frame.filename)
            top = m.group(1) if m else None
            if top is None and not frame.filename.startswith(("<", "/")) and "/" in frame.filename:
                top = frame.filename.split("/")[0]  # a compiled module's frame: ``pyarrow/lib.pyx``
            if top and top in self.owners:
                return self.distribution(top)
        return None

    def defect(self, module: str, exc: BaseException) -> Defect:
        """The root cause of a failed import, with the distributions it involves and their versions."""
        root = root_cause(exc)
        message = without_env_paths(first_line(str(root), 500))
        raised_by = self.raiser(root)
        named = getattr(root, "name", None) if isinstance(root, ImportError) else None
        missing = self.distribution(named) if named else None
        versions = {d: self.installed.get(d) for d in (raised_by, missing) if d}
        for dist, version in self.installed.items():  # named in the message: "requires NumPy 2.0"
            if len(dist) > 2 and re.search(rf"(?<![\w-]){re.escape(dist)}(?![\w-])", message, re.IGNORECASE):
                versions.setdefault(dist, version)
        if missing == raised_by:
            missing = None
        return Defect(module, type(root).__name__, message, raised_by, missing, versions)

    def run(self, modules: list[str]) -> Health:
        """Import each module; one that is not installed is absent, one whose parent failed is not tried."""
        start = time.monotonic()
        probed, absent, defects = [], [], []
        failed: set[str] = set()
        for module in modules:
            parent = module.rpartition(".")[0]
            if any(module == f or module.startswith(f + ".") for f in failed) or (parent and parent in absent):
                continue
            try:
                if importlib.util.find_spec(module) is None:
                    absent.append(module)
                    continue
            except (ImportError, ValueError):
                absent.append(module)  # its parent package is missing; an import error of it is probed there
                continue
            except Exception as exc:  # noqa: BLE001 - the parent's own import failed: that is the defect
                defects.append(self.defect(module, exc))
                failed.add(module)
                continue
            probed.append(module)
            try:
                importlib.import_module(module)
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - every failure is a finding
                defects.append(self.defect(module, exc))
                failed.add(module)
        return Health(tuple(probed), tuple(absent), tuple(defects), time.monotonic() - start)


def every_module() -> list[str]:
    """Every top-level module the environment's distributions install (``--all``: the doctor's view)."""
    tops = sorted(t for t in _owners() if t.isidentifier() and not t.startswith("_") and t not in _SKIP_ALL)
    return [*STACK_MODULES, *(t for t in tops if t not in STACK_MODULES)]  # a missing one is listed as absent


def main(argv: list[str] | None = None) -> int:
    """Probe and write the result; exit 0 whatever was found (the finding is in the file)."""
    parser = argparse.ArgumentParser(prog="python -m ftcompat.harness.health")
    parser.add_argument("out", help="where to write the JSON ('-': stdout)")
    parser.add_argument("--module", action="append", default=[], help="a module to import too (repeatable)")
    parser.add_argument("--only", action="store_true", help="import only the --module ones")
    parser.add_argument("--all", action="store_true", help="every installed top-level module too")
    args = parser.parse_args(argv)
    modules = [] if args.only else list(every_module() if args.all else STACK_MODULES)
    modules += [m for m in args.module if m not in modules]
    real = sys.stdout
    sys.stdout = sys.stderr  # what an imported module prints must not end up in the JSON
    try:
        text = json.dumps(Probe().run(modules).to_json(), indent=2, sort_keys=True) + "\n"
    finally:
        sys.stdout = real
    if args.out == "-":
        real.write(text)
    else:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
