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


def _build(model, device, tmp_path, what, **over):
    """Setup, then step ``what``: GRPOConfig (two tiny CPU steps, fields this TRL has, plus ``over``) and trainer."""
    with setup("tiny policy, prompt dataset, GRPOTrainer import"):
        from trl import GRPOConfig, GRPOTrainer

        policy, tok, ds = _parts(model)
        kw = dict(output_dir=str(tmp_path), per_device_train_batch_size=2, gradient_accumulation_steps=1,
                  num_generations=2, max_completion_length=8, max_steps=2, learning_rate=1e-3, logging_steps=1,
                  save_strategy="no", report_to="none", seed=0, bf16=False, fp16=False, use_vllm=False,
                  gradient_checkpointing=False, dataloader_num_workers=0, temperature=1.0)
        kw = kit.supported(GRPOConfig, {**kw, **kit.cpu_kwargs(GRPOConfig, device)})
    with step(what):
        args = GRPOConfig(**{**kw, **over})
        trainer = GRPOTrainer(model=policy, reward_funcs=_reward, args=args, train_dataset=ds,
                              processing_class=tok)
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
