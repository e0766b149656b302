"""Outcome classification: what a pytest phase report becomes in the grid."""

from ftcompat.core.outcome import Status, classify, first_line, signature_of


def test_pass():
    assert classify("call", "passed").status is Status.PASS


def test_exception_in_call_is_fail_with_real_type_and_first_line():
    got = classify("call", "failed", "AttributeError",
                   "'DynamicCache' object has no attribute 'seen_tokens'\nDid you mean: 'get_seq_length'?")
    assert got.status is Status.FAIL
    assert got.signature == "AttributeError: 'DynamicCache' object has no attribute 'seen_tokens'"
    assert got.exc_type == "AttributeError"


def test_failed_assertion_is_fail():
    got = classify("call", "failed", "AssertionError", "trainable params 0 != LoRA params 4096\nassert 0 == 4096")
    assert got.status is Status.FAIL
    assert got.signature == "AssertionError: trainable params 0 != LoRA params 4096"


def test_fixture_failure_is_error():
    got = classify("setup", "failed", "OSError", "can't build tiny model")
    assert got.status is Status.ERROR
    assert got.signature == "OSError: can't build tiny model"


def test_teardown_failure_is_error():
    assert classify("teardown", "failed", "RuntimeError", "x").status is Status.ERROR


def test_case_setup_error_shows_underlying_exception():
    got = classify("call", "failed", "CaseSetupError", "ValueError: nope", "ValueError", "nope")
    assert got.status is Status.ERROR
    assert got.signature == "ValueError: nope"


def test_skip_carries_reason():
    got = classify("call", "skipped", skip_reason="needs CUDA and this machine has none")
    assert got.status is Status.SKIP
    assert got.signature == "needs CUDA and this machine has none"


def test_statuses_are_lowercase_words():
    assert [s.value for s in Status] == ["pass", "fail", "error", "skip", "not-installable", "flaky", "crash",
                                         "timeout"]


def test_first_line_and_signature_helpers():
    assert first_line("\n\n  hello \nworld") == "hello"
    assert first_line("x" * 400, limit=10) == "x" * 9 + "…"
    assert signature_of("KeyError", "") == "KeyError"
    assert signature_of("KeyError", "'type'") == "KeyError: 'type'"


def test_env_paths_are_dropped_from_signatures():
    msg = ("cannot import name 'DataCollatorForCompletionOnlyLM' from 'trl' "
           "(/work/main/.nox/trl0-22/lib/python3.11/site-packages/trl/__init__.py)")
    assert signature_of("ImportError", msg) == (
        "ImportError: cannot import name 'DataCollatorForCompletionOnlyLM' from 'trl' "
        "(site-packages/trl/__init__.py)")


def test_terminal_colour_codes_are_not_part_of_a_signature():
    # torch 2.6+'s weights_only refusal bolds a sentence with ANSI codes; a grid cell and a search paste want text.
    message = ("Weights only load failed. This file can still be loaded, to do so you have two options, "
               "\x1b[1mdo those steps only if you trust the source of the checkpoint\x1b[0m.\n\tmore")
    assert signature_of("UnpicklingError", message) == (
        "UnpicklingError: Weights only load failed. This file can still be loaded, to do so you have two options, "
        "do those steps only if you trust the source of the checkpoint.")
