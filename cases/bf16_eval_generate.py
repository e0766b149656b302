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

What really happens (measured on CPU with torch 2.8.0 / 2.13.0, transformers 4.53-5.23, TRL
0.13-1.16; no GPU was available to this case's author, so the CUDA outcome below is read from TRL's
source and peft#1515, not run):
- The report's diagnosis is wrong. No autocast is active while callbacks run: accelerate wraps only
  the prepared model's ``forward`` in autocast (``model.forward = autocast(forward)`` on the
  PeftModel); ``PeftModel.generate`` goes to the base model's own, unwrapped forward, so generate
  runs with autocast off. Every cell records ``autocast_in_callback`` (False in every combo run).
- The trigger is the mixed-dtype layout TRL's SFTTrainer (<= 0.25.x) gives a 4-bit model when
  ``bf16=True``: ``prepare_model_for_kbit_training`` upcasts the norms to fp32, then
  ``peft_module_casting_to_bf16`` keeps norms fp32 and puts embed_tokens/lm_head in bf16. Training
  and evaluation run inside the wrapped forward's autocast and work; generate without autocast
  feeds the last fp32 norm output into the bf16 ``lm_head`` and F.linear raises (CPU: ``expected m1
  and m2 to have the same dtype, but got: float != c10::BFloat16``; CUDA in peft#1515: ``expected
  mat1 and mat2 ...``; the report's ``expected scalar type Float but found BFloat16`` is what
  torch says when the same fp32/bf16 pair meets in a bmm or 4-D matmul instead; which op the
  user's Qwen3 hit on CUDA is not known). Building exactly that layout with TRL's
  own helpers on CPU reproduces it with llama and qwen3, eager and sdpa, 4-bit or bf16: the plain
  call fails, ``autocast(enabled=False)`` fails identically (autocast was already off), and
  ``torch.autocast(device, dtype=torch.bfloat16)`` around generate succeeds. It is not autocast,
  not fp32 LoRA adapters on a bf16 base (peft casts the adapter input), not the 4-bit compute
  dtype (bitsandbytes casts and casts back). TRL 0.26.0 (https://github.com/huggingface/trl/pull/4577,
  "Clean up model preparation") dropped both casts and only casts the trainable LoRA parameters to
  bf16, which leaves a consistent model: fixed there.
- CPU versus CUDA: TRL <= 0.25 treats 4-bit weights that sit on cpu/meta as "sharded QLoRA
  (FSDP / ZeRO-3)" and then skips both casts (https://github.com/huggingface/trl/pull/1416); with
  bitsandbytes' CPU backend the weights are on cpu, so a plain CPU run never builds the layout and
  passes for the wrong reason. So, as in ``qlora_sft_trainable``, the trainer is built under
  ``ftcompat.harness.trlpath.GpuViewOfDeviceCheck``: on CPU only, and only while ``SFTTrainer(...)``
  is constructed, TRL's own device test sees what a CUDA tensor gives; nothing else is changed. The
  cell records which TRL function that touched (``device_check_patched``) and the layout it saw
  (``dtypes``: norms fp32 and embed/lm_head bf16 on TRL <= 0.25; all bf16 on TRL >= 0.26).
  Measured on CPU that way: ``plain`` and ``autocast_off`` fail with ``RuntimeError: expected m1
  and m2 to have the same dtype, but got: float != c10::BFloat16`` on TRL 0.22.2 and 0.25.1 and
  pass on 0.26+; ``autocast_bf16`` passes on all of them. 4-bit on CPU needs transformers >= 4.53
  with bitsandbytes >= 0.46; older combos skip through ``require_4bit``.

Variants: ``plain`` (the report's code before its fix), ``autocast_off`` (the report's workaround)
and ``autocast_bf16`` (the maintainers' advice in trl#1398: an enabled bf16 autocast).

Setup follows the report as far as the device allows: tiny model, 4-bit nf4 with bf16 compute
(``require_4bit`` skips where this combo cannot run 4-bit here), ``dtype=bfloat16``, SFTTrainer
with a LoraConfig and ``bf16=True``, eval at the last step, callback generating from the model it
is handed. The callback records whether generate raised; the test re-raises that real exception.
"""

from __future__ import annotations

import contextlib
import inspect

from ftcompat.harness import record, setup, step
from ftcompat.harness.trlpath import GpuViewOfDeviceCheck

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
    if "lm_head" not in picks:  # tied to embed_tokens (Qwen3-1.7B): named_parameters lists it once
        out = model.get_output_embeddings()
        if out is not None:
            picks["lm_head"] = str(out.weight.dtype).removeprefix("torch.")
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
        gpu_view = GpuViewOfDeviceCheck(device)
        gpu_view.prepare()
        with gpu_view:
            trainer = SFTTrainer(
                model=model, args=args, train_dataset=ds, eval_dataset=ds,
                peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"),
                callbacks=[GenerateOnEvaluate()], **tok_kw,
            )
        record(device_check_patched=gpu_view.patched)

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


def test_autocast_bf16(model, device, tmp_path):
    """The maintainers' advice (trl#1398): generate inside an enabled bf16 autocast."""
    import torch

    _run(model, device, tmp_path, lambda: torch.autocast(device, dtype=torch.bfloat16))
