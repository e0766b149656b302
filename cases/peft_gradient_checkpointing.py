"""LoRA + gradient checkpointing in ``Trainer``: do the adapters get gradients?

Symptom: a ``get_peft_model`` LoRA model trained with ``TrainingArguments(gradient_checkpointing=True)`` fails at the
first backward with ``RuntimeError: element 0 of tensors does not require grad and does not have a grad_fn``
(https://github.com/huggingface/transformers/issues/42489): with the base frozen, the embedding output does not require
grad, and *reentrant* checkpointing returns block outputs without a ``grad_fn``. Variants, each two optimizer steps of
``Trainer.train()`` on the tiny Llama with LoRA (q/v, r=8) and ``gradient_checkpointing=True``:
* ``trainer_default``: no ``gradient_checkpointing_kwargs`` (the issue's reproduction);
* ``trainer_reentrant``: ``gradient_checkpointing_kwargs={"use_reentrant": True}`` set explicitly;
* ``non_reentrant``: the twin, ``{"use_reentrant": False}``;
* ``input_require_grads``: the other twin, ``model.enable_input_require_grads()`` before the Trainer, with
  ``{"use_reentrant": True}``.
Pass: training runs, every logged grad norm is finite and > 0, and every LoRA tensor changed (the cell records the
layers' ``use_reentrant``). Boundaries and upstream links: docs/findings/peft_gradient_checkpointing.md.
"""

from __future__ import annotations

import math

from ftcompat.harness import kit, record, setup, step


def _parts(model_ref, device, tmp_path, gc_kwargs):
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, TrainingArguments

    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_pretrained(model_ref.path)
    peft_model = get_peft_model(
        lm, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    )
    data = torch.randint(3, 400, (4, 16), generator=torch.Generator().manual_seed(0)).tolist()
    dataset = Dataset.from_dict({"input_ids": data, "labels": data})
    extra = {} if gc_kwargs is None else {"gradient_checkpointing_kwargs": gc_kwargs}
    args = kit.training_args(TrainingArguments, tmp_path, device, gradient_checkpointing=True, max_steps=2,
                             per_device_train_batch_size=2, learning_rate=1e-3, logging_steps=1, report_to=[],
                             save_strategy="no", seed=0, **extra)
    return peft_model, dataset, args


def _train(model_ref, device, tmp_path, gc_kwargs, input_grads=False):
    from transformers import Trainer

    with setup("tiny model, LoRA, dataset, TrainingArguments(gradient_checkpointing=True)"):
        peft_model, dataset, args = _parts(model_ref, device, tmp_path, gc_kwargs)
    if input_grads:
        with step("model.enable_input_require_grads()"):
            peft_model.enable_input_require_grads()
    before = kit.snapshot(peft_model, lora=True)
    with setup("Trainer(...)"):
        trainer = Trainer(model=peft_model, args=args, train_dataset=dataset)
    with step("Trainer.train() with gradient checkpointing"):
        trainer.train()
    funcs = [getattr(m, "_gradient_checkpointing_func", None) for m in peft_model.modules()]
    keywords = next((dict(getattr(f, "keywords", {})) for f in funcs if f is not None), None)
    grad_norms = [float(h["grad_norm"]) for h in trainer.state.log_history if "grad_norm" in h]
    unchanged = kit.unchanged(before, peft_model)
    record(
        optimizer_steps=trainer.state.global_step, grad_norms=grad_norms, lora_tensors=len(before),
        lora_tensors_unchanged=len(unchanged), unchanged_examples=unchanged[:4],
        checkpoint_kwargs=keywords if keywords is None else {k: repr(v) for k, v in keywords.items()},
    )
    assert trainer.state.global_step == 2, f"{trainer.state.global_step} optimizer steps, not 2"
    assert before, "the PEFT model has no LoRA tensors"
    assert all(math.isfinite(g) and g > 0 for g in grad_norms), f"grad norms {grad_norms}"
    assert not unchanged, f"{len(unchanged)} of {len(before)} LoRA tensors unchanged after 2 steps: {unchanged[:2]}"


def test_trainer_default(model, device, tmp_path):
    """LoRA + gradient_checkpointing=True, no gradient_checkpointing_kwargs (the issue's reproduction)."""
    _train(model, device, tmp_path, None)


def test_trainer_reentrant(model, device, tmp_path):
    """LoRA + gradient_checkpointing_kwargs={'use_reentrant': True} set explicitly."""
    _train(model, device, tmp_path, {"use_reentrant": True})


def test_non_reentrant(model, device, tmp_path):
    """The twin: gradient_checkpointing_kwargs={'use_reentrant': False}."""
    _train(model, device, tmp_path, {"use_reentrant": False})


def test_input_require_grads(model, device, tmp_path):
    """The other twin: model.enable_input_require_grads(), reentrant checkpointing."""
    _train(model, device, tmp_path, {"use_reentrant": True}, input_grads=True)
