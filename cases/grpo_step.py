"""GRPOTrainer trains a tiny policy with a reward function, and the GRPO idioms that broke between TRL releases.

``trl.GRPOTrainer`` (TRL >= 0.14) samples ``num_generations`` completions per prompt, scores them with reward functions
and takes a policy gradient step. Code written for one release fails on another: ``GRPOConfig`` lost
``max_prompt_length=`` (https://github.com/huggingface/trl/pull/4847), and what the batch size counts and which product
``num_generations`` must divide changed. Every variant trains the tiny policy two optimizer steps on CPU (four short
prompts, ``num_generations=2``, ``max_completion_length=8``, no vLLM) with a reward function written here, and passes
only when ``train()`` ran both steps, the loss is finite, the reward was logged and the policy's parameters moved. Where
``from trl import GRPOTrainer`` fails (TRL < 0.14 has none; 0.28.0 to 1.14.1 import the undeclared ``requests``, absent
beside transformers 5) every cell is an ``error`` at setup saying so, never a pass.
* ``grpo_train``: the twin, the trainer trains (batch 2 = one group of 2; setup leaves out what a release lacks).
* ``config_max_prompt_length``: ``GRPOConfig(max_prompt_length=32)`` (no detection for it).
* ``batch1_accum2``: ``per_device_train_batch_size=1, gradient_accumulation_steps=2, num_generations=2`` (no detection).
* ``sampler_override_no_arg``: a ``GRPOTrainer`` subclass overriding ``_get_train_sampler(self)`` and calling
  ``super()``, as Trainer subclasses wrote it before transformers 4.52 began passing the dataset
  (https://github.com/huggingface/transformers/pull/38226); it must be called at least once.
* ``sampler_override_passthrough``: the twin, ``_get_train_sampler(self, *args, **kwargs)`` handing them on.
* ``eval_on_start``: ``eval_dataset`` with ``eval_strategy="steps", eval_steps=1, eval_on_start=True`` and
  ``loss_type="grpo"`` (set-up: left out where TRL lacks it); an ``eval_loss`` must be logged at step 0
  (https://github.com/huggingface/trl/issues/4010, fixed by https://github.com/huggingface/trl/pull/4852).
* ``eval_after_step``: the twin, the same evaluation without ``eval_on_start`` (first after step 1).
  Both are an ``error`` at setup where GRPOTrainer has no ``prediction_step`` of its own (TRL 0.14 cannot evaluate).
Where TRL's own ``_get_train_sampler(self)`` meets a transformers that passes the dataset (TRL 0.15-0.16 with
transformers >= 4.52) every variant fails in ``train()``: the stack, not the idiom.
Boundaries, exact errors and upstream links: docs/findings/grpo_step.md.
"""

from ftcompat.harness import kit, record, setup, step

_PROMPTS = ["The cat sat on the", "One two three", "Red green blue", "Once upon a time"]


def _reward(completions, **kwargs):
    """A deterministic pseudo-reward in [0, 1): the CRC-32 of the completion's text.

    Meaningless, but different completions get different rewards, so no group's advantage is zero by a tie.
    """
    import zlib

    texts = [c if isinstance(c, str) else str(c) for c in completions]
    return [(zlib.crc32(t.encode()) % 1000) / 1000.0 for t in texts]


def _parts(model):
    """The tiny policy, a left-padding tokenizer and the prompt dataset (setup, not an idiom)."""
    from datasets import Dataset

    policy, tok = kit.load(model, padding_side="left")
    # The tiny model's generic tokenizer also returns token_type_ids; a real Llama tokenizer does not,
    # and TRL 0.14 hands every tokenizer output to generate(), which rejects them (findings page).
    tok.model_input_names = [n for n in tok.model_input_names if n != "token_type_ids"]
    return policy, tok, Dataset.from_list([{"prompt": p} for p in _PROMPTS])


def _build(model, device, tmp_path, what, subclass=None, eval_set=False, base=None, **over):
    """Setup, then step ``what``: GRPOConfig (two tiny CPU steps, fields this TRL has, plus ``over``) and trainer.

    ``base`` adds set-up fields (left out where this TRL lacks them), ``subclass(GRPOTrainer)`` returns the trainer
    class to build, and ``eval_set`` passes the prompts as ``eval_dataset`` too.
    """
    with setup("tiny policy, prompt dataset, GRPOTrainer import"):
        from trl import GRPOConfig, GRPOTrainer

        cls = subclass(GRPOTrainer) if subclass else GRPOTrainer
        if eval_set:
            from transformers import Trainer

            if GRPOTrainer.prediction_step is Trainer.prediction_step:
                raise RuntimeError("this GRPOTrainer has no prediction_step of its own, so it cannot evaluate: "
                                   "Trainer's expects a dict batch, GRPO's is a list of prompts")

        policy, tok, ds = _parts(model)
        kw = dict(output_dir=str(tmp_path), per_device_train_batch_size=2, gradient_accumulation_steps=1,
                  num_generations=2, max_completion_length=8, max_steps=2, learning_rate=1e-3, logging_steps=1,
                  save_strategy="no", report_to="none", seed=0, bf16=False, fp16=False, use_vllm=False,
                  gradient_checkpointing=False, dataloader_num_workers=0, temperature=1.0)
        kw = kit.supported(GRPOConfig, {**kw, **(base or {}), **kit.cpu_kwargs(GRPOConfig, device)})
    with step(what):
        args = GRPOConfig(**{**kw, **over})
        trainer = cls(model=policy, reward_funcs=_reward, args=args, train_dataset=ds, processing_class=tok,
                      **({"eval_dataset": ds} if eval_set else {}))
    return trainer, policy


