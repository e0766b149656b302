"""``apply_chat_template(tokenize=True)`` returns a ``BatchEncoding`` in transformers 5.

Symptom: transformers 5 changed ``apply_chat_template``'s ``return_dict`` default to ``True``
(https://github.com/huggingface/transformers/pull/41626, https://github.com/huggingface/transformers/issues/42567),
so ``ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_tensors="pt")``
followed by ``model.generate(ids)`` no longer gets a tensor: ``generate`` raises ``AttributeError`` (it reads
``inputs_tensor.shape`` on a ``BatchEncoding``). Code that takes ``len()`` of the result counts its keys (2)
instead of its tokens, which is how TRL's SFTTrainer built a prompt/completion ``completion_mask`` that
marks almost the whole sequence, prompt included, as completion
(https://github.com/huggingface/trl/issues/4448, fix https://github.com/huggingface/trl/pull/4880).

Variants (tiny Llama, Zephyr-style chat template):
* ``generate_positional``: ``model.generate(apply_chat_template(..., tokenize=True, return_tensors="pt"))``,
  the 4.x idiom; passes when 4 new tokens are generated.
* ``generate_dict``: the twin, ``enc = apply_chat_template(..., return_dict=True, return_tensors="pt")``
  and ``model.generate(**enc)``; passes on the same terms.
* ``sft_completion_mask``: SFTTrainer on a conversational prompt/completion dataset; passes when every
  tokenized example's ``completion_mask`` (or, in TRL releases that write it there, its ``labels`` other
  than -100) has ones, and the tokens it marks decode to the completion only (the answer, no
  ``<|user|>`` turn, no prompt text). A TRL whose SFTTrainer makes neither column skips with the
  columns it made.

Emulation: the tiny tokenizer is a generic fast tokenizer, whose default ``model_input_names`` add
``token_type_ids`` on transformers 4.x, which Llama's ``generate`` refuses; setup gives it Llama's
``["input_ids", "attention_mask"]``, as a real Llama/TinyLlama tokenizer has. For the two generate
variants setup also drops the tiny template's ``{% generation %}`` markers (TinyLlama's own template has
none; transformers 4.39.3 cannot parse them: TemplateSyntaxError); the rendered text is the same.

Boundaries, each run on both sides: docs/findings/chat_template_tensors.md.
"""

from __future__ import annotations

from ftcompat.harness import record, setup, step
from ftcompat.harness.compat import sft_config, sft_trainer

_MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]

_PAIRS = [
    ("What is the capital of France?", "Paris."),
    ("Count to three.", "1 2 3"),
    ("Name a fox.", "The quick brown fox."),
]


def _model_and_tokenizer(model_ref, device, plain_template=False):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(model_ref.path)
    record(tokenizer_class=type(tok).__name__, model_input_names_saved=list(tok.model_input_names))
    tok.model_input_names = ["input_ids", "attention_mask"]  # what Llama's tokenizer class declares
    if plain_template and "{% generation %}" in (tok.chat_template or ""):
        # Zephyr's own template has no {% generation %} markers; the tiny one has them for
        # assistant-mask cases, and older transformers (4.39.3 run) cannot parse them. Same text rendered.
        tok.chat_template = tok.chat_template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
        record(generation_tags_removed=True)
    lm = AutoModelForCausalLM.from_pretrained(model_ref.path).to(device).eval()
    return lm, tok


def _check_generated(out, prompt_len):
    new = int(out.shape[-1]) - prompt_len
    record(new_tokens=new)
    assert new == 4, f"generate returned {new} new tokens, asked for 4"


def test_generate_positional(model, device):
    """generate(apply_chat_template(tokenize=True, return_tensors='pt')): the 4.x idiom."""
    with setup("load tiny model and tokenizer"):
        lm, tok = _model_and_tokenizer(model, device, plain_template=True)
    with step("apply_chat_template(tokenize=True, return_tensors='pt')"):
        ids = tok.apply_chat_template(_MESSAGES, add_generation_prompt=True, tokenize=True, return_tensors="pt")
    record(returned_type=type(ids).__name__)
    with step("model.generate(ids)"):
        out = lm.generate(ids.to(device), max_new_tokens=4, min_new_tokens=4, do_sample=False)
    _check_generated(out, int(ids.shape[-1]))


def test_generate_dict(model, device):
    """The twin: apply_chat_template(return_dict=True, return_tensors='pt'), then generate(**enc)."""
    with setup("load tiny model and tokenizer"):
        lm, tok = _model_and_tokenizer(model, device, plain_template=True)
    with step("apply_chat_template(tokenize=True, return_dict=True, return_tensors='pt')"):
        enc = tok.apply_chat_template(
            _MESSAGES, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
        )
    record(returned_type=type(enc).__name__, keys=sorted(enc) if hasattr(enc, "keys") else None)
    with step("model.generate(**enc)"):
        out = lm.generate(**enc.to(device), max_new_tokens=4, min_new_tokens=4, do_sample=False)
    _check_generated(out, int(enc["input_ids"].shape[-1]))


def test_sft_completion_mask(model, device, tmp_path):
    """SFTTrainer on conversational prompt/completion data: completion_mask marks the completion only."""
    import pytest

    with setup("load tiny model and tokenizer, build SFTConfig and the dataset"):
        from datasets import Dataset

        lm, tok = _model_and_tokenizer(model, device)
        args = sft_config(
            tmp_path / "out", device, max_length=128, max_steps=1, report_to="none", seed=0,
            per_device_train_batch_size=len(_PAIRS), save_strategy="no", dataloader_num_workers=0,
            optional={"packing": False},
        )
        dataset = Dataset.from_list(
            [{"prompt": [{"role": "user", "content": q}], "completion": [{"role": "assistant", "content": a}]}
             for q, a in _PAIRS]
        )
    with step("SFTTrainer(train_dataset=prompt/completion conversations)"):
        trainer = sft_trainer(lm, tok, args, dataset)
    columns = list(trainer.train_dataset.column_names)
    record(columns=columns)
    if "completion_mask" in columns:
        source = "completion_mask"
    elif "labels" in columns:
        source = "labels"  # TRL releases that write the loss mask into labels (-100 = not trained)
    else:
        pytest.skip(f"this SFTTrainer made neither completion_mask nor labels for a prompt/completion dataset "
                    f"(columns {columns})")
    record(mask_source=source)
    rows = len(trainer.train_dataset)
    assert rows == len(_PAIRS), f"the tokenized train_dataset has {rows} examples, fed {len(_PAIRS)}"
    bad, ones, marked_texts = [], [], []
    for row, (question, answer) in zip(trainer.train_dataset, _PAIRS, strict=True):
        ids = row["input_ids"]
        mask = row["completion_mask"] if source == "completion_mask" else [int(x != -100) for x in row["labels"]]
        marked = tok.decode([i for i, m in zip(ids, mask, strict=True) if m], skip_special_tokens=False)
        ones.append(sum(mask))
        marked_texts.append(marked)
        if not sum(mask) or answer not in marked or question in marked or "<|user|>" in marked:
            bad.append({"marked": marked, "ones": sum(mask), "tokens": len(ids)})
    record(completion_mask_ones=ones, tokens=[len(r["input_ids"]) for r in trainer.train_dataset],
           marked_example=marked_texts[0], bad_examples=len(bad))
    assert not bad, (
        f"{len(bad)}/{len(_PAIRS)} examples' completion_mask marks the wrong tokens "
        f"({bad[0]['ones']} of {bad[0]['tokens']} marked): {bad[0]['marked']!r}"
    )
