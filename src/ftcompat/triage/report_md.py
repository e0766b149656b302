"""A bug report's Markdown: the project's template sections in its order, then ftcompat's own."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ftcompat.core.markdown import code
from ftcompat.core.outcome import first_line
from ftcompat.core.record import Record
from ftcompat.core.versions import public
from ftcompat.triage import upstream
from ftcompat.triage.scripts import clean, run_traceback, verdict


@dataclass(frozen=True)
class Boundary:
    """The versions of one package around a failure: last good and first bad, and where they come from."""

    package: str
    last_good: str | None
    first_bad: str | None
    source: str
    commit: Mapping | None = None  # a commit bisection's answer: sha, subject, pr, link, pr_link


# GitHub refuses an issue body longer than this; a report that would be longer attaches repro.py.
BODY_LIMIT = 65536


def render(cell: Record, proj: upstream.Project, why: str, doc: str, bound: Boundary, script: str,
           run: tuple[int, str] | None = None, producer: str | None = None) -> str:
    """The Markdown body, in the project's template order, with ftcompat's extra sections after.

    The script is inlined when the body then fits GitHub's limit, and is to be attached otherwise.
    """
    body = _render(cell, proj, why, doc, bound, script, run, producer, inline=True)
    return body if len(body) <= BODY_LIMIT else _render(cell, proj, why, doc, bound, script, run, producer,
                                                        inline=False)


def _render(cell: Record, proj: upstream.Project, why: str, doc: str, bound: Boundary, script: str,
            run: tuple[int, str] | None, producer: str | None, inline: bool) -> str:
    sections = {
        "System Info": _system_info(cell, proj),
        "Who can help?": _who(cell, proj),
        "Reproduction": _reproduction(cell, script, run, inline, producer),
        "Expected behavior": _expected(cell, doc),
        "Checklist": "- [x] the script above is minimal, complete and runs on its own (`uv run repro.py`)\n"
                     "- [x] the traceback is complete",
    }
    title = f"{cell.exc_type or 'Failure'} in {cell.case}: {first_line(cell.message, 90)}"
    lines = [f"<!-- ftcompat bug report for {cell.id}; paste below the line into {proj.new_issue_url} -->",
             f"**Title:** {title}", ""]
    issue = cell.known_issue
    if issue:
        lines += [f"> **Already reported: {issue['url']}** ({issue['summary']}). This cell is that bug; add "
                  "these versions and the script there as a comment instead of opening a new issue."
                  + (f" Workaround: {issue['workaround']}." if issue.get("workaround") else ""), ""]
    lines += [f"Upstream: **{proj.repo}** ({why}).", "", "---", ""]
    for name in proj.sections:
        lines += [f"### {name}", "", sections[name], ""]
    if "Expected behavior" not in proj.sections:
        lines += ["### Expected behavior", "", sections["Expected behavior"], ""]
    tb = (run_traceback(run[1]) if run and verdict(*run) == "REPRODUCED" else None) or cell.traceback
    lines += ["### Actual behavior", "", _actual(cell), "",
              "### Traceback", "", _fence(tb or "(not recorded; run the script)", "text"), "",
              "### Versions", "", _versions(bound, cell), ""]
    lines += ["### Existing reports", "", _existing(cell, doc), ""]
    return "\n".join(lines)


def _system_info(cell: Record, proj: upstream.Project) -> str:
    env = cell.env or {}
    v, more = env.get("versions") or {}, env.get("support_versions") or {}
    dev = env.get("device") or {}
    accel = f"cuda {dev.get('cuda')}, {dev.get('name')}" if dev.get("type") == "cuda" else "NA (CPU only)"
    unknown = "not recorded"
    rows = [
        ("`transformers` version", v.get("transformers")), ("Platform", env.get("platform")),
        ("Python version", env.get("python")), ("Huggingface_hub version", more.get("huggingface_hub", unknown)),
        ("Safetensors version", more.get("safetensors", unknown)), ("Accelerate version", v.get("accelerate")),
        ("Accelerate config", "not found"), ("DeepSpeed version", more.get("deepspeed") or "not installed"),
        ("PyTorch version (accelerator?)", f"{v.get('torch')} ({accel})"),
        ("Using distributed or parallel set-up in script?", "No"),
        ("Using GPU in script?", "Yes" if dev.get("type") == "cuda" else "No"),
        ("GPU type", dev.get("name") if dev.get("type") == "cuda" else "none"),
        ("TRL version", v.get("trl")), ("PEFT version", v.get("peft")),
        ("bitsandbytes version", v.get("bitsandbytes")), ("Datasets version", v.get("datasets")),
        ("Tokenizers version", v.get("tokenizers")), ("CPU", dev.get("name") if dev.get("type") != "cuda" else None),
    ]
    body = "\n".join(f"- {k}: {val if val is not None else 'not installed'}" for k, val in rows
                     if not (k == "CPU" and val is None))
    cmd = f"`{proj.env_command}` fields" if proj.env_command else "fields"
    body += f"\n\n(The {cmd} from the environment the failure was recorded in, by ftcompat.)"
    made = ((cell.handoff or {}).get("producer") or {}) if (cell.handoff or {}).get("failed") == "consumer" else {}
    if made.get("versions"):  # a handoff: the artifact came from another environment; which one matters as much
        saved = ", ".join(f"{p} {ver}" for p, ver in sorted(made["versions"].items()) if ver)
        body += (f"\n\nThe artifact it loads was made in another environment (Python {made.get('python')}): "
                 f"{saved}.")
    return body


def _who(cell: Record, proj: upstream.Project) -> str:
    area = proj.area(upstream.frames(cell.traceback) + [(cell.origin or {}).get("file") or ""])
    area = area or _area_from_step(cell)
    what = f"the **{area}** area" if area else "the core maintainers (they route it)"
    return f"{what}; the people for it are listed in the template's guide: {proj.template_url}"


def _area_from_step(cell: Record) -> str | None:
    step = cell.step or ""
    for pattern, area in (("generate", "generate"), ("Trainer|train", "trainer"),
                          ("from_pretrained|load", "Big Model Inference"), ("okenizer", "tokenizers")):
        if re.search(pattern, step):
            return area
    return None


def _reproduction(cell: Record, script: str, run: tuple[int, str] | None, inline: bool = True,
                  producer: str | None = None) -> str:
    files = "`produce.py` and `repro.py`" if producer else "`repro.py`"
    size = (len(script) + len(producer or "")) // 1024
    where = (("Save both scripts below, `produce.py` and `repro.py`, in one empty folder" if producer
              else "Save the script below as `repro.py`") if inline else
             f"Download the attached {files} ({size} KB: too long to inline within GitHub's "
             f"{BODY_LIMIT:,}-character limit; attach the {files} written beside this report)")
    if producer:  # a handoff whose consumer failed: the artifact is made by the other environment's script first
        where = (f"Made in one environment, loaded in another. {where}, run `uv run produce.py` (the versions that "
                 "made the artifact: it writes `./artifact`), then")
    half = "produce" if (cell.handoff or {}).get("failed") == "producer" else "test"
    out = [f"{where}{' run' if producer else ' and run'} `uv run repro.py`: uv installs the exact versions its "
           "header pins. It needs no GPU, network or download: it builds a tiny model and tokenizer from a config "
           f"with a fixed seed and calls `{half}_{cell.variant}` of ftcompat's case `{cell.case}` (inlined, "
           "with the few helpers it imports). It exits 1 and prints `REPRODUCED` when the failure shows."]
    if producer and inline:
        out += ["", "<details><summary>produce.py</summary>", "", _fence(producer, "python"), "", "</details>"]
    if inline:
        out += ["", "<details><summary>repro.py</summary>", "", _fence(script, "python"), "", "</details>"]
    if run:
        rc, output = run
        shown = clean(output)
        out += ["", f"Output of `uv run repro.py` in an empty folder ({verdict(rc, output)}, exit status {rc}):", "",
                _fence(_head_tail(shown, 4, 60), "text")]
    return "\n".join(out)


def _head_tail(text: str, head: int, tail: int) -> str:
    kept = text.rstrip().splitlines()
    if len(kept) <= head + tail:
        return "\n".join(kept)
    return "\n".join([*kept[:head], "…", *kept[-tail:]])


def _expected(cell: Record, doc: str) -> str:
    first = doc.strip().splitlines()[0] if doc.strip() else cell.case
    return (f"The case checks: {first} The variant `{cell.variant}` passes in the combos listed under "
            "Versions (last good) and is expected to pass here too.")


def _actual(cell: Record) -> str:
    step = f" while running `{cell.step}`" if cell.step else ""
    details = cell.details or {}
    facts = f"\n\nWhat the case recorded:\n\n{_fence(json.dumps(details, indent=2, sort_keys=True), 'json')}" \
        if details else ""
    return f"{code(cell.signature)}{step} ({cell.status.value}).{facts}"


def _versions(bound: Boundary, cell: Record) -> str:
    mine = public((cell.env or {}).get("versions", {}).get(bound.package))
    good = f"{bound.package} {bound.last_good}" if bound.last_good else "none seen"
    lines = [f"- failing: {bound.package} {mine} (cell `{cell.id}`)",
             f"- last known good: {good}", f"- first bad: {bound.package} {bound.first_bad}",
             f"- from: {bound.source}"]
    if bound.commit:
        c = bound.commit
        pr = f", pull request [#{c['pr']}]({c['pr_link']})" if c.get("pr_link") else (
            f", pull request #{c['pr']}" if c.get("pr") else "")
        sha = f"[{c['short']}]({c['link']})" if c.get("link") else c["short"]
        lines.append(f"- first bad commit: {sha} {code(c['subject'])}{pr}")
    if bound.source.startswith("this grid") and bound.last_good:
        lines.append(f"- narrow it down: `ftcompat bisect \"{cell.column}\" --good {bound.package}=="
                     f"{bound.last_good} --bad {bound.package}=={mine}` (other packages as in the failing cell)")
    return "\n".join(lines)


def _existing(cell: Record, doc: str) -> str:
    issue = cell.known_issue
    cited = sorted(set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+/(?:issues|pull)/\d+", doc)))
    out = [f"- **covers this cell:** {issue['url']}: {issue['summary']}"] if issue else \
        ["- no entry in ftcompat's known-issue registry covers this cell"]
    out += [f"- cited by the case: {url}" for url in cited if not issue or url != issue["url"]]
    return "\n".join(out)


def _fence(text: str, lang: str = "") -> str:
    # Longer than any backtick run inside, so a case that holds ``` cannot end the block early.
    ticks = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


