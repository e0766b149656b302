"""Standalone reproduction scripts: one cell as a PEP 723 script that ``uv run`` runs anywhere.

The script pins the cell's exact versions in its inline metadata, carries the case file verbatim
and the few harness modules it imports (stdlib-only at import time), builds its tiny model itself
and prints the failure. It needs neither this repository nor ftcompat installed.
"""

from __future__ import annotations

import pprint
from collections.abc import Mapping
from pathlib import Path

from ftcompat.core import gitref, imports
from ftcompat.core.domain import RECORDED
from ftcompat.core.record import Record

# The modules the script's own fixtures use, besides what the case imports.
FIXTURE_MODULES = ("ftcompat.harness.api", "ftcompat.harness.envinfo", "ftcompat.harness.models")
# Read as text and written into model folders by the modules above them, never imported.
DATA_PACKAGES = ("ftcompat.harness.standins",)


def support_modules(case_source: str) -> dict[str, Path]:
    """Every ftcompat module the case needs, by name: what it imports, transitively, plus its data files."""
    found = imports.closure(imports.imported(case_source) | set(FIXTURE_MODULES))
    for package in DATA_PACKAGES:
        if package in found:
            root = found[package].parent
            found |= {imports.name_of(p): p for p in root.rglob("*.py")}
    return dict(sorted(found.items()))


def support_sources(case_source: str) -> dict[str, str]:
    """The source of every support module, by module name."""
    return {name: path.read_text(encoding="utf-8") for name, path in support_modules(case_source).items()}


def literal(text: str) -> str:
    """A Python literal for ``text`` that keeps it readable: a raw triple-quoted string when possible."""
    for quote in ('"""', "'''"):
        if quote not in text and not text.endswith(("\\", quote[0])):
            return f"r{quote}{text}{quote}"
    # Both kinds of triple quote inside (a case holding file templates): escape, still multi-line.
    escaped = text.replace("\\", "\\\\").replace('"""', '""\\"')
    if escaped.endswith('"'):
        escaped = escaped[:-1] + '\\"'
    return '"""' + escaped + '"""'


def dependencies(versions: Mapping[str, str | None]) -> list[str]:
    """The PEP 723 dependency list: every recorded version exactly, local labels dropped; a build from a git
    commit (``1.10.0.dev0+gf2cd577``, the upstream-main lane) as that commit of the public repository."""
    deps = [gitref.pinned_requirement(p, str(versions[p])) for p in RECORDED if versions.get(p)]
    return [*deps, "pytest"]  # the case API marks skips with pytest.skip


def script(cell: Record, case_source: str, model: Mapping | None, generated: str, side: str | None = None) -> str:
    """Return the text of a script that reruns ``cell`` (a grid cell record) on its own.

    For a handoff cell, ``side`` says which half: ``produce`` runs ``produce_<variant>`` with the producer's
    versions and writes the artifact into ./artifact; ``consume`` loads it there with the consumer's versions.
    """
    env = cell.env or {}
    versions, python = env.get("versions") or {}, env.get("python")
    about = cell.handoff or {}
    expected = {"id": cell.id, "status": cell.status.value, "exc_type": cell.exc_type, "signature": cell.signature,
                "step": cell.step}
    if side == "produce" and about.get("failed") != "producer":  # it made the artifact: that is all it must do
        made = about.get("producer") or {}
        versions, python = made.get("versions") or {}, made.get("python") or python
        expected = {"id": cell.id, "status": "pass", "exc_type": None, "signature": None, "step": None}
    python = ".".join((python or "3.11").split(".")[:2])
    deps = "\n".join(f'#     "{d}",' for d in dependencies(versions))
    support = support_sources(case_source)
    sources = "{\n" + "".join(f"    {name!r}: {literal(src)},\n" for name, src in support.items()) + "}"
    packages = tuple(name for name in support if imports.is_package(name))
    function = f"{'produce' if side == 'produce' else 'test'}_{cell.variant}"
    title = f"Reproduce `{cell.id}`: {expected['signature']}" if expected["signature"] else \
        f"Make the artifact `{cell.id}` loads (its producer's half; then run repro.py)"
    return TEMPLATE.format(packages=repr(packages), title=title,
        deps=deps, python=python, id=cell.id,
        generated=generated, case=cell.case, function=function, side=repr(side),
        expected=pprint.pformat(expected, sort_dicts=True),
        model=pprint.pformat(dict(model), sort_dicts=True) if model else "None",
        case_source=literal(case_source), sources=sources,
    )


