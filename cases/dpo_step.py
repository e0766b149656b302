"""DPOTrainer trains a tiny policy, and the DPO idioms that broke between TRL releases.

Preference tuning with ``trl.DPOTrainer`` is as common as SFT, and its constructor is the part of
TRL that moved most. Code written for one release fails on another at ``DPOTrainer(...)`` or
``DPOConfig(...)`` with ``TypeError: ... got an unexpected keyword argument``:

* ``DPOTrainer(beta=, max_length=, max_prompt_length=)``: the loss and length settings moved into
  ``DPOConfig`` and the trainer stopped taking them (users hit it as
  https://github.com/huggingface/trl/issues/2853 and https://github.com/RLHFlow/Online-RLHF/issues/32);
* ``DPOTrainer(tokenizer=)``: renamed ``processing_class`` (https://github.com/huggingface/trl/pull/2162),
  then removed (``got an unexpected keyword argument 'tokenizer'``; the reverse,
  https://github.com/huggingface/trl/issues/2226, hits code written for the new name on an old TRL);
* ``DPOConfig(max_prompt_length=)``: deprecated (https://github.com/huggingface/trl/pull/4969) and
  removed with the DPO rewrite, as https://github.com/huggingface/trl/pull/4847 did to GRPOConfig;
* ``DPOTrainer(ref_model="<path>")``: a reference model given by name, which the rewritten trainer
  no longer loads.

Every variant trains the tiny policy for two optimizer steps on CPU (four prompt/chosen/rejected
rows, batch 2) and passes only when ``train()`` ran both steps, the training loss is finite, the
policy's parameters moved, and the trainer logged the chosen/rejected margin (``rewards/margins``,
recorded with ``logps/chosen`` and ``logps/rejected``).

* ``dpo_train``: the trainer trains; setup picks each argument's home by feature detection, so this
  passes on every TRL whose DPOTrainer works.
* ``trainer_tokenizer`` / ``processing_class``: ``DPOTrainer(tokenizer=tok)`` and its twin.
* ``trainer_beta`` / ``config_beta``: ``DPOTrainer(beta=, max_length=, max_prompt_length=)`` and its
  twin ``DPOConfig(beta=, max_length=)``.
* ``config_max_prompt_length``: ``DPOConfig(beta=, max_length=, max_prompt_length=)`` (twin: ``config_beta``).
* ``ref_model_path`` / ``ref_model_object``: ``DPOTrainer(ref_model=<path string>)`` and its twin,
  a loaded model.

Boundaries, each run on both sides: docs/findings/dpo_step.md.
"""

from ftcompat.harness import record, setup, step

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
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model.path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    policy = AutoModelForCausalLM.from_pretrained(model.path)
    return policy, tok, Dataset.from_list(_ROWS)


def _args_kwargs(cls, device, tmp_path):
    """TrainingArguments-level settings for two small CPU steps, filtered to what ``cls`` takes."""
    import dataclasses
    import inspect

    names = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set(
        inspect.signature(cls.__init__).parameters)
    kw = dict(output_dir=str(tmp_path), per_device_train_batch_size=2, gradient_accumulation_steps=1, max_steps=2,
              learning_rate=1e-3, logging_steps=1, save_strategy="no", report_to="none", seed=0, bf16=False,
              fp16=False, remove_unused_columns=False, gradient_checkpointing=False, dataloader_num_workers=0)
    if device == "cpu":
        kw["use_cpu" if "use_cpu" in names else "no_cuda"] = True
    return {k: v for k, v in kw.items() if k in names}


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
    import inspect

    takes = inspect.signature(trl.DPOTrainer.__init__).parameters
    to_trainer = {k: v for k, v in values.items() if k not in fields and k in takes}
    record(config_class=cls.__name__, in_config=sorted(in_cfg), to_trainer=sorted(to_trainer),
           dropped=sorted(set(values) - set(in_cfg) - set(to_trainer)))
    return cls(**_args_kwargs(cls, device, tmp_path), **in_cfg), to_trainer


def _tok_kwarg(tok):
    """``processing_class=`` where DPOTrainer takes it, else ``tokenizer=`` (feature detection)."""
    import inspect

    from trl import DPOTrainer

    params = inspect.signature(DPOTrainer.__init__).parameters
    return {"processing_class": tok} if "processing_class" in params else {"tokenizer": tok}


def _train_and_check(trainer, policy):
    import math

    before = {n: p.detach().clone() for n, p in policy.named_parameters() if p.requires_grad}
    with step("DPOTrainer.train()"):
        out = trainer.train()
    logs = trainer.state.log_history

    def series(key):
        return [round(float(e[key]), 6) for e in logs if key in e]

    deltas = {n: (p.detach() - before[n]).abs().max().item() for n, p in policy.named_parameters() if n in before}
    moved = sum(d > 0 for d in deltas.values())
    margins = series("rewards/margins")
    record(optimizer_steps=trainer.state.global_step, training_loss=float(out.training_loss),
           loss=series("loss"), rewards_margins=margins, logps_chosen=series("logps/chosen"),
           logps_rejected=series("logps/rejected"), params_moved=f"{moved}/{len(deltas)}",
           max_param_delta=max(deltas.values(), default=0.0), beta_used=getattr(trainer, "beta", None))
    assert trainer.state.global_step == 2, f"{trainer.state.global_step} optimizer steps, not 2"
    assert math.isfinite(out.training_loss), f"training loss {out.training_loss} is not finite"
    assert margins, f"no rewards/margins in the logs (keys: {sorted({k for e in logs for k in e})})"
    assert all(math.isfinite(m) for m in margins), f"rewards/margins {margins} not finite"
    assert moved > 0, f"0 of {len(deltas)} trainable tensors moved in 2 steps"


