"""API surface: idioms in user fine-tuning code that break across releases, one variant each.

Each variant runs exactly one idiom with no feature detection for it (the idiom is the test: no
``ftcompat.harness.compat``, which renames; from ``ftcompat.harness.kit`` only setup that leaves the idiom as written)
and fails with the real exception where the combo no longer accepts it; all else goes in ``setup(...)``. Config and
import variants take no model; Trainer/SFTTrainer ones use the tiny model in fp32. Each passes only if the value it
passes really lands:
* ``sftconfig_max_seq_length``: ``SFTConfig(max_seq_length=77)`` and 77 reaches the config.
* ``sfttrainer_tokenizer`` / ``trainer_tokenizer``: ``SFTTrainer(tokenizer=tok)`` / ``Trainer(tokenizer=tok)`` and the
  trainer holds it.
* ``trainingarguments_evaluation_strategy``: ``TrainingArguments(evaluation_strategy="steps")``.
* ``import_datacollatorforcompletiononlylm``: ``from trl import DataCollatorForCompletionOnlyLM``.
* ``import_peft``: ``import peft`` beside this combo's transformers.
* ``trainer_train_one_step``: ``Trainer(...)`` and a one-step ``Trainer.train()`` with this combo's accelerate.
Boundaries, why they moved, and upstream links (e.g. https://github.com/huggingface/trl/pull/3704):
docs/findings/api_surface.md.
"""

from ftcompat.harness import kit, record, setup, step

# The idioms are imports and calls across these four: one of them failing to import beside another is a verdict here.
SUBJECT = ("accelerate", "peft", "transformers", "trl")

_TEXTS = ["the cat sat on the mat", "one two three four five", "red green blue red green"]


def test_sftconfig_max_seq_length(device, tmp_path):
    """SFTConfig(max_seq_length=77) is accepted and 77 reaches the config."""
    with setup("import trl, CPU options"):
        from trl import SFTConfig

        cpu = kit.cpu_kwargs(SFTConfig, device)  # TRL 0.19 defaults bf16=True, which CPU refuses
    with step("SFTConfig(max_seq_length=77)"):
        cfg = SFTConfig(output_dir=str(tmp_path), max_seq_length=77, report_to="none", **cpu)
    seen = {k: getattr(cfg, k, None) for k in ("max_seq_length", "max_length")}
    record(**{f"config_{k}": v for k, v in seen.items()})
    assert 77 in seen.values(), f"max_seq_length=77 not honoured: {seen}"


def test_sfttrainer_tokenizer(model, device, tmp_path):
    """SFTTrainer(tokenizer=tok) is accepted and the trainer holds that tokenizer."""
    from datasets import Dataset

    with setup("import trl, tiny model, dataset, SFTConfig"):
        from trl import SFTConfig, SFTTrainer

        lm, tok = kit.load(model)
        params = kit.accepted(SFTConfig)
        extra = {"max_length" if "max_length" in params else "max_seq_length": 32}
        extra.update(kit.supported(SFTConfig, {"dataset_text_field": "text"}))
        args = kit.training_args(SFTConfig, tmp_path, device, report_to="none", max_steps=1, **extra)
        ds = Dataset.from_list([{"text": t} for t in _TEXTS])
    with step("SFTTrainer(tokenizer=tok)"):
        trainer = SFTTrainer(model=lm, args=args, train_dataset=ds, tokenizer=tok)
    held = kit.held_tokenizer(trainer)
    record(held_tokenizer=type(held).__name__)
    assert held is tok, f"trainer holds {type(held).__name__}, not the tokenizer passed as tokenizer="


def test_trainingarguments_evaluation_strategy(tmp_path):
    """TrainingArguments(evaluation_strategy="steps") is accepted and sets the eval strategy."""
    with setup("import transformers"):
        from transformers import TrainingArguments
    with step('TrainingArguments(evaluation_strategy="steps")'):
        args = TrainingArguments(output_dir=str(tmp_path), evaluation_strategy="steps", eval_steps=5, report_to=[])
    got = getattr(args, "eval_strategy", None) or getattr(args, "evaluation_strategy", None)
    got = getattr(got, "value", got)
    record(eval_strategy=str(got))
    assert got == "steps", f"eval strategy is {got!r}, not 'steps'"


def test_trainer_tokenizer(model, device, tmp_path):
    """transformers Trainer(tokenizer=tok) is accepted and the trainer holds that tokenizer."""
    with setup("import Trainer, tiny model, TrainingArguments"):
        from transformers import Trainer, TrainingArguments

        lm, tok = kit.load(model)
        args = kit.training_args(TrainingArguments, tmp_path, device, report_to=[])
    with step("Trainer(tokenizer=tok)"):
        trainer = Trainer(model=lm, args=args, tokenizer=tok)
    held = kit.held_tokenizer(trainer)
    record(held_tokenizer=type(held).__name__)
    assert held is tok, f"trainer holds {type(held).__name__}, not the tokenizer passed as tokenizer="


def test_import_datacollatorforcompletiononlylm():
    """from trl import DataCollatorForCompletionOnlyLM."""
    with step("from trl import DataCollatorForCompletionOnlyLM"):
        from trl import DataCollatorForCompletionOnlyLM
    record(defined_in=DataCollatorForCompletionOnlyLM.__module__)


def test_import_peft():
    """import peft next to this combo's transformers."""
    import transformers

    with step("import peft"):
        import peft
    record(peft_version=peft.__version__, transformers_version=transformers.__version__)


def test_trainer_train_one_step(model, device, tmp_path):
    """Trainer(...).train() for one optimizer step with this combo's accelerate."""
    import math

    import accelerate
    import torch
    from datasets import Dataset

    with setup("import Trainer, tiny model, tokenized dataset, TrainingArguments"):
        from transformers import Trainer, TrainingArguments

        torch.manual_seed(0)
        lm, tok = kit.load(model)
        enc = tok(_TEXTS, padding="max_length", max_length=16, truncation=True)
        pairs = zip(enc["input_ids"], enc["attention_mask"], strict=True)
        ds = Dataset.from_list([{"input_ids": i, "attention_mask": a, "labels": i} for i, a in pairs])
        args = kit.training_args(TrainingArguments, tmp_path, device, max_steps=1, per_device_train_batch_size=3,
                                 logging_steps=1, save_strategy="no", report_to=[], seed=0)
    record(accelerate_version=accelerate.__version__)
    with step("Trainer(model, args, train_dataset)"):
        trainer = Trainer(model=lm, args=args, train_dataset=ds)
    with step("Trainer.train"):
        out = trainer.train()
    record(global_step=trainer.state.global_step, train_loss=float(out.training_loss))
    assert trainer.state.global_step == 1, f"ran {trainer.state.global_step} steps, expected 1"
    assert math.isfinite(out.training_loss), f"training loss {out.training_loss} not finite"