TEMPLATE = '''\
# /// script
# requires-python = "=={python}.*"
# dependencies = [
{deps}
# ]
# ///
"""{title}

Run it with `uv run repro.py` (or `pip install` the versions above and run it with Python).
It builds a tiny model and tokenizer from a config with a fixed seed, offline, then calls the
case function below. Exit status: 1 = reproduced, 0 = the case passed, 2 = it could not run.
Generated by ftcompat ({generated}); the case file and the helpers it imports are inlined below.
"""

import importlib.abc
import importlib.util
import linecache
import os
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

# Deprecation chatter from the pinned releases would bury the failure; the failure is not a warning.
warnings.simplefilter("ignore", FutureWarning)
warnings.simplefilter("ignore", DeprecationWarning)

EXPECTED = {expected}
MODEL = {model}
PACKAGES = {packages}
CASE, VARIANT = "{case}", "{function}"
SIDE = {side}  # a handoff's half: "produce" writes ./artifact (FTCOMPAT_ARTIFACT), "consume" loads it


def main():
    """Build the fixtures the case asks for, run it once and say whether the failure reproduced."""
    sys.meta_path.insert(0, _Inline(SUPPORT))
    work = Path(tempfile.mkdtemp(prefix="ftcompat-repro-"))
    if not MODEL or MODEL["spec"].get("kind", "tiny") == "tiny":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_MODULES_CACHE", str(work / "hf_modules"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("WANDB_DISABLED", "true")
    import pytest

    from ftcompat.harness import api, envinfo

    case = _load(f"cases.{{CASE}}", f"cases/{{CASE}}.py", CASE_SOURCE)
    if SIDE == "consume" and not any(_artifact().glob("*")):
        print(f"COULD NOT RUN: nothing in {{_artifact()}} to load; run `uv run produce.py` here first")
        return 2
    print("versions:", {{k: v for k, v in envinfo.versions().items() if v}})
    print("device:", envinfo.device_info())
    print(f"running {{CASE}}.{{VARIANT}}, expecting: {{EXPECTED['signature']}}", flush=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        kwargs = _fixtures(getattr(case, VARIANT), work, monkeypatch)
        log = api.begin()
        try:
            getattr(case, VARIANT)(**kwargs)
        except pytest.skip.Exception as exc:
            print(f"COULD NOT RUN (skipped): {{exc.msg}}")
            return 2
        except Exception as exc:  # noqa: BLE001 - the failure is what this script is for
            traceback.print_exc()
            seen = exc.__cause__ if isinstance(exc, api.CaseSetupError) and exc.__cause__ else exc
            where = f" (during: {{log.failed_step}})" if log.failed_step else ""
            print(f"\\nfailed{{where}}: {{type(seen).__name__}}: {{str(seen).splitlines()[0] if str(seen) else ''}}")
            if SIDE == "produce" and EXPECTED["exc_type"] is None:
                print("COULD NOT PRODUCE the artifact: the producer's half failed")
                return 2
            if type(seen).__name__ == EXPECTED["exc_type"]:
                print("REPRODUCED:", EXPECTED["signature"])
                return 1
            print("FAILED DIFFERENTLY; expected:", EXPECTED["signature"])
            return 2
    if SIDE == "produce" and EXPECTED["exc_type"] is None:
        print(f"PRODUCED: the artifact is in {{_artifact()}}; now run `uv run repro.py` here")
        return 0
    print("NOT REPRODUCED: the case passed with these versions")
    return 0


def _artifact():
    """The folder a handoff's artifact passes through, from the producer's script to the consumer's."""
    folder = Path(os.environ.get("FTCOMPAT_ARTIFACT") or "artifact").resolve()
    if SIDE == "produce":
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _fixtures(test, work, monkeypatch):
    """The pytest fixtures the case function names, built the way ftcompat's plugin builds them."""
    import inspect

    from ftcompat.harness import envinfo, models

    class _Factory:
        def mktemp(self, name):
            return Path(tempfile.mkdtemp(prefix=f"{{name}}-", dir=work))

    made = {{
        "model": lambda: models.resolve(MODEL["name"], MODEL["spec"], work / "models"),
        "device": envinfo.torch_device,
        "tmp_path": lambda: _Factory().mktemp("tmp"),
        "tmp_path_factory": _Factory,
        "monkeypatch": lambda: monkeypatch,
        "handoff": _artifact,
    }}
    return {{name: made[name]() for name in inspect.signature(test).parameters}}


class _Inline(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports the inlined ftcompat helpers from the SUPPORT sources below."""

    def __init__(self, sources):
        self.sources = sources

    def find_spec(self, name, path=None, target=None):
        if name not in self.sources:
            return None
        return importlib.util.spec_from_loader(name, self, is_package=name in PACKAGES)

    def create_module(self, spec):
        return None

    def get_source(self, name):
        return self.sources[name]

    def exec_module(self, module):
        filename = "ftcompat/" + module.__name__.replace(".", "/") + ".py"
        _exec(module.__name__, filename, self.sources[module.__name__], module.__dict__)


def _exec(name, filename, source, namespace):
    # Registered with linecache so tracebacks show the inlined lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)


def _load(name, filename, source):
    module = type(sys)(name)
    module.__file__ = filename
    sys.modules[name] = module
    _exec(name, filename, source, module.__dict__)
    return module


# The case, verbatim: cases/{case}.py
CASE_SOURCE = {case_source}

# ftcompat's harness helpers the case imports, verbatim (stdlib-only at import time).
SUPPORT = {sources}

if __name__ == "__main__":
    sys.exit(main())
'''
