"""DPOTrainer trains a tiny policy, and the DPO idioms that broke between TRL releases.

``DPOTrainer``'s constructor is the part of TRL that moved most: code written for one release fails on another at
``DPOTrainer(...)`` or ``DPOConfig(...)`` with ``TypeError: ... got an unexpected keyword argument`` (e.g.
https://github.com/huggingface/trl/issues/2853). Every variant trains the tiny policy two optimizer steps on CPU (four
prompt/chosen/rejected rows, batch 2) and passes only when ``train()`` ran both steps, the loss is finite, the policy's
parameters moved, and the trainer logged ``rewards/margins`` (recorded with ``logps/chosen`` and ``logps/rejected``).
* ``dpo_train``: the trainer trains; setup picks each argument's home by feature detection, so this passes on every TRL
  whose DPOTrainer works.
* ``trainer_tokenizer`` / ``processing_class``: ``DPOTrainer(tokenizer=tok)`` (renamed, then removed) and its twin.
* ``trainer_beta`` / ``config_beta``: ``DPOTrainer(beta=, max_length=, max_prompt_length=)`` (settings that moved into
  ``DPOConfig``) and its twin ``DPOConfig(beta=, max_length=)``.
* ``config_max_prompt_length``: ``DPOConfig(beta=, max_length=, max_prompt_length=)``, removed with the DPO rewrite
  (twin: ``config_beta``).
* ``ref_model_path`` / ``ref_model_object``: ``DPOTrainer(ref_model=<path string>)``, which the rewritten trainer no
  longer loads, and its twin, a loaded model.
Boundaries and upstream links: docs/findings/dpo_step.md.
"""

from ftcompat.harness import kit, record, setup, step

_ROWS = [
    {"prompt": "The cat sat on the", "chosen": " mat.", "rejected": " moon, loudly."},
    {"prompt": "One two three", "chosen": " four five.", "rejected": " banana."},
    {"prompt": "Red green", "chosen": " blue.", "rejected": " seven eight."},
    {"prompt": "A b c", "chosen": " d e f.", "rejected": " z z z."},
]
_BETA, _MAX_LENGTH, _MAX_PROMPT = 0.2, 64, 32  # beta 0.2, not the 0.1 default, so the record shows it was used


def _parts(model):
    """The tiny policy, its tokenizer and the preference dataset (setup, not an idiom)."""
    from datasets import Dataset

    policy, tok = kit.load(model)
    return policy, tok, Dataset.from_list(_ROWS)


def _args_kwargs(cls, device, tmp_path):
    """TrainingArguments-level settings for two small CPU steps, filtered to what ``cls`` takes."""
    kw = dict(output_dir=str(tmp_path), per_device_train_batch_size=2, gradient_accumulation_steps=1, max_steps=2,
              learning_rate=1e-3, logging_steps=1, save_strategy="no", report_to="none", seed=0, bf16=False,
              fp16=False, remove_unused_columns=False, gradient_checkpointing=False, dataloader_num_workers=0)
    return kit.supported(cls, {**kw, **kit.cpu_kwargs(cls, device)})


def _detected_args(device, tmp_path, move=("beta", "max_length", "max_prompt_length")):
    """The era's own way: a DPOConfig carrying ``move`` where it has those fields, else TrainingArguments.

    Returns (args, trainer_kwargs): what the config cannot hold goes to the trainer if it takes it, else
    is dropped (DPOConfig lost max_prompt_length in 0.29).
    """
    import dataclasses

    import trl

    values = {"beta": _BETA, "max_length": _MAX_LENGTH, "max_prompt_length": _MAX_PROMPT}
    values = {k: values[k] for k in move}
    cls = getattr(trl, "DPOConfig", None)
    if cls is None:
        from transformers import TrainingArguments as cls
    fields = {f.name for f in dataclasses.fields(cls)}
    in_cfg = {k: v for k, v in values.items() if k in fields}
    takes = kit.accepted(trl.DPOTrainer)
    to_trainer = {k: v for k, v in values.items() if k not in fields and k in takes}
    record(config_class=cls.__name__, in_config=sorted(in_cfg), to_trainer=sorted(to_trainer),
           dropped=sorted(set(values) - set(in_cfg) - set(to_trainer)))
    return cls(**_args_kwargs(cls, device, tmp_path), **in_cfg), to_trainer


def _tok_kwarg(tok):
    """``processing_class=`` where DPOTrainer takes it, else ``tokenizer=`` (feature detection)."""
    from trl import DPOTrainer

    return kit.tokenizer_kwarg(DPOTrainer, tok)


def _train_and_check(trainer, policy):
    import math

    run = kit.train(trainer, policy, "DPOTrainer.train()")
    margins = run.series("rewards/margins")
    record(**run.facts(), rewards_margins=margins, logps_chosen=run.series("logps/chosen"),
           logps_rejected=run.series("logps/rejected"), beta_used=getattr(trainer, "beta", None))
    run.assert_ran(2)
    assert margins, f"no rewards/margins in the logs (keys: {run.keys()})"
    assert all(math.isfinite(m) for m in margins), f"rewards/margins {margins} not finite"
    run.assert_moved(2)


