"""Write a combo's cell records atomically, with sorted keys so diffs stay small."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def dumps(data) -> str:
    """Serialise with the one JSON style every ftcompat file uses."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_cells(path: Path, combo: str, cells: list[dict]) -> None:
    """Write one combo's cells, ordered by id."""
    body = {"combo": combo, "cells": sorted(cells, key=lambda c: c["id"])}
    atomic_write(Path(path), dumps(body))