def test_dpo_train(model, device, tmp_path):
    """The trainer trains: every argument where this TRL wants it (feature detection in setup)."""
    with setup("tiny policy, preference dataset, the era's DPOTrainer arguments"):
        from trl import DPOTrainer

        policy, tok, ds = _parts(model)
        args, extra = _detected_args(device, tmp_path)
        trainer = DPOTrainer(model=policy, args=args, train_dataset=ds, **_tok_kwarg(tok), **extra)
    _train_and_check(trainer, policy)


def test_trainer_tokenizer(model, device, tmp_path):
    """``DPOTrainer(tokenizer=tok)``, the pre-0.12 keyword (no detection for it)."""
    with setup("tiny policy, preference dataset, DPO config"):
        from trl import DPOTrainer

        policy, tok, ds = _parts(model)
        args, extra = _detected_args(device, tmp_path)
    with step("DPOTrainer(tokenizer=tok)"):
        trainer = DPOTrainer(model=policy, args=args, train_dataset=ds, tokenizer=tok, **extra)
    _train_and_check(trainer, policy)


def test_processing_class(model, device, tmp_path):
    """The twin: ``DPOTrainer(processing_class=tok)`` (no detection for it)."""
    with setup("tiny policy, preference dataset, DPO config"):
        from trl import DPOTrainer

        policy, tok, ds = _parts(model)
        args, extra = _detected_args(device, tmp_path)
    with step("DPOTrainer(processing_class=tok)"):
        trainer = DPOTrainer(model=policy, args=args, train_dataset=ds, processing_class=tok, **extra)
    _train_and_check(trainer, policy)


def test_trainer_beta(model, device, tmp_path):
    """``DPOTrainer(beta=, max_length=, max_prompt_length=)``: the settings passed to the trainer."""
    with setup("tiny policy, preference dataset, config without beta/lengths"):
        from trl import DPOTrainer

        policy, tok, ds = _parts(model)
        args, _ = _detected_args(device, tmp_path, move=())
    with step("DPOTrainer(beta=0.2, max_length=64, max_prompt_length=32)"):
        trainer = DPOTrainer(model=policy, args=args, train_dataset=ds, beta=_BETA, max_length=_MAX_LENGTH,
                             max_prompt_length=_MAX_PROMPT, **_tok_kwarg(tok))
    _train_and_check(trainer, policy)


def test_config_beta(model, device, tmp_path):
    """The twin: ``DPOConfig(beta=, max_length=)`` (no detection for it)."""
    with setup("tiny policy, preference dataset"):
        from trl import DPOConfig, DPOTrainer

        policy, tok, ds = _parts(model)
    with step("DPOConfig(beta=0.2, max_length=64)"):
        args = DPOConfig(**_args_kwargs(DPOConfig, device, tmp_path), beta=_BETA, max_length=_MAX_LENGTH)
    with setup("DPOTrainer(model, args, processing_class)"):
        trainer = DPOTrainer(model=policy, args=args, train_dataset=ds, **_tok_kwarg(tok))
    _train_and_check(trainer, policy)


def test_config_max_prompt_length(model, device, tmp_path):
    """``DPOConfig(beta=, max_length=, max_prompt_length=)`` (no detection for it)."""
    with setup("tiny policy, preference dataset"):
        from trl import DPOConfig, DPOTrainer

        policy, tok, ds = _parts(model)
    with step("DPOConfig(beta=0.2, max_length=64, max_prompt_length=32)"):
        args = DPOConfig(**_args_kwargs(DPOConfig, device, tmp_path), beta=_BETA, max_length=_MAX_LENGTH,
                         max_prompt_length=_MAX_PROMPT)
    with setup("DPOTrainer(model, args, processing_class)"):
        trainer = DPOTrainer(model=policy, args=args, train_dataset=ds, **_tok_kwarg(tok))
    _train_and_check(trainer, policy)


def test_ref_model_path(model, device, tmp_path):
    """``DPOTrainer(ref_model="<local path>")``: the reference model given by name."""
    with setup("tiny policy, preference dataset, the era's DPOTrainer arguments"):
        from trl import DPOTrainer

        policy, tok, ds = _parts(model)
        args, extra = _detected_args(device, tmp_path)
    with step("DPOTrainer(ref_model=model.path)"):
        trainer = DPOTrainer(model=policy, ref_model=str(model.path), args=args, train_dataset=ds,
                             **_tok_kwarg(tok), **extra)
    _train_and_check(trainer, policy)


def test_ref_model_object(model, device, tmp_path):
    """The twin: ``DPOTrainer(ref_model=AutoModelForCausalLM.from_pretrained(path))``."""
    with setup("tiny policy, preference dataset, the era's DPOTrainer arguments"):
        from transformers import AutoModelForCausalLM
        from trl import DPOTrainer

        policy, tok, ds = _parts(model)
        ref = AutoModelForCausalLM.from_pretrained(model.path)
        args, extra = _detected_args(device, tmp_path)
    with step("DPOTrainer(ref_model=<loaded model>)"):
        trainer = DPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=ds, **_tok_kwarg(tok), **extra)
    _train_and_check(trainer, policy)
