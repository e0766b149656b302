"""QLoRA + bf16 SFTTrainer: model.generate() inside an evaluation callback raises a dtype error.

Symptom (field report shared/seeds/004_*.txt): a TRL/transformers run with ``bf16=True``, LoRA and a
4-bit base (Qwen3-1.7B, torch 2.8.0+cu128) calls ``model.generate()`` from an ``on_evaluate``
callback and every call raises ``RuntimeError: expected scalar type Float but found BFloat16``;
the same generate outside the trainer works. The report blames "the Trainer's bf16 autocast still
active in callbacks" and wraps generate in ``torch.amp.autocast('cuda', enabled=False)``.

Upstream: https://github.com/huggingface/peft/issues/1515 (QLoRA bf16 + generate in a
TrainerCallback of SFTTrainer: ``expected mat1 and mat2 to have the same dtype, but got: float !=
c10::BFloat16``), https://github.com/huggingface/trl/issues/1398 (the cause is TRL's
``peft_module_casting_to_bf16``; maintainer's advice: wrap generate in an *enabled* autocast), and
https://github.com/huggingface/transformers/pull/29974 (same; closed with "use
``torch.autocast(device_type='cuda', dtype=torch.bfloat16)`` around generate").

What really happens (measured, see the lead's report for the per-version table):
- The report's diagnosis is wrong. No autocast is active while callbacks run: accelerate wraps only
  the *prepared model's* ``forward`` in autocast (``model.forward = autocast(forward)`` on the
  PeftModel); ``PeftModel.generate`` calls the base model's own, unwrapped forward, so generate runs
  with autocast *off*. The cell records ``autocast_in_callback`` (always False here).
- The trigger is the mixed-dtype layout TRL's SFTTrainer gives a 4-bit model when ``bf16=True``
  (TRL <= 0.25: ``prepare_model_for_kbit_training`` upcasts the norms to fp32, then
  ``peft_module_casting_to_bf16`` leaves norms fp32 and puts embed_tokens/lm_head in bf16). Under
  the autocast of the wrapped forward (training, evaluation) that is fine; in generate without
  autocast the last fp32 norm feeds the bf16 ``lm_head`` and F.linear raises (on CPU: ``expected m1
  and m2 to have the same dtype, but got: float != c10::BFloat16``; on CUDA peft#1515 shows
  ``mat1 and mat2``; a bmm on mixed dtypes gives the report's ``expected scalar type Float but
  found BFloat16``). Disabling autocast around generate therefore cannot help (it was already
  off); enabling bf16 autocast does. TRL 0.26 replaced this with a bf16 cast of the trainable
  (LoRA) parameters only, which leaves a consistent model.
- TRL (<= 0.25) takes that branch only when the first ``Params4bit`` is NOT on cpu/meta: it treats
  4-bit weights on cpu/meta as "sharded QLoRA (FSDP / ZeRO-3)" and then skips both casts. On a
  CPU-only machine the 4-bit weights are on cpu, so the problem layout is never built and this
  case passes there for that reason; only CUDA runs reproduce the report. The cell records the
  layout it saw (``dtypes``) so the reason is visible per cell.

Setup follows the report as far as the device allows: tiny model, 4-bit nf4 with bf16 compute
(``require_4bit`` skips where this combo cannot run 4-bit here), ``dtype=bfloat16``, SFTTrainer
with a LoraConfig and ``bf16=True``, eval at the last step, callback generating from the model it
is handed. The callback records whether generate raised; the test re-raises that real exception.
"""

from __future__ import annotations

import contextlib
import inspect

from ftcompat.harness import record, setup, step

DEFAULT_MODELS = ["tiny-llama"]


def _autocast_enabled(device: str) -> bool:
    """Return whether torch autocast is on for ``device`` right now, on old and new torch."""
    import torch

    try:
        return bool(torch.is_autocast_enabled(device))
    except TypeError:  # torch < 2.4 takes no device argument
        return bool(torch.is_autocast_cpu_enabled() if device == "cpu" else torch.is_autocast_enabled())


def _layout(model) -> dict:
    """Return the dtype of the parameters whose mix decides the outcome (first layer's, lm_head...)."""
    picks = {}
    for name, param in model.named_parameters():
        for key in ("embed_tokens", "layers.0.input_layernorm", "model.norm", "lm_head",
                    "layers.0.self_attn.q_proj.lora_A"):
            if key in name and key not in picks:
                picks[key] = str(param.dtype).removeprefix("torch.")
    return picks


