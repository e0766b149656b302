"""``tokenizer=`` became ``processing_class=`` on Trainer, SFTTrainer and DPOTrainer.

transformers 4.46 renamed ``Trainer(tokenizer=)`` to ``processing_class=`` and TRL 0.12 followed, so code written for
one side fails on the other with ``TypeError: ... got an unexpected keyword argument`` (e.g.
https://github.com/huggingface/trl/issues/2226); a TRL that passes ``processing_class=`` also fails inside its trainers
over an older transformers (a newer TRL installed with ``pip install --no-deps``, as notebook recipes do). Variants
build the trainer on the tiny model (no training) and pass only when it holds the tokenizer it was given; none detects
which keyword the release takes:
* ``trainer_processing_class``: ``Trainer(processing_class=tok)`` (``tokenizer=``: ``api_surface[trainer_tokenizer]``).
* ``sfttrainer_processing_class``: ``SFTTrainer(processing_class=tok)`` (``tokenizer=``:
  ``api_surface[sfttrainer_tokenizer]``).
* ``dpotrainer_tokenizer`` and ``dpotrainer_processing_class``: ``DPOTrainer(tokenizer=tok)`` and its twin, on a two-row
  preference dataset with a reference model.
Each TRL trainer's config (``SFTConfig``/``DPOConfig``, ``TrainingArguments`` on TRL 0.8.6, the length field's name) is
setup, by feature detection. Boundaries, exact errors and upstream links (--no-deps skews included):
docs/findings/processing_class.md.
"""

from ftcompat.harness import kit, record, setup, step

_TEXTS = ["the cat sat on the mat", "one two three four five", "red green blue red green"]
_PREFS = [
    {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."},
    {"prompt": "Two plus two is", "chosen": " four.", "rejected": " five."},
]


def _check_holds(trainer, tok, keyword):
    held = kit.held_tokenizer(trainer)
    record(held=type(held).__name__, has_processing_class=hasattr(trainer, "processing_class"))
    assert held is tok, f"the trainer holds {type(held).__name__}, not the tokenizer passed as {keyword}="


def test_trainer_processing_class(model, device, tmp_path):
    """transformers Trainer(processing_class=tok) is accepted and the trainer holds that tokenizer."""
    with setup("import Trainer, tiny model, TrainingArguments"):
        from transformers import Trainer, TrainingArguments

        lm, tok = kit.load(model)
        args = kit.training_args(TrainingArguments, tmp_path, device, report_to=[])
    with step("Trainer(processing_class=tok)"):
        trainer = Trainer(model=lm, args=args, processing_class=tok)
    _check_holds(trainer, tok, "processing_class")


def test_sfttrainer_processing_class(model, device, tmp_path):
    """SFTTrainer(processing_class=tok) is accepted and the trainer holds that tokenizer."""
    with setup("import trl, tiny model, dataset, SFTConfig"):
        from datasets import Dataset
        from transformers import TrainingArguments

        try:
            from trl import SFTConfig
        except ImportError:  # TRL 0.8.6 has no SFTConfig/DPOConfig
            SFTConfig = TrainingArguments
        from trl import SFTTrainer

        lm, tok = kit.load(model)
        names = kit.accepted(SFTConfig)
        cfg = kit.supported(SFTConfig, {"dataset_text_field": "text", "max_length": 32})
        if "max_length" not in names and "max_seq_length" in names:
            cfg["max_seq_length"] = 32
        args = kit.training_args(SFTConfig, tmp_path, device, report_to="none", max_steps=1, **cfg)
        ds = Dataset.from_list([{"text": t} for t in _TEXTS])
        extra = {} if "dataset_text_field" in names else {"dataset_text_field": "text", "max_seq_length": 32}
    with step("SFTTrainer(processing_class=tok)"):
        trainer = SFTTrainer(model=lm, args=args, train_dataset=ds, processing_class=tok, **extra)
    _check_holds(trainer, tok, "processing_class")


def _dpo(model, device, tmp_path, keyword):
    with setup("import trl, tiny model and reference, preference dataset, DPOConfig"):
        from datasets import Dataset
        from transformers import TrainingArguments

        try:
            from trl import DPOConfig
        except ImportError:  # TRL 0.8.6 has no SFTConfig/DPOConfig
            DPOConfig = TrainingArguments
        from trl import DPOTrainer

        lm, tok = kit.load(model)
        ref, _ = kit.load(model)
        names = kit.accepted(DPOConfig)
        lengths = {"max_length": 32, "max_prompt_length": 16}
        cfg = kit.supported(DPOConfig, lengths)
        # TRL 0.8.6 (no DPOConfig) takes the lengths as trainer kwargs; a DPOConfig lacking one (1.x) leaves it out.
        extra = {k: v for k, v in lengths.items() if k not in names} if DPOConfig is TrainingArguments else {}
        args = kit.training_args(DPOConfig, tmp_path, device, report_to="none", max_steps=1,
                                 remove_unused_columns=False, per_device_train_batch_size=2, **cfg)
        ds = Dataset.from_list(_PREFS)
    with step(f"DPOTrainer({keyword}=tok)"):
        trainer = DPOTrainer(model=lm, ref_model=ref, args=args, train_dataset=ds, **{keyword: tok}, **extra)
    _check_holds(trainer, tok, keyword)


def test_dpotrainer_tokenizer(model, device, tmp_path):
    """DPOTrainer(tokenizer=tok) is accepted and the trainer holds that tokenizer."""
    _dpo(model, device, tmp_path, "tokenizer")


def test_dpotrainer_processing_class(model, device, tmp_path):
    """The twin: DPOTrainer(processing_class=tok) is accepted and the trainer holds that tokenizer."""
    _dpo(model, device, tmp_path, "processing_class")
