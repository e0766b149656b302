"""Truncated completions: does SFTTrainer silently train on an example whose answer was cut away?

Symptom (field report shared/seeds/003_*.txt, "Truncation at 512 tokens (system prompt takes ~400 tokens itself!)"):
with a ~400-token system prompt and ``max_length=512``, a long question pushes the whole answer past the limit; with
assistant-only / completion-only loss the example has no target left (every label -100): wasted compute at best, a 0/0
loss for a batch of only such examples (https://github.com/huggingface/trl/issues/3927). Setup: the tiny llama2-chat
tokenizer (Zephyr template, ``{% generation %}`` around assistant turns); three conversations within 512 tokens, one
whose prompt alone exceeds it; loss on the answer only the way the release offers it:
``SFTConfig(assistant_only_loss=True)`` (TRL >= 0.19), else ``DataCollatorForCompletionOnlyLM`` with the
``<|assistant|>\\n`` template (``loss_mode`` is recorded).
Pass: no example reaches the collator with zero target tokens silently (dropping or warning is fine); ``behaviour`` says
which happened: ``dropped``, ``warned``, ``kept with targets`` or ``trained on zero targets silently`` (the failure,
with ``zero_target_loss``). Causes, the fix, ranges and upstream links: docs/findings/truncated_completion.md.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings

from ftcompat.harness import record, setup, step
from ftcompat.harness.compat import accepted, sft_config, sft_trainer

MAX_LENGTH = 512
_SYSTEM = " ".join(f"Rule {i}: answer questions about the family briefly and politely." for i in range(1, 15))
_LONG_QUESTION = " ".join(f"Question part {i}: tell me more about the family and its history." for i in range(1, 9))
_ROWS = [
    ("Who is Joao?", "Joao is the grandfather."),
    (_LONG_QUESTION, "The family came from Porto in 1950."),
    ("Where does he live?", "He lives in Lisbon."),
    ("How old is he?", "He is eighty."),
]
# Warnings that tell the user an example lost its targets (not generic truncation notes).
_RELEVANT = re.compile(r"ignored in loss|response key|fully masked|no (assistant|completion|target) tokens", re.I)


class _LogCapture(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, rec):
        self.messages.append(rec.getMessage())


@contextlib.contextmanager
def _capture():
    """Collect Python warnings and WARNING+ log records (root, transformers, trl loggers)."""
    handler = _LogCapture()
    loggers = [logging.getLogger(n) for n in ("", "transformers", "trl")]
    for lg in loggers:
        lg.addHandler(handler)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield handler.messages, caught
        finally:
            for lg in loggers:
                lg.removeHandler(handler)


def test_assistant_only(model, tmp_path):
    """A conversation whose system+user prompt exceeds max_length: dropped, warned about, or silently zero-target?"""
    with setup("load tiny model and tokenizer, build SFTConfig"):
        import torch
        from datasets import Dataset
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from trl import SFTConfig

        torch.manual_seed(0)
        tok = AutoTokenizer.from_pretrained(model.path)
        lm = AutoModelForCausalLM.from_pretrained(model.path)
        rows = [[{"role": "system", "content": _SYSTEM}, {"role": "user", "content": q},
                 {"role": "assistant", "content": a}] for q, a in _ROWS]

        def n_tokens(messages):
            text = tok.apply_chat_template(messages, tokenize=False)
            return len(tok(text, add_special_tokens=False).input_ids)

        prompt_lens = [n_tokens(r[:2]) for r in rows]
        full_lens = [n_tokens(r) for r in rows]
        record(prompt_tokens=prompt_lens, full_tokens=full_lens, max_length=MAX_LENGTH)
        assert prompt_lens[1] > MAX_LENGTH and max(full_lens[i] for i in (0, 2, 3)) < MAX_LENGTH, (
            f"fixture lengths off: prompts {prompt_lens}, full {full_lens}")
        cfg = dict(max_steps=1, report_to="none", seed=0, per_device_train_batch_size=1,
                   save_strategy="no", dataloader_num_workers=0)
        extra = {}
        if "assistant_only_loss" in accepted(SFTConfig):
            cfg["assistant_only_loss"] = True
            mode = "assistant_only_loss"
        else:
            from trl import DataCollatorForCompletionOnlyLM

            template = tok("<|assistant|>\n", add_special_tokens=False).input_ids
            extra["data_collator"] = DataCollatorForCompletionOnlyLM(response_template=template, tokenizer=tok)
            mode = "DataCollatorForCompletionOnlyLM"
        record(loss_mode=mode)
        args = sft_config(tmp_path / "out", "cpu", max_length=MAX_LENGTH, optional={"packing": False}, **cfg)
        dataset = Dataset.from_list([{"messages": r} for r in rows])

    with _capture() as (logs, caught):
        with step("SFTTrainer(assistant/completion-only loss, max_length=512)"):
            trainer = sft_trainer(lm, tok, args, dataset, **extra)
        with step("collate every training example (batches of one)"):
            batches = list(trainer.get_train_dataloader())
    messages = [str(w.message) for w in caught] + logs
    relevant = sorted({m[:300] for m in messages if _RELEVANT.search(m)})
    targets = [int((b["labels"] != -100).sum()) for b in batches]
    lengths = [int(b["input_ids"].shape[-1]) for b in batches]
    zero = [i for i, t in enumerate(targets) if t == 0]
    dropped = len(rows) - len(trainer.train_dataset)
    record(processed_examples=len(trainer.train_dataset), dropped=dropped, collated_lengths=lengths,
           targets_per_example=targets, relevant_warnings=relevant,
           warnings_seen=sorted({m[:160] for m in messages})[:12])
    if zero:
        b = {k: v.to(lm.device) for k, v in batches[zero[0]].items() if k in ("input_ids", "attention_mask", "labels")}
        with torch.no_grad():
            loss = lm(**b).loss
        record(zero_target_loss=float(loss), zero_target_tail=tok.decode(b["input_ids"][0][-24:]))
        behaviour = "warned" if relevant else "trained on zero targets silently"
    else:
        behaviour = "dropped" if dropped else "kept with targets"
    record(behaviour=behaviour)
    assert len(batches) == len(rows) - dropped, f"{len(batches)} batches for {len(rows) - dropped} examples"
    assert not zero or relevant, (
        f"behaviour: {behaviour}: {len(zero)} of {len(batches)} training examples reach the collator with "
        f"0 target tokens (labels all -100; lengths {lengths}, targets {targets}), not dropped "
        f"(dropped {dropped}) and no warning; loss on it {float(loss)}"
    )
