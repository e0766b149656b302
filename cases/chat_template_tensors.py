"""``apply_chat_template(tokenize=True)`` returns a ``BatchEncoding`` in transformers 5.

Symptom: transformers 5 made ``apply_chat_template``'s ``return_dict`` default ``True``
(https://github.com/huggingface/transformers/pull/41626), so ``model.generate(tok.apply_chat_template(msgs,
add_generation_prompt=True, tokenize=True, return_tensors="pt"))`` no longer gets a tensor and raises
``AttributeError``. Code taking ``len()`` of the result counts its keys (2): so TRL's SFTTrainer built a
``completion_mask`` marking almost the whole sequence, prompt included, as completion. Variants (tiny Llama,
Zephyr-style chat template):
* ``generate_positional``: the 4.x idiom ``model.generate(apply_chat_template(..., tokenize=True,
  return_tensors="pt"))``; passes when 4 new tokens are generated.
* ``generate_dict``: the twin, ``model.generate(**apply_chat_template(..., return_dict=True, return_tensors="pt"))``.
* ``sft_completion_mask``: SFTTrainer on a conversational prompt/completion dataset; passes when every tokenized
  example's ``completion_mask`` (or its ``labels`` other than -100, where TRL writes it there) has ones and the tokens
  it marks decode to the completion only (no ``<|user|>`` turn, no prompt text); a TRL that makes neither column skips
  with the columns it made.
Emulation: setup gives the tiny generic fast tokenizer Llama's ``["input_ids", "attention_mask"]`` as
``model_input_names`` (on 4.x its default adds ``token_type_ids``, which Llama's ``generate`` refuses), and for the
generate variants drops the tiny template's ``{% generation %}`` markers (TinyLlama's own has none; transformers 4.39.3
cannot parse them); the rendered text is the same. Boundaries and upstream links:
docs/findings/chat_template_tensors.md.
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
        # The tiny template's {% generation %} markers (for assistant-mask cases; Zephyr's has none) break 4.39.3.
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
