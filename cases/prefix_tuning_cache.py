"""PEFT prefix tuning against transformers' layered cache classes: forward, generate and a training step.

transformers 4.56 removed ``Cache.key_cache`` / ``value_cache`` (deprecated for ``cache.layers``), and peft 0.17
still read them while building the prefix cache, so prefix tuning fails with
``AttributeError: 'DynamicCache' object has no attribute 'key_cache'``
(https://github.com/huggingface/peft/issues/2821; fix https://github.com/huggingface/peft/pull/2737). peft 0.16 fails
one step earlier on an encoder-decoder, on the removed ``_supports_cache_class``
(https://github.com/huggingface/peft/pull/2662). Each variant
wraps the tiny model (a decoder-only Llama and an encoder-decoder T5, task type chosen from the config in setup) in a
fresh peft model and runs one call on CPU:
* ``prefix_forward``: ``PrefixTuningConfig(num_virtual_tokens=4)``, a forward pass with labels;
* ``prefix_generate``: the same adapter, ``generate(max_new_tokens=4)`` greedy;
* ``prefix_train_step``: the same adapter, one AdamW step on the forward's loss;
* ``prefix_device_map_forward``: the forward pass on a base loaded with ``from_pretrained(device_map=device)``, as the
  issue's ``device_map="auto"`` loads it on one GPU (the model gets an ``hf_device_map``, and peft moves the prefix
  cache layer by layer: the only path by which a decoder-only model reaches the removed attribute);
* ``lora_forward``, ``lora_generate``, ``lora_train_step``, ``lora_device_map_forward``: the twins, the same calls with
  ``LoraConfig(r=4)`` (no prefix cache is built).
Pass: the loss is finite, generate returns 4 new tokens, the step moves every trainable tensor.
Boundaries: docs/findings/prefix_tuning_cache.md.
"""

from ftcompat.harness import kit, record, setup, step

_SOURCE, _TARGET = "the cat sat on the mat", "one two three"
_NEW = 4


def _peft_model(model, device, kind, device_map=False):
    """Return ``(peft model, tokenizer, batch, seq2seq)``: the tiny model wrapped with a ``kind`` adapter.

    With ``device_map`` the base model is loaded with ``from_pretrained(device_map=device)``, as
    ``device_map="auto"`` on one GPU loads it: the model then has an ``hf_device_map``.
    """
    with setup(f"tiny model{' (device_map=device)' if device_map else ''}, tokenizer and a {kind} adapter"):
        import torch
        from peft import LoraConfig, PrefixTuningConfig, TaskType, get_peft_model
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

        torch.manual_seed(0)
        seq2seq = bool(getattr(AutoConfig.from_pretrained(model.path), "is_encoder_decoder", False))
        auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
        base = (auto.from_pretrained(model.path, device_map=device) if device_map
                else auto.from_pretrained(model.path).to(device))
        tok = kit.tokenizer(model.path)
        task = TaskType.SEQ_2_SEQ_LM if seq2seq else TaskType.CAUSAL_LM
        config = (PrefixTuningConfig(task_type=task, num_virtual_tokens=4) if kind == "prefix"
                  else LoraConfig(task_type=task, r=4, lora_alpha=8, lora_dropout=0.0))
        peft_model = get_peft_model(base, config)
        enc = tok(_SOURCE, return_tensors="pt")
        labels = tok(_TARGET, return_tensors="pt")["input_ids"] if seq2seq else enc["input_ids"].clone()
        batch = {"input_ids": enc["input_ids"].to(device), "attention_mask": enc["attention_mask"].to(device),
                 "labels": labels.to(device)}
    record(seq2seq=seq2seq, adapter=type(config).__name__, trainable=sum(
        p.numel() for p in peft_model.parameters() if p.requires_grad),
        hf_device_map=str(getattr(base, "hf_device_map", None)))
    return peft_model, tok, batch, seq2seq


def _forward(peft_model, batch, kind):
    import math

    with step(f"{kind} PeftModel forward with labels"):
        loss = peft_model(**batch).loss
    record(loss=round(float(loss), 6))
    assert math.isfinite(float(loss)), f"loss {float(loss)} is not finite"
    return loss


def _generate(model, device, kind):
    peft_model, tok, batch, seq2seq = _peft_model(model, device, kind)
    peft_model.eval()
    with step(f"{kind} PeftModel.generate(max_new_tokens={_NEW})"):
        out = peft_model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                  max_new_tokens=_NEW, min_new_tokens=_NEW, do_sample=False,
                                  pad_token_id=tok.pad_token_id)
    # An encoder-decoder returns the decoder start token and the new ones; a decoder-only the prompt and the new ones.
    new = int(out.shape[1]) - (1 if seq2seq else int(batch["input_ids"].shape[1]))
    record(new_tokens=new)
    assert new == _NEW, f"{new} new tokens, not {_NEW}"


def _train_step(model, device, kind):
    import torch

    peft_model, _tok, batch, _seq2seq = _peft_model(model, device, kind)
    peft_model.train()
    before = kit.snapshot(peft_model)
    loss = _forward(peft_model, batch, kind)
    with step(f"{kind} loss.backward() and one AdamW step"):
        optim = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
        loss.backward()
        optim.step()
    still = kit.unchanged(before, peft_model)
    record(params_moved=f"{len(before) - len(still)}/{len(before)}")
    assert before and not still, f"{len(still)} of {len(before)} trainable tensors unchanged: {still[:3]}"


def test_prefix_forward(model, device):
    """Prefix tuning: a forward pass with labels gives a finite loss."""
    peft_model, _tok, batch, _seq2seq = _peft_model(model, device, "prefix")
    _forward(peft_model, batch, "prefix")


def test_prefix_generate(model, device):
    """Prefix tuning: greedy ``generate`` returns 4 new tokens."""
    _generate(model, device, "prefix")


def test_prefix_train_step(model, device):
    """Prefix tuning: one optimizer step moves the prefix encoder."""
    _train_step(model, device, "prefix")


def test_prefix_device_map_forward(model, device):
    """Prefix tuning on a model loaded with ``device_map=device`` (it has an ``hf_device_map``): a forward pass."""
    peft_model, _tok, batch, _seq2seq = _peft_model(model, device, "prefix", device_map=True)
    _forward(peft_model, batch, "prefix")


def test_lora_forward(model, device):
    """The twin: LoRA on the same model, a forward pass with labels."""
    peft_model, _tok, batch, _seq2seq = _peft_model(model, device, "lora")
    _forward(peft_model, batch, "lora")


def test_lora_device_map_forward(model, device):
    """The twin: LoRA on the model loaded with ``device_map=device``, a forward pass."""
    peft_model, _tok, batch, _seq2seq = _peft_model(model, device, "lora", device_map=True)
    _forward(peft_model, batch, "lora")


def test_lora_generate(model, device):
    """The twin: LoRA on the same model, greedy ``generate``."""
    _generate(model, device, "lora")


def test_lora_train_step(model, device):
    """The twin: LoRA on the same model, one optimizer step moves the LoRA tensors."""
    _train_step(model, device, "lora")
