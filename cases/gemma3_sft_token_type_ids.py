"""Text-only SFT of a multimodal Gemma 3 stops at the first step: ``token_type_ids`` is required when training.

Symptom: fine-tuning a Gemma 3 4B+ checkpoint (``Gemma3ForConditionalGeneration``, text + vision) on a text-only
dataset with ``SFTTrainer`` and its default collator, as Google's QLoRA guide does, fails in the first forward
pass with ``ValueError: `token_type_ids` is required as a model input when training``
(https://github.com/huggingface/trl/issues/5032, https://github.com/huggingface/trl/issues/5807). The check sits in
transformers' Gemma 3 mask builder (``create_causal_mask_mapping``), which refuses a model in training mode whose
batch has no ``token_type_ids``; a text-only collator never makes them (TRL's, and a Gemma tokenizer does not return
them). The maintainers' answer: transformers#45454 removed the requirement
(https://github.com/huggingface/transformers/pull/45454). Other reports: https://github.com/unslothai/unsloth/pull/4017.
The model is ``tiny-gemma3``, a random Gemma 3 with a SigLIP vision tower (2 text layers, hidden 64; 1 vision layer),
loaded with ``AutoModelForImageTextToText``; its tokenizer is the tiny BPE with ``token_type_ids`` dropped from its
``model_input_names``, as Gemma's own tokenizer has them (set-up). Variants, each one ``SFTTrainer`` step on four
short texts (batch 2, plain ``text`` column, no packing, CPU):
* ``default_collator``: the idiom, ``SFTTrainer(model, args, train_dataset, processing_class=tokenizer)`` and
  ``train()`` with the collator TRL picks.
* ``collator_token_type_ids``: the twin, the workaround of the reports: the same trainer whose collator is wrapped
  to add ``token_type_ids`` of zeros (every token is text) to each batch.
A pass means ``train()`` took its one optimizer step with a finite loss and moved the trainable tensors; each cell
records the model class and the keys of a collated batch. Boundaries, exact error and cause:
docs/findings/gemma3_sft_token_type_ids.md.
"""

from ftcompat.harness import kit, record, setup
from ftcompat.harness.compat import sft_config, sft_trainer

_TEXTS = ["The quick brown fox jumps over the lazy dog.", "What is the capital of France? Paris.",
          "Numbers: 0 1 2 3 4 5 6 7 8 9.", "You are a helpful assistant that answers briefly."]


class _WithTokenTypeIds:
    """A collator that adds ``token_type_ids`` of zeros (text, not image) to what ``inner`` returns."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, features):
        import torch

        batch = self.inner(features)
        if "token_type_ids" not in batch:
            batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
        return batch


def _trainer(model, device, tmp_path):
    """Load tiny-gemma3 and build the text-only SFTTrainer (set-up: every variant gets the same one)."""
    with setup("load Gemma 3 (AutoModelForImageTextToText), tokenizer, dataset, SFTConfig"):
        import torch
        from datasets import Dataset
        from transformers import AutoModelForImageTextToText

        torch.manual_seed(0)
        lm = AutoModelForImageTextToText.from_pretrained(model.path)
        tok = kit.tokenizer(model.path)
        # Gemma's tokenizer returns input_ids and attention_mask only; the tiny BPE would add token_type_ids.
        tok.model_input_names = [n for n in tok.model_input_names if n != "token_type_ids"]
        args = sft_config(tmp_path / "out", device, max_length=64, max_steps=1, per_device_train_batch_size=2,
                          learning_rate=1e-3, logging_steps=1, report_to="none", save_strategy="no", seed=0,
                          dataloader_num_workers=0, optional={"packing": False, "dataset_text_field": "text"})
        record(model_class=type(lm).__name__, model_type=lm.config.model_type)
    with setup("SFTTrainer(model, args, train_dataset=text, processing_class=tokenizer)"):
        trainer = sft_trainer(lm, tok, args, Dataset.from_list([{"text": t} for t in _TEXTS]))
    return trainer, lm


def _batch_keys(trainer):
    with setup("trainer.get_train_dataloader: the keys of its first batch"):
        keys = sorted(next(iter(trainer.get_train_dataloader())))
    record(collator=type(trainer.data_collator).__name__, batch_keys=keys)


def _check(trainer, lm):
    run = kit.train(trainer, lm, "SFTTrainer.train(): one step")
    record(**run.facts())
    run.assert_ran(1)
    run.assert_moved(1)


def test_default_collator(model, device, tmp_path):
    """Text-only SFT with the collator TRL picks: the batch has no token_type_ids."""
    trainer, lm = _trainer(model, device, tmp_path)
    _batch_keys(trainer)
    _check(trainer, lm)


def test_collator_token_type_ids(model, device, tmp_path):
    """The same trainer with its collator wrapped to add token_type_ids of zeros (the reports' workaround)."""
    trainer, lm = _trainer(model, device, tmp_path)
    trainer.data_collator = _WithTokenTypeIds(trainer.data_collator)
    _batch_keys(trainer)
    _check(trainer, lm)
