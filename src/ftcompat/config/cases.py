"""Find the cases in cases/ without importing them: their variants come from the source text."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from ftcompat.core.errors import InputError


@dataclass(frozen=True)
class CaseFile:
    """A case module as read from disk: id, variants, whether it runs on a model, its docstring."""

    id: str
    path: Path
    variants: tuple[str, ...]
    uses_model: tuple[bool, ...]
    doc: str
    # The distributions whose failing to import beside each other is what the case checks (``SUBJECT``);
    # any other import failure the health probe finds is the environment's, and such a cell is ``error``.
    subject: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()  # modules the health probe imports for this case beside the stack's (``NEEDS``)
    # A handoff case: each ``test_<variant>`` (the consumer, run in the second environment) has a
    # ``produce_<variant>`` (run in the first), which writes the artifact the consumer loads.
    handoff: bool = False

    @property
    def summary(self) -> str:
        """The first line of the case's docstring."""
        return (self.doc or "").strip().splitlines()[0] if self.doc.strip() else ""


def read_case(path: Path) -> CaseFile:
    """Parse one case file; variants are its ``test_*`` functions, in source order.

    A file that is not UTF-8 or not valid Python is bad input (InputError naming the file and line),
    never a traceback: ``validate``, ``run`` and ``cases`` all read cases through here.
    """
    try:
        source = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); "
                         "a case file is Python source") from None
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise InputError(f"{path}:{exc.lineno}: {exc.msg}; the case file is not valid Python") from None
    variants, uses_model = [], []
    declared: dict[str, tuple[str, ...]] = {}
    args: dict[str, set[str]] = {}
    producers: dict[str, ast.FunctionDef] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("produce_"):
            producers[node.name.removeprefix("produce_")] = node
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            variants.append(node.name.removeprefix("test_"))
            uses_model.append(any(a.arg == "model" for a in node.args.args))
            args[variants[-1]] = {a.arg for a in node.args.args}
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in DECLARED:
            declared[node.targets[0].id] = _names(node, path)
    if producers:
        _check_halves(path, variants, args, producers)
    return CaseFile(Path(path).stem, Path(path), tuple(variants), tuple(uses_model),
                    ast.get_docstring(tree) or "", declared.get("SUBJECT", ()), declared.get("NEEDS", ()),
                    bool(producers))


def _check_halves(path: Path, variants: list[str], args: dict[str, set[str]],
                  producers: dict[str, ast.FunctionDef]) -> None:
    """Every variant of a handoff case has both halves, and the producer asks only for what its consumer has."""
    for variant in variants:
        if variant not in producers:
            raise InputError(f"{path}: test_{variant} has no produce_{variant}; in a handoff case every variant "
                             "has both halves (produce_ writes the artifact, test_ loads it)")
    for variant, node in producers.items():
        if variant not in args:
            raise InputError(f"{path}:{node.lineno}: produce_{variant} has no test_{variant} to load what it writes")
        if "handoff" not in args[variant]:
            raise InputError(f"{path}: test_{variant} takes no `handoff` fixture, the folder its producer wrote")
        extra = sorted({a.arg for a in node.args.args} - args[variant])
        if extra:
            raise InputError(f"{path}:{node.lineno}: produce_{variant} takes {', '.join(extra)}, which "
                             f"test_{variant} does not; both halves take the same fixtures (model, device, handoff)")


DECLARED = ("SUBJECT", "NEEDS")


def _names(node: ast.Assign, path: Path) -> tuple[str, ...]:
    """A case's ``SUBJECT = ("trl", "peft")``: a literal tuple or list of names, read without importing."""
    name = node.targets[0].id  # type: ignore[attr-defined]
    try:
        value = ast.literal_eval(node.value)
    except ValueError:
        value = None
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, str) and v for v in value):
        raise InputError(f"{path}:{node.lineno}: {name} must be a literal tuple of names, e.g. "
                         f"{name} = (\"trl\", \"peft\")")
    return tuple(value)


def discover(cases_dir: Path) -> dict[str, CaseFile]:
    """Return every case in ``cases_dir`` by id (files starting with ``_`` are helpers, not cases)."""
    found = {}
    for path in sorted(Path(cases_dir).glob("*.py")):
        if not path.name.startswith("_") and path.name != "conftest.py":
            found[path.stem] = read_case(path)
    return found


def cases_of(matrix) -> dict[str, CaseFile]:
    """The case files of a loaded matrix (the built-in library's and the project's own), by id."""
    return {cid: read_case(Path(path)) for cid, path in sorted(matrix.case_files.items())}
