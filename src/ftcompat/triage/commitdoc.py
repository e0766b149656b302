"""The document a commit bisection writes: JSON (``ftcompat-bisect-commits/1``) and a Markdown page beside it."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ftcompat.core import gitref
from ftcompat.core.markdown import code
from ftcompat.triage.commits import CommitBisector, Found
from ftcompat.triage.trials import Verdict

SCHEMA = "ftcompat-bisect-commits/1"


def commit_entry(sha: str | None, info: Callable[[str], dict], source: str, pkg: str) -> dict | None:
    """A commit as the document names it: id, subject, date, pull request and links where the source has them."""
    if not sha:
        return None
    about = info(sha)
    number = gitref.pr_number(about.get("subject", ""))
    web = gitref.web_of(source) or gitref.PUBLIC.get(pkg)
    return {"sha": sha, "short": sha[:12], "subject": about.get("subject", ""), "date": about.get("date", ""),
            "merge": about.get("parents", 1) > 1, "pr": number,
            "link": gitref.commit_link(web, sha) if web else None,
            "pr_link": gitref.pr_link(web, number) if web else None}


def line(cell: str, pkg: str, found: Found, commit: Mapping | None, steps: int) -> str:
    """The one line to paste into a bug report."""
    tail = f"bisected by ftcompat over {found.path_length} commits, {steps} environments"
    if found.verdict == Verdict.FOUND and commit:
        word = "fails" if found.direction == "regression" else "passes"
        named = commit.get("pr") and f"#{commit['pr']}" in commit["subject"]
        pr = f" (#{commit['pr']})" if commit.get("pr") and not named else ""
        return f"`{cell}` first {word} at {pkg} {commit['short']} \"{commit['subject']}\"{pr}; {tail}"
    return f"`{cell}`: commit bisection {found.verdict}: {found.note}; {tail}"


def to_json(cell: str, bis: CommitBisector, found: Found, refs: Mapping[str, str], source_shown: str,
            source: str, info: Callable[[str], dict], meta: Mapping) -> dict:
    """The ``ftcompat-bisect-commits/1`` document (sorted keys when written)."""
    pkg = bis.ask.pkg
    commit = commit_entry(found.commit, info, source, pkg)
    steps = []
    for s in bis.steps:
        entry = s.to_dict()
        sha = s.moved.get(pkg, "")
        entry["commit"] = {"sha": sha, "short": sha[:12], "subject": info(sha).get("subject", "") if sha else ""}
        steps.append(entry)
    install = sum(s.trial.install_s for s in bis.steps)
    run = sum(sum(s.trial.run_s) for s in bis.steps)
    return {
        "schema": SCHEMA, "case": cell, "package": pkg, "source": source_shown,
        "good": {"ref": refs["good"], "commit": bis.ask.good}, "bad": {"ref": refs["bad"], "commit": bis.ask.bad},
        "held": dict(bis.ask.held), "direction": found.direction, "verdict": found.verdict.value,
        "note": found.note, "notes": list(found.notes), "flake_runs": bis.ask.flake_runs,
        "first_bad" if found.direction == "regression" else "first_good": commit,
        "before": commit_entry(found.before, info, source, pkg), "base": found.base,
        "path_length": found.path_length, "untested_between": list(found.untested),
        "candidates": list(found.candidates), "watched": list(bis.watch),
        "steps": steps, "envs_built": sum(1 for s in bis.steps if s.trial.installed),
        "cost": {"steps": len(bis.steps), "install_s": round(install, 1), "run_s": round(run, 1),
                 "duration_s": meta.get("duration_s")},
        "line": line(cell, pkg, found, commit, len(bis.steps)), "meta": dict(meta),
    }


def to_markdown(doc: Mapping) -> str:
    """A page for the commit bisection: the answer with its commit and pull request, then every step."""
    key = "first_bad" if doc["direction"] == "regression" else "first_good"
    commit = doc.get(key)
    out = [f"# Commit bisection of `{doc['case']}`", "", doc["line"], ""]
    if doc["note"] or doc["notes"]:
        out += [f"> {n}" for n in [doc["note"], *doc["notes"]] if n] + [""]
    rows = [(k, _cell(v)) for k, v in (
        ("verdict", doc["verdict"]), ("direction", doc["direction"]), ("package", doc["package"]),
        ("history", doc["source"]),
        ("good side", f"{doc['good']['ref']} ({doc['good']['commit'][:12]})"),
        ("bad side", f"{doc['bad']['ref']} ({doc['bad']['commit'][:12]})"),
        ("held", ", ".join(f"{p} {v}" for p, v in doc["held"].items() if v) or "-"),
        ("searched from", (doc["base"] or "-")[:12]), ("commits on the path", str(doc["path_length"])),
        ("flake screen", f"the bad side ran {doc['flake_runs']} times"))]
    if commit:
        # Links stay Markdown; only the commit's own text (a subject) is escaped.
        pr = f"[#{commit['pr']}]({commit['pr_link']})" if commit.get("pr_link") else (
            f"#{commit['pr']}" if commit.get("pr") else "-")
        sha = f"[{commit['short']}]({commit['link']})" if commit.get("link") else commit["short"]
        rows += [(key.replace("_", " "), f"{sha} {_cell(commit['subject'])}"), ("pull request", pr),
                 ("merge commit", "yes" if commit["merge"] else "no"), ("committed", _cell(commit["date"]))]
    if doc.get("before"):
        rows.append(("the commit before it", f"{doc['before']['short']} {_cell(doc['before']['subject'])}"))
    cost = doc["cost"]
    rows += [("environments built", str(doc["envs_built"])),
             ("cost", f"{cost['steps']} steps, {cost['install_s']:.0f} s installing, {cost['run_s']:.0f} s running"
                      + (f", {cost['duration_s']:.0f} s in all" if cost.get("duration_s") else ""))]
    meta = doc.get("meta") or {}
    rows += [(k.replace("_", " "), _cell(str(v))) for k, v in meta.items() if k != "duration_s"]
    out += ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), "", "## Steps", "",
            "| # | phase | commit | subject | verdict | install | run | signature / note |",
            "|---|---|---|---|---|---|---|---|"]
    for s in doc["steps"]:
        runs = " + ".join(f"{x:.0f}s" for x in s["run_s"]) or "-"
        out.append(f"| {s['index']} | {s['phase']} | {s['commit']['short']} | {_cell(s['commit']['subject'][:80])} "
                   f"| {s['verdict']} | {s['install_s']:.0f}s | {runs} | {_cell(s['note'] or s['signature'])} |")
    out += ["", "## What each environment resolved to", "", "| # | versions |", "|---|---|"]
    for s in doc["steps"]:
        versions = (s.get("env") or {}).get("versions") or {}
        shown = ", ".join(f"{p} {v}" for p, v in sorted(versions.items()) if v) or s.get("install_reason") or "-"
        out.append(f"| {s['index']} | {_cell(shown)} |")
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: failure text as a code span nothing inside can close."""
    text = str(text or "").replace("\n", " ")
    return code(text).replace("|", "\\|") if any(ch in text for ch in "`<>*_[]|") else text
