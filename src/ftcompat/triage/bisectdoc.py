"""The bisection's document: the ``ftcompat-bisect/1`` JSON, its Markdown page, and the bug-report line."""

from __future__ import annotations

from collections.abc import Mapping

from ftcompat.triage.bisector import Bisector
from ftcompat.triage.trials import SCHEMA, Result, Verdict


def pins_text(pins: Mapping | None) -> str:
    """Pins as ``pkg version, ...`` (``-`` when there are none)."""
    return ", ".join(f"{p} {v}" for p, v in (pins or {}).items()) or "-"


def report_line(selector: str, result: Result, considered: int, envs: int) -> str:
    """The one line to paste into a bug report."""
    cell = f"`{selector}`"
    over = f" over {considered} releases" if considered else ""
    tail = f"bisected by ftcompat{over}, {envs} environments"
    pkg = result.searched
    held = {p: v for p, v in (result.after or {}).items() if p != pkg}
    along = f" together with {pins_text(held)}" if held else ""
    if result.verdict in (Verdict.FOUND, Verdict.INCONCLUSIVE) and pkg:
        assert result.before is not None and result.after is not None  # a search's result has both sides
        regression = result.direction == "regression"
        word = "fails" if regression else "passes"
        edge = f"last good {result.before[pkg]}" if regression else f"last failing {result.after[pkg]}"
        if result.verdict == Verdict.FOUND:
            return f"{cell} first {word} with {pkg} {result.range[0]}{along} ({edge}); {tail}"
        return (f"{cell} first {word} with one of {pkg} {', '.join(result.range)}{along} ({edge}; "
                f"untestable: {', '.join(result.untested)}); {tail}")
    return f"{cell}: bisection {result.verdict}: {result.note}; {tail}"


def to_json(selector: str, bisector: Bisector, result: Result, meta: Mapping | None = None) -> dict:
    """The ``ftcompat-bisect/1`` document."""
    regression = result.direction == "regression"
    considered = len(bisector.candidates.get(result.searched, [])) + 2 if result.searched else 0
    return {
        "schema": SCHEMA, "case": selector, "good": dict(bisector.good), "bad": dict(bisector.bad),
        "direction": result.direction, "culprit": list(result.culprit), "searched": result.searched,
        "verdict": result.verdict.value, "note": result.note, "notes": list(bisector.notes),
        "last_good": dict(result.before) if regression and result.before else None,
        "first_bad": dict(result.after) if regression and result.after else None,
        "first_good": dict(result.before) if not regression and result.before else None,
        "last_bad": dict(result.after) if not regression and result.after else None,
        "range": list(result.range), "untested_between": list(result.untested), "watched": list(bisector.watch),
        "steps": [s.to_dict() for s in bisector.steps], "envs_built": bisector.envs_built,
        "envs_attempted": len(bisector.steps), "candidates": bisector.candidates,
        "untestable": bisector.untestable,
        "line": report_line(selector, result, considered, bisector.envs_built),
        **({"meta": dict(meta)} if meta else {}),
    }


def to_markdown(doc: Mapping) -> str:
    """A human page for the bisection: the answer, then every step."""
    rows = [("verdict", doc["verdict"]), ("direction", doc["direction"]),
            ("good side", pins_text(doc["good"])), ("bad side", pins_text(doc["bad"])),
            ("culprit", ", ".join(doc["culprit"]) or "-")]
    for key in ("last_good", "first_bad", "first_good", "last_bad"):
        if doc.get(key):
            rows.append((key.replace("_", " "), pins_text(doc[key])))
    rows += [("releases considered", "; ".join(f"{p}: {', '.join(v) or 'none in between'}"
                                               for p, v in doc["candidates"].items()) or "-"),
             ("environments built", f"{doc['envs_built']} (of {doc['envs_attempted']} attempted)"),
             ("untestable", "; ".join(f"step {u['step']} {pins_text(u['moved'])}: {u['why']}"
                                      for u in doc["untestable"]) or "none")]
    meta = doc.get("meta") or {}
    rows += [(k.replace("_", " "), str(v)) for k, v in meta.items()]
    out = [f"# Bisection of `{doc['case']}`", "", doc["line"], ""]
    if doc["note"] or doc["notes"]:
        out += [f"> {n}" for n in [doc["note"], *doc["notes"]] if n] + [""]
    out += ["| | |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in rows), "", "## Steps", "",
            "| # | phase | moved from the good side | verdict | install | run | signature / note |",
            "|---|---|---|---|---|---|---|"]
    for s in doc["steps"]:
        runs = " + ".join(f"{x:.0f}s" for x in s["run_s"]) or "-"
        text = s["note"] or s["signature"]
        out.append(f"| {s['index']} | {s['phase']} | {_cell(pins_text(s['moved']))} | {s['verdict']} | "
                   f"{s['install_s']:.0f}s | {runs} | {_cell(text)} |")
    out += ["", "## What each environment resolved to", "", "| # | python | versions |", "|---|---|---|"]
    for s in doc["steps"]:
        env = s.get("env") or {}
        versions = {p: v for p, v in sorted((env.get("versions") or {}).items())}
        shown = pins_text(versions) if versions else s.get("install_reason") or "-"
        out.append(f"| {s['index']} | {env.get('python') or '-'} | {_cell(shown)} |")
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
