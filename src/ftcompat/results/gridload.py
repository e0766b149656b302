"""Reading grid JSON files at the edge: one clear message for a file that is missing, damaged or not a grid."""

from __future__ import annotations

import json
from pathlib import Path

from ftcompat.core.errors import InputError
from ftcompat.results.grid import SCHEMA, Grid


def read_json(path: Path | str, what: str = "file") -> object:
    """A JSON file's data, or InputError saying in one line why it cannot be read."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a {what}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: is not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})") from None
    if not text.strip():
        raise InputError(f"{path}: is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: is not valid JSON ({exc.msg}: line {exc.lineno}, column {exc.colno}); "
                         "is it truncated?") from None
    except RecursionError:
        raise InputError(f"{path}: is nested too deeply to be a {what}") from None


def read_grid(path: Path | str) -> dict:
    """A grid JSON file as a dict, checked to be one: InputError names what is wrong."""
    data = read_json(path, "grid file")
    if not isinstance(data, dict):
        raise InputError(f"{path}: is a JSON {type(data).__name__}, not an ftcompat grid (want an object with "
                         f"schema {SCHEMA!r})")
    if data.get("schema") != SCHEMA:
        raise InputError(f"{path}: not an ftcompat grid (schema {data.get('schema')!r}, want {SCHEMA!r})")
    for key in ("cells", "combos"):
        if not isinstance(data.get(key), list):
            raise InputError(f"{path}: its {key!r} is missing or not a list; the file is damaged")
    for key in ("columns", "warnings"):
        if key in data and not (isinstance(data[key], list) and all(isinstance(v, str) for v in data[key])):
            raise InputError(f"{path}: its {key!r} is not a list of strings; the file is damaged")
    for i, cell in enumerate(data["cells"]):
        why = _cell_problem(cell)
        if why:
            raise InputError(f"{path}: cells[{i}] {why}; the file is damaged")
    for i, combo in enumerate(data["combos"]):
        why = _combo_problem(combo)
        if why:
            raise InputError(f"{path}: combos[{i}] {why}; the file is damaged")
    return data


_CELL_TEXT = ("id", "combo", "case", "variant", "status", "signature", "exc_type", "message", "step", "traceback", "log")
_CELL_MAPS = ("env", "details", "origin", "known_issue", "not_refreshed", "environment")


def _cell_problem(cell: object) -> str | None:
    """What is wrong with a cell record's shape, or None."""
    if not (isinstance(cell, dict) and {"id", "combo", "status"} <= set(cell)):
        return "is not a cell record (needs id, combo and status)"
    wrong = [k for k in _CELL_TEXT if cell.get(k) is not None and not isinstance(cell[k], str)] + \
        [k for k in _CELL_MAPS if cell.get(k) is not None and not isinstance(cell[k], dict)]
    if wrong:
        return f"has {wrong[0]!r} of the wrong type ({type(cell[wrong[0]]).__name__})"
    if "::" not in cell["id"]:
        return f"has the id {cell['id'][:80]!r}, not combo::case[variant]"
    versions = (cell.get("env") or {}).get("versions")
    if versions is not None and not isinstance(versions, dict):
        return "has env.versions that is not a mapping"
    return None


def _combo_problem(combo: object) -> str | None:
    """What is wrong with a combo entry's shape, or None."""
    if not (isinstance(combo, dict) and isinstance(combo.get("id"), str)):
        return "has no id"
    wrong = [k for k in ("pins", "resolved", "device", "environment", "not_refreshed", "pair")
             if combo.get(k) is not None and not isinstance(combo[k], dict)]
    if wrong:
        return f"has {wrong[0]!r} of the wrong type ({type(combo[wrong[0]]).__name__})"
    return None


def load(path: Path | str) -> Grid:
    """Read a grid.json back (InputError, one line, when it is not a readable grid)."""
    data = read_grid(path)
    try:
        return Grid.from_dict(data)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