def _ready(model, device, tmp_path, what, move=("beta", "max_length", "max_prompt_length")):
    """Setup ``what``: DPOTrainer, the policy, tokenizer, dataset, and the era's args and extras."""
    with setup(what):
        from trl import DPOTrainer

        policy, tok, ds = _parts(model)
        args, extra = _detected_args(device, tmp_path, move)
    return DPOTrainer, policy, tok, ds, args, extra


_ERA = "tiny policy, preference dataset, the era's DPOTrainer arguments"
_CONFIG = "tiny policy, preference dataset, DPO config"


def test_dpo_train(model, device, tmp_path):
    """The trainer trains: every argument where this TRL wants it (feature detection in setup)."""
    with setup(_ERA):
        from trl import DPOTrainer

        policy, tok, ds = _parts(model)
        args, extra = _detected_args(device, tmp_path)
        trainer = DPOTrainer(model=policy, args=args, train_dataset=ds, **_tok_kwarg(tok), **extra)
    _train_and_check(trainer, policy)


def test_trainer_tokenizer(model, device, tmp_path):
    """``DPOTrainer(tokenizer=tok)``, the pre-0.12 keyword (no detection for it)."""
    DPOTrainer, policy, tok, ds, args, extra = _ready(model, device, tmp_path, _CONFIG)
    with step("DPOTrainer(tokenizer=tok)"):
        trainer = DPOTrainer(model=policy, args=args, train_dataset=ds, tokenizer=tok, **extra)
    _train_and_check(trainer, policy)


def test_processing_class(model, device, tmp_path):
    """The twin: ``DPOTrainer(processing_class=tok)`` (no detection for it)."""
    DPOTrainer, policy, tok, ds, args, extra = _ready(model, device, tmp_path, _CONFIG)
    with step("DPOTrainer(processing_class=tok)"):
        trainer = DPOTrainer(model=policy, args=args, train_dataset=ds, processing_class=tok, **extra)
    _train_and_check(trainer, policy)


def test_trainer_beta(model, device, tmp_path):
    """``DPOTrainer(beta=, max_length=, max_prompt_length=)``: the settings passed to the trainer."""
    DPOTrainer, policy, tok, ds, args, _ = _ready(model, device, tmp_path,
                                                  "tiny policy, preference dataset, config without beta/lengths", ())
    with step("DPOTrainer(beta=0.2, max_length=64, max_prompt_length=32)"):
        trainer = DPOTrainer(model=policy, args=args, train_dataset=ds, beta=_BETA, max_length=_MAX_LENGTH,
                             max_prompt_length=_MAX_PROMPT, **_tok_kwarg(tok))
    _train_and_check(trainer, policy)


def _config_twin(model, device, tmp_path, what, **lengths):
    """Step ``what``: ``DPOConfig(beta=, max_length=, **lengths)``; then the trainer (setup) trains."""
    with setup("tiny policy, preference dataset"):
        from trl import DPOConfig, DPOTrainer

        policy, tok, ds = _parts(model)
    with step(what):
        args = DPOConfig(**_args_kwargs(DPOConfig, device, tmp_path), beta=_BETA, max_length=_MAX_LENGTH, **lengths)
    with setup("DPOTrainer(model, args, processing_class)"):
        trainer = DPOTrainer(model=policy, args=args, train_dataset=ds, **_tok_kwarg(tok))
    _train_and_check(trainer, policy)


def test_config_beta(model, device, tmp_path):
    """The twin: ``DPOConfig(beta=, max_length=)`` (no detection for it)."""
    _config_twin(model, device, tmp_path, "DPOConfig(beta=0.2, max_length=64)")


def test_config_max_prompt_length(model, device, tmp_path):
    """``DPOConfig(beta=, max_length=, max_prompt_length=)`` (no detection for it)."""
    _config_twin(model, device, tmp_path, "DPOConfig(beta=0.2, max_length=64, max_prompt_length=32)",
                 max_prompt_length=_MAX_PROMPT)


def test_ref_model_path(model, device, tmp_path):
    """``DPOTrainer(ref_model="<local path>")``: the reference model given by name."""
    DPOTrainer, policy, tok, ds, args, extra = _ready(model, device, tmp_path, _ERA)
    with step("DPOTrainer(ref_model=model.path)"):
        trainer = DPOTrainer(model=policy, ref_model=str(model.path), args=args, train_dataset=ds,
                             **_tok_kwarg(tok), **extra)
    _train_and_check(trainer, policy)


def test_ref_model_object(model, device, tmp_path):
    """The twin: ``DPOTrainer(ref_model=AutoModelForCausalLM.from_pretrained(path))``."""
    DPOTrainer, policy, tok, ds, args, extra = _ready(model, device, tmp_path, _ERA)
    with setup(_ERA):
        from transformers import AutoModelForCausalLM

        ref = AutoModelForCausalLM.from_pretrained(model.path)
    with step("DPOTrainer(ref_model=<loaded model>)"):
        trainer = DPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=ds, **_tok_kwarg(tok), **extra)
    _train_and_check(trainer, policy)
