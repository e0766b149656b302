"""Text from a failure, put into Markdown so that nothing inside it can end the code span it sits in.

An exception message is untrusted text: one with its own backticks closes a one-backtick span early,
and whatever follows is Markdown again (GitHub renders some HTML in it). CommonMark's own rule
prevents that: a span's fence is a run of backticks longer than any run inside, padded with a space
where the text starts or ends with a backtick; a line break, which would split a table row or list
item, becomes a space.
"""

from __future__ import annotations

import re


def code(text: object) -> str:
    """``text`` as one inline code span that nothing in it can close."""
    body = " ".join(str(text).split("\n")).replace("\r", " ")
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if body.startswith("`") or body.endswith("`") or (body.startswith(" ") and body.endswith(" ")) else ""
    return f"{fence}{pad}{body}{pad}{fence}"
