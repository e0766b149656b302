"""Reading a YAML config file: size and encoding checked, duplicate keys refused, errors on one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftcompat.config.checks import MatrixError, Problem

DUPLICATE = "duplicate key"
MAX_BYTES = 4 << 20  # the default matrix is ~20 KB; a file this big is a mistake, and slow to validate
# Anchors and aliases can make a 1 KB file stand for billions of values (an "alias bomb"): counted as
# they would expand, before anything is built from them. The default matrix has about 5,000.
MAX_NODES = 200_000


def expanded_size(node) -> int:
    """How many nodes the document has once every alias is expanded (each shared node counted per use)."""
    sizes: dict[int, int] = {}
    stack = [(node, False)] if node is not None else []
    while stack:  # iterative: a deeply nested document must not hit Python's recursion limit
        current, done = stack.pop()
        if id(current) in sizes:
            continue
        children = [c for pair in current.value for c in pair] if isinstance(current.value, list) and \
            current.value and isinstance(current.value[0], tuple) else \
            (current.value if isinstance(current.value, list) else [])
        if done:
            sizes[id(current)] = min(MAX_NODES + 1, 1 + sum(sizes.get(id(c), 0) for c in children))
            continue
        stack.append((current, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes.get(id(node), 0) if node is not None else 0


def read_yaml(path: Path) -> Any:
    """The file's data, or MatrixError naming the file and the line and column of what is wrong."""
    import yaml

    try:
        loader = unique_key_loader()(read_text(path))
        try:
            node = loader.get_single_node()
            size = expanded_size(node)
            if size > MAX_NODES:
                raise MatrixError(str(path), [Problem("(file)", f"expands to more than {MAX_NODES:,} values through "
                                                                f"anchors and aliases; a matrix has a few thousand")])
            return loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
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
