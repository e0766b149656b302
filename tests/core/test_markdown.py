"""A failure's text in a Markdown code span: nothing inside can close it."""

import re

import pytest

from ftcompat.core.markdown import code


def _span_body(span):
    """What CommonMark reads as the span's content: between the opening fence and the first equal fence."""
    fence = re.match(r"`+", span).group(0)
    closing = re.search(rf"(?<!`){fence}(?!`)", span[len(fence):])
    return span[len(fence):len(fence) + closing.start()], span[len(fence) + closing.end():]


@pytest.mark.parametrize("text", [
    "KeyError: 'text'",
    "ValueError: bad `x` then <img src=x onerror=alert(1)>",
    "``double`` and ```triple``` <script>alert(1)</script>",
    "`starts and ends with a backtick`",
    "two\nlines <b>bold</b>",
])
def test_nothing_in_the_text_closes_its_span(text):
    span = code(text)
    body, after = _span_body(span)
    assert after == "", span  # the span ends where the text ends: nothing leaks out as Markdown
    assert body.strip() == " ".join(text.split("\n"))


def test_plain_text_keeps_the_plain_form():
    assert code("KeyError: 'text'") == "`KeyError: 'text'`"


def test_grid_md_keeps_a_hostile_signature_inside_its_span():
    from conftest import record

    from ftcompat.results.grid import Grid
    from ftcompat.results.render import markdown

    hostile = "ValueError: x` <img src=x onerror=alert(1)> `y"
    cell = record("c::case[v]", "fail", signature=hostile, triage="new")
    text = markdown(Grid((cell,), ({"id": "c", "ran": True, "python": "3.11", "pins": {}},), ("case[v]",), "t"))
    line = next(line for line in text.splitlines() if "onerror" in line)
    assert "``ValueError: x` <img src=x onerror=alert(1)> `y``" in line
