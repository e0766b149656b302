"""The config's ``handoffs:``: pairs of combos, an artifact made in the first and loaded in the second.

    handoffs:
      - from: tf5.0-trl0.28          # where the artifact is made (combo id globs)
        to: "tf4.57*"                # where it is loaded
        cases: [tokenizer_handoff]   # optional: handoff cases (default: every one)

Each (producer, consumer) the globs pick becomes one grid row, ``<from>~<to>``: a ``Combo`` with the
consumer's pins and ``pair`` set, run by its own nox session and drawn as producer → consumer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ftcompat.config.checks import Checker
from ftcompat.core.domain import HANDOFF, CaseSpec, Combo
from ftcompat.core.hints import suggest
from ftcompat.core.selector import match

HANDOFF_KEYS = ("from", "to", "cases", "description")
SEP = "~"  # in a pair's id: no combo id has one (``config.matrix.ID_RE``)
GPU_TAGS = ("gpu", "device")  # a pair needs a GPU runner if either side does


def pair_id(producer: str, consumer: str) -> str:
    """The id of the pair's grid row."""
    return f"{producer}{SEP}{consumer}"


def pair_row(producer: Combo, consumer: Combo, cases: Sequence[str] = ("*",), description: str = "") -> Combo:
    """The grid row of a matrix pair: the consumer's environment, named for both sides."""
    tags = dict.fromkeys((HANDOFF, *consumer.tags, *(t for t in producer.tags if t in GPU_TAGS)))
    about = description or f"handoff: made in {producer.id}, loaded in {consumer.id}"
    return dataclasses.replace(consumer, id=pair_id(producer.id, consumer.id), tags=tuple(tags), cases=tuple(cases),
                               description=about, pair=(producer.id, consumer.id))


def parse_pairs(check: Checker, raw: Any, combos: Sequence[Combo], specs: Mapping[str, CaseSpec]) -> list[Combo]:
    """Validate ``handoffs:`` and return one row per pair its globs pick (a combo is never paired with itself)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        check.add("handoffs", f"expected a list of {{from, to}} pairs, got {type(raw).__name__}")
        return []
    ids = [c.id for c in combos]
    handoff_cases = sorted(c for c, s in specs.items() if s.handoff)
    rows: dict[str, Combo] = {}
    for i, item in enumerate(raw):
        path = f"handoffs[{i}]"
        data = check.mapping(item, path, HANDOFF_KEYS, ("from", "to"))
        if not data:
            continue
        sides = []
        for key in ("from", "to"):
            sel = check.string(data.get(key), f"{path}.{key}", what="a combo id or glob")
            picked = [c for c in combos if sel and match(sel, c.id)]
            if sel and not picked:
                check.add(f"{path}.{key}", f"{sel!r} selects no combo{suggest(sel, ids)}")
            sides.append(picked)
        cases = check.str_list(data.get("cases", ["*"]), f"{path}.cases") or ["*"]
        for j, sel in enumerate(cases):
            if not any(match(sel, c) for c in handoff_cases):
                single = [c for c in specs if match(sel, c)]
                why = (f"{', '.join(single[:3])} runs in one environment, not a handoff" if single
                       else f"selects no handoff case{suggest(sel, handoff_cases)}")
                check.add(f"{path}.cases[{j}]", f"{sel!r}: {why} (handoff cases: {', '.join(handoff_cases) or 'none'})")
        description = data.get("description", "")
        if not isinstance(description, str):
            check.add(f"{path}.description", f"expected a string, got {description!r}")
            description = ""
        pairs = [(a, b) for a in sides[0] for b in sides[1] if a.id != b.id]
        if sides[0] and sides[1] and not pairs:
            check.add(path, "from and to select the same one combo; a handoff needs two environments")
        for a, b in pairs:
            row = pair_row(a, b, tuple(cases), description)
            if row.id in rows:
                check.add(path, f"the pair {a.id} → {b.id} is already declared by an earlier entry")
            rows[row.id] = row
    return list(rows.values())
