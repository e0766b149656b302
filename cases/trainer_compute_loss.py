"""Trainer.compute_loss override: a subclass written before ``num_items_in_batch`` still trains.

Fine-tuning code often overrides ``Trainer.compute_loss(self, model, inputs, return_outputs=False)``. Since the Trainer
passes ``num_items_in_batch`` to it (the gradient-accumulation loss fix), such an override fails in ``training_step``
with ``TypeError: ... compute_loss() got an unexpected keyword argument 'num_items_in_batch'``
(https://github.com/huggingface/transformers/issues/36331): a lasting signature change, not a bug awaiting a fix; the
idiom that keeps working takes ``**kwargs``. Variants, each training the tiny model two optimizer steps on CPU with the
override in place:
* ``legacy_signature``: ``compute_loss(self, model, inputs, return_outputs=False)``; passes when ``Trainer.train()``
  runs and the override computed every step's loss.
* ``kwargs_signature``: the twin, with ``**kwargs``; passes on the same terms and records the keywords the Trainer
  passed.
Boundaries and upstream links: docs/findings/trainer_compute_loss.md.
"""

from ftcompat.harness import kit, record, setup, step

_TEXTS = ["the cat sat on the mat", "one two three four five", "red green blue red green", "a b c d e f"]


def _trainer_parts(model, device, tmp_path):
    """The tiny model, a tokenized dataset and TrainingArguments for two CPU steps (setup, not the idiom)."""
    from datasets import Dataset

    lm, tok, args, collator = kit.lm_training(model, device, tmp_path, per_device_train_batch_size=2, max_steps=2,
                                              report_to=[], logging_steps=1, save_strategy="no")
    ds = Dataset.from_list([{"text": t} for t in _TEXTS]).map(lambda r: tok(r["text"]), remove_columns=["text"])
    return lm, ds, args, collator


def _train(trainer_cls, model, device, tmp_path):
    with setup("tiny model, dataset, TrainingArguments"):
        lm, ds, args, collator = _trainer_parts(model, device, tmp_path)
        trainer = trainer_cls(model=lm, args=args, train_dataset=ds, data_collator=collator)
    with step("Trainer.train() with the compute_loss override"):
        trainer.train()
    record(calls=trainer.calls, kwargs_seen=sorted(trainer.kwargs_seen), optimizer_steps=trainer.state.global_step)
    assert trainer.state.global_step == 2, f"{trainer.state.global_step} optimizer steps, not 2"
    assert trainer.calls >= 2, f"the override computed {trainer.calls} losses in 2 steps"


def test_legacy_signature(model, device, tmp_path):
    """An override without **kwargs trains (the pre-4.46 idiom)."""
    with setup("from transformers import Trainer"):
        from transformers import Trainer

    class LegacyTrainer(Trainer):
        calls, kwargs_seen = 0, set()

        def compute_loss(self, model, inputs, return_outputs=False):
            type(self).calls += 1
            outputs = model(**inputs)
            return (outputs.loss, outputs) if return_outputs else outputs.loss

    _train(LegacyTrainer, model, device, tmp_path)


def test_kwargs_signature(model, device, tmp_path):
    """The twin: an override taking **kwargs trains, and says what the Trainer passed."""
    with setup("from transformers import Trainer"):
        from transformers import Trainer

    class KwargsTrainer(Trainer):
        calls, kwargs_seen = 0, set()

        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
            type(self).calls += 1
            type(self).kwargs_seen |= set(kwargs)
            outputs = model(**inputs)
            return (outputs.loss, outputs) if return_outputs else outputs.loss

    _train(KwargsTrainer, model, device, tmp_path)
