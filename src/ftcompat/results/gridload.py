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
    bad = [i for i, c in enumerate(data["cells"]) if not (isinstance(c, dict) and {"id", "combo", "status"} <= set(c))]
    if bad:
        raise InputError(f"{path}: cells[{bad[0]}] is not a cell record (needs id, combo and status)")
    if any(not (isinstance(c, dict) and "id" in c) for c in data["combos"]):
        raise InputError(f"{path}: a combo entry has no id; the file is damaged")
    return data


def load(path: Path | str) -> Grid:
    """Read a grid.json back (InputError, one line, when it is not a readable grid)."""
    data = read_grid(path)
    try:
        return Grid.from_dict(data)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