def _run(model_ref, device: str, tmp_path, wrap_generate) -> None:
    """Train two bf16 QLoRA steps with SFTTrainer, generate in on_evaluate, re-raise its error."""
    with setup("import and load 4-bit model"):
        import torch
        from datasets import Dataset
        from peft import LoraConfig
        from transformers import AutoModelForCausalLM, AutoTokenizer, PretrainedConfig, TrainerCallback
        from trl import SFTConfig, SFTTrainer

        from ftcompat.harness.quant import bnb_config, require_4bit

        require_4bit(model_ref.path)
        torch.manual_seed(0)
        tok = AutoTokenizer.from_pretrained(model_ref.path)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        load_kw = {
            "quantization_config": bnb_config(bnb_4bit_compute_dtype=torch.bfloat16),
            "device_map": {"": device},
        }
        # transformers 4.56 renamed torch_dtype to dtype (the config attribute too); from_pretrained
        # takes **kwargs, so ask the config which name this release reads.
        load_kw["dtype" if hasattr(PretrainedConfig(), "dtype") else "torch_dtype"] = torch.bfloat16
        model = AutoModelForCausalLM.from_pretrained(model_ref.path, **load_kw)

    seen: dict = {}

    class GenerateOnEvaluate(TrainerCallback):
        """What the report's PredictionsCallback does: generate a sample after each evaluation."""

        def on_evaluate(self, args, state, control, model=None, **kwargs):
            if "called" in seen:
                return
            seen["called"] = True
            seen["autocast_in_callback"] = _autocast_enabled(device)
            seen["dtypes"] = _layout(model)
            enc = tok("hello world", return_tensors="pt").to(device)
            try:
                with wrap_generate():
                    out = model.generate(
                        input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                        max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id,
                    )
                seen["new_tokens"] = int(out.shape[-1] - enc["input_ids"].shape[-1])
            except Exception as exc:  # noqa: BLE001 - kept and re-raised by the test
                seen["error"] = exc

    with setup("SFTTrainer(bf16=True, peft_config=LoraConfig)"):
        rows = [{"text": f"The number {i} follows {i - 1} and precedes {i + 1}."} for i in range(8)]
        ds = Dataset.from_list(rows)
        cfg_params = inspect.signature(SFTConfig).parameters
        cfg = dict(
            output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=2,
            per_device_eval_batch_size=2, eval_steps=2, learning_rate=1e-3, logging_steps=1,
            save_strategy="no", report_to=[], bf16=True, seed=0,
        )
        cfg["eval_strategy" if "eval_strategy" in cfg_params else "evaluation_strategy"] = "steps"
        cfg["max_length" if "max_length" in cfg_params else "max_seq_length"] = 32
        if "dataset_text_field" in cfg_params:
            cfg["dataset_text_field"] = "text"
        if device == "cpu" and "use_cpu" in cfg_params:
            cfg["use_cpu"] = True
        args = SFTConfig(**cfg)
        trainer_params = inspect.signature(SFTTrainer.__init__).parameters
        tok_kw = {"processing_class" if "processing_class" in trainer_params else "tokenizer": tok}
        trainer = SFTTrainer(
            model=model, args=args, train_dataset=ds, eval_dataset=ds,
            peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"),
            callbacks=[GenerateOnEvaluate()], **tok_kw,
        )

    with step("trainer.train (bf16 QLoRA, eval at step 2)"):
        trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    evals = [h["eval_loss"] for h in trainer.state.log_history if "eval_loss" in h]
    record(
        train_losses=losses, eval_losses=evals,
        autocast_in_callback=seen.get("autocast_in_callback"), dtypes=seen.get("dtypes"),
        generate_raised=("error" in seen) if seen.get("called") else None,
        generate_error=repr(seen["error"])[:300] if "error" in seen else None,
    )
    assert seen.get("called"), f"on_evaluate never ran (eval losses {evals}); nothing was generated"
    if "error" in seen:
        with step("model.generate in on_evaluate callback"):
            raise seen["error"]
    assert seen.get("new_tokens", 0) > 0, f"generate returned {seen.get('new_tokens')} new tokens"


def test_plain(model, device, tmp_path):
    """The callback calls model.generate() directly, as the report's code did before its fix."""
    _run(model, device, tmp_path, contextlib.nullcontext)


def test_autocast_off(model, device, tmp_path):
    """The report's workaround: generate inside torch.amp.autocast(<device>, enabled=False)."""
    # The report wrote autocast('cuda', enabled=False). We pass the device at hand ("cuda" on GPU, the
    # report's exact call; "cpu" on CPU, where a 'cuda' context would not even touch CPU autocast),
    # so the workaround gets its best chance to matter on either device.
    import torch

    _run(model, device, tmp_path, lambda: torch.amp.autocast(device, enabled=False))
