"""Keep Hugging Face tokens (and index passwords) out of everything ftcompat writes or prints.

A token reaches a cell through an exception message, a printed URL or a log line of the library
under test; it must never reach results, logs, reports or the page. Everything that leaves the
process goes through ``redact``: the values of the token variables set in this environment, any
string shaped like a Hub token, and the password part of a URL's credentials.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping

TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN", "HF_API_TOKEN")
MASK = "hf_***"
# Hub user access tokens are ``hf_`` followed by at least 30 letters and digits; 20 leaves room for
# older and test tokens without matching ordinary identifiers such as ``hf_hub_download``.
TOKEN_RE = re.compile(r"hf_[A-Za-z0-9]{20,}")
# ``https://user:secret@host``: a private index URL from PIP_INDEX_URL carries its password inline.
# Every part is bounded: an unbounded scheme is tried from every letter of a long line, which made
# masking a megabyte printed without a newline take minutes (quadratic); a scheme is a short word.
URL_CREDENTIALS_RE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]{0,31}://)(?P<user>[^/\s:@]{1,256}):(?P<secret>[^/\s@]{1,1024})@")
# Values shorter than this are not treated as secrets: masking "1" would wreck every number.
MIN_SECRET = 8


def secrets_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """The token values set in the environment (HF_TOKEN and its older names), longest first."""
    environ = os.environ if environ is None else environ
    found = {environ[v].strip() for v in TOKEN_VARS if len(environ.get(v, "").strip()) >= MIN_SECRET}
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every token, token-shaped string and URL password replaced by a mask."""
    if not text:
        return text
    for secret in secrets_from_env() if secrets is None else secrets:
        # Also its JSON-escaped spelling, so a serialised file is cleaned as well as plain text.
        for form in {secret, json.dumps(secret)[1:-1]}:
            text = text.replace(form, MASK)
    if "hf_" in text:
        text = TOKEN_RE.sub(MASK, text)
    return URL_CREDENTIALS_RE.sub(r"\g<scheme>\g<user>:***@", text) if "://" in text else text


def scrub_report(rep) -> None:
    """Redact a pytest report in place: its failure text and captured output reach the terminal log."""
    secrets = secrets_from_env()
    if isinstance(rep.longrepr, str):
        rep.longrepr = redact(rep.longrepr, secrets)
    elif isinstance(rep.longrepr, tuple):  # a skip: (path, line, reason)
        rep.longrepr = tuple(redact(x, secrets) if isinstance(x, str) else x for x in rep.longrepr)
    elif rep.longrepr is not None:
        # Rewrite the strings inside pytest's own repr objects rather than flattening them to one
        # string, which --tb=line would cut to 50 characters.
        _scrub_object(rep.longrepr, secrets, set())
    rep.sections = [(title, redact(body, secrets)) for title, body in rep.sections]


def _scrub_object(obj, secrets, seen: set[int], depth: int = 0) -> None:
    if id(obj) in seen or depth > 12 or not hasattr(obj, "__dict__"):
        return
    seen.add(id(obj))
    for name, value in list(vars(obj).items()):
        new = _scrub_value(value, secrets, seen, depth)
        if new is not value:
            object.__setattr__(obj, name, new)  # some repr classes are frozen dataclasses


def _scrub_value(value, secrets, seen: set[int], depth: int):
    if isinstance(value, str):
        clean = redact(value, secrets)
        return value if clean == value else clean
    if isinstance(value, (list, tuple)):
        items = [_scrub_value(v, secrets, seen, depth + 1) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items) if isinstance(value, list) else tuple(items)
    _scrub_object(value, secrets, seen, depth + 1)
    return value
