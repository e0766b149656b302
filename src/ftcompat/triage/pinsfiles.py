"""The safe-pins answer as files: constraints.txt, requirements.txt and PINS.md, written together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ftcompat.core.cellfile import write_failed
from ftcompat.core.domain import RECORDED, STACK
from ftcompat.core.outcome import first_line
from ftcompat.core.record import Record
from ftcompat.core.versions import public
from ftcompat.triage.pins import Blame, ComboVerdict, SafePins


def write_all(folder: Path, files: Mapping[str, str]) -> None:
    """Write the answer's files together: each to a temp file first, then all renamed into place.

    A full disk shows while writing the temp files, before any old file is replaced, so the folder
    never holds half of one answer and half of another.
    """
    import os
    import tempfile


    folder = Path(folder)
    temps: dict[Path, str] = {}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
            temps[folder / name] = tmp
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fh.fileno(), 0o644)
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
    except OSError as exc:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)
        raise write_failed(folder / next(iter(files)), exc) from exc
    for dest, tmp in temps.items():
        os.replace(tmp, dest)


def _header(sp: SafePins, pick: ComboVerdict) -> list[str]:
    known = "tolerated" if sp.allow_known else "counted as failures"
    kept = f"; kept pins: {' '.join(map(str, sp.keep))}" if sp.keep else ""
    return [f"# ftcompat safe pins: combo {pick.combo}, all {pick.checked} selected cells pass",
            f"# cases: {' '.join(sp.selectors)}; known issues {known}{kept}",
            f"# grid generated {sp.source['generated_at']} on {', '.join(sp.source['devices'])}"]


def constraints_text(sp: SafePins) -> str:
    """A constraints file for ``pip install -c`` / ``uv pip install -c``: the picked combo's versions.

    The ``!=`` lines after them keep the versions the grid blames out, should a pin above be loosened.
    """
    if sp.pick is None:
        raise ValueError("no combo qualifies; there is nothing to pin")
    lines = _header(sp, sp.pick)
    for p in RECORDED:
        if sp.pick.versions.get(p):
            lines.append(f"{p}=={public(sp.pick.versions[p])}")
    lines += _environment(sp.pick)
    kept = _kept_out(sp)
    if kept:
        lines.append("# should a pin above be loosened: stay below the first release past the pick that the grid shows")
        lines.append("# failing a selected case, and off the failing ones before it (the report says which and why)")
        lines.extend(kept)
    return "\n".join(lines) + "\n"


def _kept_out(sp: SafePins) -> list[str]:
    """Per package: ``<first failing release above the pick`` (the untested releases past it are kept out too,
    never let through between two exclusions) and ``!=`` for failing releases below the pick."""
    from packaging.version import Version

    out = []
    for adv in sp.packages:
        if not adv.avoid:
            continue
        picked = Version(public(adv.picked)) if adv.picked else None
        bad = sorted({Version(public(a.version)) for a in adv.avoid})
        above = [v for v in bad if picked is not None and v > picked]
        if above:
            out.append(f"{adv.package}<{above[0]}")
        out.extend(f"{adv.package}!={v}" for v in bad if v not in above)
    return out


def requirements_text(sp: SafePins) -> str:
    """A requirements snippet: the six stack packages at the picked versions, with the other good ones."""
    if sp.pick is None:
        raise ValueError("no combo qualifies; there is nothing to pin")
    lines = _header(sp, sp.pick)
    for adv in sp.packages:
        if not adv.picked:
            continue
        others = [v for v in adv.known_good if v != adv.picked]
        note = f"  # also good in this grid: {', '.join(others)}" if others else ""
        lines.append(f"{adv.package}=={adv.picked}{note}")
    return "\n".join(lines + _environment(sp.pick)) + "\n"


def _environment(pick: ComboVerdict) -> list[str]:
    """What else the picked environment held: the combo's other pins, and a repair's caps (with why)."""
    if not pick.extra:
        return []
    return ["# the rest of the environment the cells passed in:"] + [
        f"{req}  # {first_line(why, 200)}" for req, why in pick.extra]


def report_text(sp: SafePins) -> str:
    """A Markdown account of the pick, per package, or of why nothing qualifies."""
    lines = ["# Safe pins", "",
             f"Cases: `{' '.join(sp.selectors)}`; known issues "
             f"{'tolerated (their workarounds apply)' if sp.allow_known else 'count as failures'}. "
             f"Grid generated {sp.source['generated_at']} on {', '.join(sp.source['devices'])}.", ""]
    if sp.keep:
        ruled = [v for v in sp.verdicts if v.outside]
        shown = ", ".join(v.combo for v in ruled[:5]) + (f" and {len(ruled) - 5} more" if len(ruled) > 5 else "")
        lines += [f"Kept pins: `{' '.join(map(str, sp.keep))}`: {len(sp.kept)} of {len(sp.verdicts)} combos that ran "
                  f"the selected cases meet them" + (f" (ruled out: {shown})." if ruled else "."), ""]
    if sp.pick is None and sp.keep and not sp.kept:
        lines += ["**No combo of the grid meets the kept pins.** `ftcompat adhoc` runs the cases on them: "
                  f"`{adhoc_command(sp)}`.", ""]
        return "\n".join(lines) + "\n"
    if sp.pick is None:
        lines += ["**No combo qualifies**: none ran the selected cases with every cell passing"
                  + (" within the kept pins." if sp.keep else "."), "",
                  "Closest combos:", ""]
        for v in sp.closest():
            gap = f"; {len(v.missing)} selected column(s) not run there" if v.missing else ""
            lines.append(f"- `{v.combo}` ({_versions(v)}): {len(v.blockers)} of {v.checked} cells do not pass{gap}")
            lines += [f"  - `{c.column}`: {c.status.value}: {first_line(c.signature, 160)}"
                      for c in v.blockers[:8]]
        return "\n".join(lines) + "\n"
    lines += [f"Picked **`{sp.pick.combo}`** ({_versions(sp.pick)}): all {sp.pick.checked} selected cells pass."]
    if sp.pick.tolerated:
        lines += ["", "Known failures tolerated in it (apply the workaround):"]
        for c in sp.pick.tolerated:
            issue = c.known_issue or {}  # a tolerated cell is a known one: the merge set its issue
            lines.append(f"- `{c.column}`: {issue['url']}: {issue.get('workaround')}")
    for adv in sp.packages:
        lines += ["", f"## {adv.package} {adv.picked}", "",
                  f"- known good: {', '.join(adv.known_good) or 'none'}"]
        for a in adv.avoid:
            lines.append(f"- avoid `{a.package}!={a.version}`:")
            lines += [f"  - {_blame_line(b)}" for b in _grouped(a.blames)]
        for version, why in adv.newer:
            lines.append(f"- newer {version} not picked: {why}")
    rules = pair_rules(sp)
    if rules:
        lines += ["", "## Versions that only fail together", "",
                  "A pin file cannot say \"if this, then that\"; these known issues do. Each is a pair of ranges "
                  "that fails the selected cases where both hold:", ""]
        lines += [f"- {rule}" for rule in rules]
    if sp.unattributed:
        lines += ["", "## Failures not attributed to one package", "",
                  "Several package versions differ from every passing combo; `ftcompat bisect` finds which:", ""]
        by_column: dict[str, list[Record]] = {}
        for c in sp.unattributed:
            by_column.setdefault(c.column, []).append(c)
        lines += [f"- `{col}` in {', '.join(c.combo for c in cs)}: {first_line(cs[0].signature, 160)}"
                  for col, cs in by_column.items()]
    return "\n".join(lines) + "\n"


def pair_rules(sp: SafePins) -> list[str]:
    """One line per known issue over two or more packages that a selected cell of the grid failed on.

    ``transformers>=4.52.0 with torch<2.6: ...`` is how "this transformers needs torch >= 2.6" reads.
    """
    seen: dict[str, list[str]] = {}
    issues = {}
    for verdict in sp.verdicts:
        for cell in (*verdict.blockers, *verdict.tolerated):
            issue = cell.known_issue or {}
            if len(issue.get("when") or {}) >= 2:
                issues[issue["id"]] = issue
                seen.setdefault(issue["id"], []).append(f"{cell.combo}::{cell.column}")
    lines = []
    for iid, issue in sorted(issues.items()):
        ranges = " with ".join(f"{p}{spec}" for p, spec in issue["when"].items())
        cells = seen[iid]
        more = f" and {len(cells) - 2} more" if len(cells) > 2 else ""
        fix = f" Workaround: {issue['workaround']}" if issue.get("workaround") else ""
        lines.append(f"`{ranges}`: {issue['summary']} ({iid}, {issue['url']}; seen in "
                     f"{', '.join(f'`{c}`' for c in cells[:2])}{more}).{fix}")
    return lines


def adhoc_command(sp: SafePins) -> str:
    """The ``ftcompat adhoc`` line that runs the selected cases on the kept exact pins (ranges are left out)."""
    exact = [k for k in sp.keep if k.spec.startswith("==") and "*" not in k.spec and "," not in k.spec]
    pins = [f"{k.name}{k.spec}" for k in exact if k.name != "python"]
    python = [f"--python {k.spec[2:]}" for k in exact if k.name == "python"]
    return " ".join(["ftcompat adhoc", *pins, *python, "--cases", *sp.selectors])


def _grouped(blames: Sequence[Blame]) -> list[tuple[list[Blame], str, str]]:
    """Blames sharing a signature and a reason, together: one line per failure, not per column."""
    groups: dict[tuple[str, str], list[Blame]] = {}
    for b in blames:
        groups.setdefault((b.signature, b.because), []).append(b)
    return [(bs, sig, why) for (sig, why), bs in groups.items()]


def _blame_line(group: tuple[list[Blame], str, str]) -> str:
    blames, signature, because = group
    columns = ", ".join(f"`{b.column}`" for b in blames)
    combos = sorted({c for b in blames for c in b.combos})
    verb = "fails" if len(blames) == 1 else "fail"
    return f"{columns} {verb} in {', '.join(combos)}: {first_line(signature, 160)} ({because})"


def _versions(v: ComboVerdict) -> str:
    return ", ".join(f"{p} {public(v.versions.get(p))}" for p in STACK if v.versions.get(p))
