"""Reading a YAML config file: size and encoding checked, duplicate keys refused, errors on one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftcompat.config.checks import MatrixError, Problem

DUPLICATE = "duplicate key"
MAX_BYTES = 4 << 20  # the default matrix is ~20 KB; a file this big is a mistake, and slow to validate


def read_yaml(path: Path) -> Any:
    """The file's data, or MatrixError naming the file and the line and column of what is wrong."""
    import yaml

    try:
        return yaml.load(read_text(path), Loader=unique_key_loader())  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(unknown place)"
        raise MatrixError(str(path), [Problem(where, yaml_problem(exc))]) from None
    except FileNotFoundError:
        raise MatrixError(str(path), [Problem("(file)", "no such file")]) from None


def unique_key_loader():
    """A SafeLoader that refuses a key given twice in one mapping instead of keeping the last.

    ``pins: {trl: "0.19.1", trl: "0.20.0"}`` would otherwise test 0.20.0 without a word.
    """
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        first = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` then an override is how merges are meant to be used
            key = loader.construct_object(key_node, deep=deep)
            try:
                seen = first.setdefault(key, key_node.start_mark)
            except TypeError:  # an unhashable key: the safe constructor reports it
                continue
            if seen is not key_node.start_mark:
                problem = (f"{DUPLICATE} {key!r} (first given at line {seen.line + 1}, column {seen.column + 1}); "
                           "YAML would silently keep only the last one")
                raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return UniqueKeyLoader


def yaml_problem(exc) -> str:
    """The parser's complaint on one line, with where the construct it was reading began."""
    problem = getattr(exc, "problem", None) or ""
    if problem.startswith(DUPLICATE):
        return problem
    if not problem:
        return f"not valid YAML: {exc}"
    context, mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    at = getattr(exc, "problem_mark", None)
    if context and mark and (not at or (mark.line, mark.column) != (at.line, at.column)):
        context = f"{context} that starts at line {mark.line + 1}, column {mark.column + 1}"
    return f"not valid YAML: {problem}" + (f" ({context})" if context else "")


def read_text(path: Path, limit: int = MAX_BYTES) -> str:
    """The file as text, refusing what no matrix is: too big to be one, or not UTF-8."""
    try:
        size = path.stat().st_size
        if size > limit:
            why = (f"is {size / 1e6:.1f} MB; a matrix is a few hundred KB at most (limit {limit >> 20} MiB): "
                   "is it the right file?")
            raise MatrixError(str(path), [Problem("(file)", why)])
        raw = path.read_bytes()
    except IsADirectoryError:
        raise MatrixError(str(path), [Problem("(file)", "is a folder, not a file")]) from None
    except PermissionError as exc:
        raise MatrixError(str(path), [Problem("(file)", f"cannot be read: {exc.strerror}")]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MatrixError(str(path), [Problem("(file)", f"is not UTF-8 text (byte {raw[exc.start]:#04x} at offset "
                                                        f"{exc.start}); save it as UTF-8")]) from None
