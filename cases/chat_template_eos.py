"""Chat-template SFT: does every turn SFTTrainer trains on end in exactly one EOS?

Symptom (field report shared/seeds/003_*.txt, issue 3): a TinyLlama chat fine-tune trained on a
malformed turn format and every answer degraded; the fix was the Zephyr format
``<|system|>\\n{sys}</s>\\n<|user|>\\n{q}</s>\\n<|assistant|>\\n{a}</s>``. This case hands SFTTrainer a
conversational dataset (``messages`` lists) with a tokenizer whose chat template already closes every
turn with ``</s>`` (the tiny llama2-chat tokenizer: the real TinyLlama/Zephyr template, which renders
``</s>\\n`` after each turn, so the text ends in ``\\n``, not ``</s>``; ``pad_token`` is ``</s>`` as in
TinyLlama-Chat), then reads what the trainer really feeds the model: one collated batch from
``trainer.get_train_dataloader()``, positions with ``attention_mask == 1``.

* ``test_input_ids``: in every sequence, the ids between consecutive EOS ids hold exactly one turn
  header and some content (none dropped: two turns without an EOS between them, or a turn with none
  after it; none doubled: an EOS with only whitespace since the previous one, e.g. ``</s>\\n</s>``).
* ``test_labels``: every turn-closing EOS is also a training target (its label is not -100), i.e. the
  model is taught to stop (default loss on all tokens, no completion-only masking).

Findings (read in TRL's code, confirmed by running on CPU; transformers 4.51.3 for TRL 0.13-0.18):
- Doubled EOS, TRL 0.16.0-0.16.1: https://github.com/huggingface/trl/pull/3091 made SFTTrainer append
  ``eos_token_id`` whenever the tokenized sequence does not end in EOS. The template ends in ``</s>\\n``,
  so every sequence ends ``</s>\\n</s>`` (``test_input_ids`` fails: "EOS #6 doubled (only '\\n' since the
  previous EOS)"). Upstream: https://github.com/huggingface/trl/issues/3318 (same with Qwen2.5's
  ``<|im_end|>\\n``); fixed by https://github.com/huggingface/trl/pull/3328 in 0.17.0 (no EOS added to
  conversational data). 0.15.2 and 0.17.0+ add no EOS.
- EOS never trained, TRL <= 0.16.0: SFTTrainer collates with transformers'
  ``DataCollatorForLanguageModeling``, which sets ``labels[input_ids == pad_token_id] = -100``. With
  ``pad_token == eos_token`` (TinyLlama-Chat; also what TRL sets when a tokenizer has no pad token) every
  ``</s>`` is in the ids but masked from the loss, so the model is never taught to stop
  (``test_labels`` fails: 12/12 masked). Upstream: https://github.com/huggingface/trl/issues/1623,
  https://github.com/huggingface/transformers/issues/23530. TRL 0.16.1 ships its own collator that pads
  labels with -100 and keeps EOS targets; fixed from there.
- TRL 0.13/0.14 only detect a ``messages`` column when its datasets feature *equals* a plain list of
  dicts; datasets >= 4.0 types it ``List(...)``, so nothing is detected and ``SFTTrainer(...)`` raises
  ``KeyError: 'text'`` (both variants; measured with datasets 4.0.0 and 5.0.1). With datasets 3.6.0
  they format the conversation (no EOS added: ``test_input_ids`` passes, ``test_labels`` fails as
  above). No upstream issue found for this one.
- TRL 0.17.0, 0.18.2, 0.19.0 and every later release run (to 1.16.0): both variants pass.
"""

from __future__ import annotations

import inspect
import re

from ftcompat.harness import record, setup, step

DEFAULT_MODELS = ["tiny-llama"]

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
        from trl import SFTConfig, SFTTrainer

        torch.manual_seed(0)
        tok = AutoTokenizer.from_pretrained(model_ref.path)
        model = AutoModelForCausalLM.from_pretrained(model_ref.path)
        params = inspect.signature(SFTConfig.__init__).parameters
        cfg = dict(
            output_dir=str(tmp_path / "out"), max_steps=1, report_to="none", seed=0,
            per_device_train_batch_size=len(_CONVERSATIONS), save_strategy="no",
            dataloader_num_workers=0,
        )
        cfg["max_length" if "max_length" in params else "max_seq_length"] = 256
        if "packing" in params:
            cfg["packing"] = False
        if "use_cpu" in params:
            cfg["use_cpu"] = True
        args = SFTConfig(**cfg)
        dataset = Dataset.from_list([{"messages": m} for m in _CONVERSATIONS])
        record(pad_is_eos=tok.pad_token_id == tok.eos_token_id, eos_token=tok.eos_token)
    trainer_params = inspect.signature(SFTTrainer.__init__).parameters
    tok_kw = {"processing_class" if "processing_class" in trainer_params else "tokenizer": tok}
    with step("SFTTrainer(train_dataset=messages)"):
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, **tok_kw)
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
