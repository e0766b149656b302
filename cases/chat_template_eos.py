"""Chat-template SFT: does every turn SFTTrainer trains on end in exactly one EOS?

Symptom (field report shared/seeds/003_*.txt, issue 3): a TinyLlama chat fine-tune trained on a malformed turn format
and every answer degraded; the fix was the Zephyr format
``<|system|>\\n{sys}</s>\\n<|user|>\\n{q}</s>\\n<|assistant|>\\n{a}</s>``. The case hands SFTTrainer a conversational
dataset (``messages``) with the tiny llama2-chat tokenizer, whose template closes every turn with ``</s>\\n`` and whose
``pad_token`` is ``</s>`` (as TinyLlama-Chat's), and reads what the trainer really feeds the model: one collated batch
from ``trainer.get_train_dataloader()``. Variants, and what passes:
* ``input_ids``: in every sequence, the ids between consecutive EOS ids hold exactly one turn header and some content:
  no turn without its EOS, none doubled (``</s>\\n</s>``).
* ``labels``: every turn-closing EOS is also a training target (label not -100), so the model is taught to stop.
Upstream: https://github.com/huggingface/trl/issues/3318 (doubled EOS), trl#1623 (EOS masked as padding). Fixes, causes
and measured ranges: docs/findings/chat_template_eos.md.
"""

from __future__ import annotations

import re

from ftcompat.harness import record, setup, step
from ftcompat.harness.compat import sft_config, sft_trainer

_HEADER = re.compile(r"<\|(system|user|assistant)\|>")

_CONVERSATIONS = [
    [
        {"role": "system", "content": "You are a brief assistant."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
    ],
    [
        {"role": "user", "content": "Count to three."},
        {"role": "assistant", "content": "1 2 3"},
        {"role": "user", "content": "And back?"},
        {"role": "assistant", "content": "3 2 1, done."},
    ],
    [
        {"role": "system", "content": "Answer politely."},
        {"role": "user", "content": "Name a fox."},
        {"role": "assistant", "content": "The quick brown fox, thank you for asking."},
        {"role": "user", "content": "Thanks!"},
        {"role": "assistant", "content": "You are welcome."},
    ],
]


def _batch(model_ref, tmp_path):
    """Build SFTTrainer on the conversations and return (tokenizer, one collated batch as lists)."""
    with setup("load tiny model and tokenizer, build SFTConfig"):
        import torch
        from datasets import Dataset
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(0)
        tok = AutoTokenizer.from_pretrained(model_ref.path)
        model = AutoModelForCausalLM.from_pretrained(model_ref.path)
        args = sft_config(
            tmp_path / "out", "cpu", max_length=256, max_steps=1, report_to="none", seed=0,
            per_device_train_batch_size=len(_CONVERSATIONS), save_strategy="no",
            dataloader_num_workers=0, optional={"packing": False},
        )
        dataset = Dataset.from_list([{"messages": m} for m in _CONVERSATIONS])
        record(pad_is_eos=tok.pad_token_id == tok.eos_token_id, eos_token=tok.eos_token)
    with step("SFTTrainer(train_dataset=messages)"):
        trainer = sft_trainer(model, tok, args, dataset)
    with step("trainer.get_train_dataloader: first batch"):
        batch = next(iter(trainer.get_train_dataloader()))
    record(collator=type(trainer.data_collator).__name__, batch_keys=sorted(batch))
    ids = batch["input_ids"].tolist()
    mask = batch["attention_mask"].tolist() if "attention_mask" in batch else [[1] * len(r) for r in ids]
    labels = batch["labels"].tolist() if "labels" in batch else None
    rows = []
    for i, row in enumerate(ids):
        keep = [j for j, m in enumerate(mask[i]) if m]
        rows.append(([row[j] for j in keep], [labels[i][j] for j in keep] if labels else None))
    assert len(rows) == len(_CONVERSATIONS), f"batch has {len(rows)} sequences, fed {len(_CONVERSATIONS)}"
    return tok, rows


def _turn_problems(tok, seq):
    """Return (closing EOS positions, problems) for one sequence of ids."""
    eos = tok.eos_token_id
    cuts = [j for j, t in enumerate(seq) if t == eos]
    problems, closing, start = [], [], 0
    for n, pos in enumerate(cuts + [len(seq)]):
        text = tok.decode(seq[start:pos], skip_special_tokens=False)
        heads = _HEADER.findall(text)
        last = pos == len(seq)
        if last:
            if heads:
                problems.append(f"last turn ({heads[-1]}) has no closing EOS")
        elif not heads:
            problems.append(f"EOS #{n + 1} doubled (only {text!r} since the previous EOS)")
        else:
            closing.append(pos)
            if len(heads) > 1:
                problems.append(f"EOS dropped: turns {heads} share one EOS")
        start = pos + 1
    return cuts, closing, problems


def test_input_ids(model, tmp_path):
    """Each turn in the collated input_ids ends in exactly one EOS: none dropped, none doubled."""
    tok, rows = _batch(model, tmp_path)
    found, eos_counts, turn_counts = [], [], []
    for seq, _ in rows:
        cuts, closing, problems = _turn_problems(tok, seq)
        text = tok.decode(seq, skip_special_tokens=False)
        eos_counts.append(len(cuts))
        turn_counts.append(len(_HEADER.findall(text)))
        if problems:
            found.append({"problems": problems, "text": text})
    record(eos_per_sequence=eos_counts, turns_per_sequence=turn_counts, bad_sequences=len(found),
           offending_example=found[0] if found else None)
    assert not found, (
        f"{len(found)}/{len(rows)} sequences break the one-EOS-per-turn format "
        f"(EOS {eos_counts} vs turns {turn_counts}): {found[0]['problems'][0]} in {found[0]['text']!r}"
    )


def test_labels(model, tmp_path):
    """Every turn-closing EOS in the collated batch is a training target (label != -100)."""
    tok, rows = _batch(model, tmp_path)
    assert rows[0][1] is not None, "the collated batch has no labels"
    masked, total, example = 0, 0, None
    for seq, labels in rows:
        _, closing, _ = _turn_problems(tok, seq)
        lost = [p for p in closing if labels[p] != tok.eos_token_id]
        masked += len(lost)
        total += len(closing)
        if lost and example is None:
            example = tok.decode(seq, skip_special_tokens=False)
    record(turn_eos=total, turn_eos_masked=masked, offending_example=example)
    assert total > 0, "no turn-closing EOS found in the batch"
    assert masked == 0, (
        f"{masked}/{total} turn-closing EOS have label -100 (pad_token == eos_token), so the model "
        f"is never trained to stop; e.g. {example!r}"
    )