def _train_and_check(trainer, policy):
    run = kit.train(trainer, policy, "GRPOTrainer.train()")
    rewards = run.series("reward")
    a = trainer.args
    record(**run.facts(), reward=rewards, reward_std=run.series("reward_std"), grad_norm=run.series("grad_norm"),
           completion_length=run.series("completion_length") or run.series("completions/mean_length"),
           per_device_train_batch_size=a.per_device_train_batch_size,
           gradient_accumulation_steps=a.gradient_accumulation_steps, num_generations=a.num_generations,
           generation_batch_size=getattr(a, "generation_batch_size", None))
    run.assert_ran(2)
    assert rewards, f"no reward in the logs (keys: {run.keys()})"
    run.assert_moved(2)


def test_grpo_train(model, device, tmp_path):
    """The trainer trains: batch 2 holding one group of 2 completions, nothing a release lacks."""
    trainer, policy = _build(model, device, tmp_path, "GRPOConfig(...) and GRPOTrainer(model, reward_funcs=fn)")
    _train_and_check(trainer, policy)


def test_config_max_prompt_length(model, device, tmp_path):
    """``GRPOConfig(max_prompt_length=32)``, as GRPO scripts before TRL 0.28 wrote it."""
    trainer, policy = _build(model, device, tmp_path, "GRPOConfig(max_prompt_length=32)", max_prompt_length=32)
    _train_and_check(trainer, policy)


def test_batch1_accum2(model, device, tmp_path):
    """``per_device_train_batch_size=1, gradient_accumulation_steps=2, num_generations=2``."""
    trainer, policy = _build(model, device, tmp_path,
                             "GRPOConfig(per_device_train_batch_size=1, gradient_accumulation_steps=2, "
                             "num_generations=2) and GRPOTrainer",
                             per_device_train_batch_size=1, gradient_accumulation_steps=2)
    _train_and_check(trainer, policy)


def _sampler_no_arg(base):
    """A subclass overriding ``_get_train_sampler(self)``, as Trainer subclasses wrote it before transformers 4.52."""

    class NoArgSampler(base):
        def _get_train_sampler(self):
            self.sampler_calls = getattr(self, "sampler_calls", 0) + 1
            return super()._get_train_sampler()

    return NoArgSampler


def _sampler_passthrough(base):
    """The twin: the override takes whatever the caller passes (the dataset, or nothing) and hands it on."""

    class PassthroughSampler(base):
        def _get_train_sampler(self, *args, **kwargs):
            self.sampler_calls = getattr(self, "sampler_calls", 0) + 1
            return super()._get_train_sampler(*args, **kwargs)

    return PassthroughSampler


def _train_with_override(trainer, policy):
    _train_and_check(trainer, policy)
    calls = getattr(trainer, "sampler_calls", 0)
    record(sampler_calls=calls)
    assert calls >= 1, "train() never called the subclass's _get_train_sampler, so the override was not exercised"


def test_sampler_override_no_arg(model, device, tmp_path):
    """A GRPOTrainer subclass with ``def _get_train_sampler(self)`` that calls ``super()._get_train_sampler()``."""
    trainer, policy = _build(model, device, tmp_path, "GRPOTrainer subclass overriding _get_train_sampler(self)",
                             subclass=_sampler_no_arg)
    _train_with_override(trainer, policy)


def test_sampler_override_passthrough(model, device, tmp_path):
    """The twin: ``def _get_train_sampler(self, *args, **kwargs)`` handing its arguments to ``super()``."""
    trainer, policy = _build(model, device, tmp_path,
                             "GRPOTrainer subclass overriding _get_train_sampler(self, *args, **kwargs)",
                             subclass=_sampler_passthrough)
    _train_with_override(trainer, policy)


# The loss the reports ran: TRL 0.22 - 0.27 divide it by current_gradient_accumulation_steps (as "bnpo" and "dr_grpo";
# their default "dapo" does not). Set-up, so a TRL without ``loss_type`` (< 0.16) runs its only loss.
_LOSS_GRPO = {"loss_type": "grpo"}


def _train_and_eval(trainer, policy):
    """Train, then return the (step, eval_loss) pairs the trainer logged, asserting each loss is finite."""
    import math

    _train_and_check(trainer, policy)
    evals = [(e.get("step"), round(float(e["eval_loss"]), 6)) for e in trainer.state.log_history if "eval_loss" in e]
    record(eval_steps=[s for s, _ in evals], eval_loss=[v for _, v in evals])
    assert all(math.isfinite(v) for _, v in evals), f"eval loss not finite: {evals}"
    return [s for s, _ in evals]


def test_eval_on_start(model, device, tmp_path):
    """``eval_dataset``, ``eval_strategy="steps", eval_steps=1, eval_on_start=True``: an evaluation before step 1."""
    trainer, policy = _build(model, device, tmp_path,
                             "GRPOConfig(eval_strategy='steps', eval_steps=1, eval_on_start=True) and GRPOTrainer("
                             "eval_dataset=...)", eval_set=True, base=_LOSS_GRPO, eval_strategy="steps",
                             eval_steps=1, eval_on_start=True)
    steps = _train_and_eval(trainer, policy)
    assert 0 in steps, f"no evaluation logged at step 0 (evaluations at steps {steps})"


def test_eval_after_step(model, device, tmp_path):
    """The twin: the same evaluation every step without ``eval_on_start``, so the first one follows step 1."""
    trainer, policy = _build(model, device, tmp_path,
                             "GRPOConfig(eval_strategy='steps', eval_steps=1) and GRPOTrainer(eval_dataset=...)",
                             eval_set=True, base=_LOSS_GRPO, eval_strategy="steps", eval_steps=1)
    steps = _train_and_eval(trainer, policy)
    assert 1 in steps, f"no evaluation logged after step 1 (evaluations at steps {steps})"
