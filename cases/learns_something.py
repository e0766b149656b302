"""QLoRA SFT learns something: the training loss falls and the gradients are non-zero.

User symptom (field report shared/seeds/001_*.txt): "validation loss stays exactly flat
(3.289622 -> 3.289622)" after QLoRA SFT with TRL: the model learns nothing. Upstream:
https://github.com/huggingface/trl/issues/3926 (trainable params 0 when a prepared PeftModel is
passed without ``peft_config``; that legacy pattern is checked in cases/qlora_sft_trainable.py).
This case checks the end-to-end outcome of the *recommended* pattern instead: does QLoRA SFT
actually learn, in this combo?

``test_recommended``: a tiny model loaded in real bitsandbytes nf4 (skipped via ``require_4bit``
where this combo cannot run 4-bit here), ``SFTTrainer(model=base, peft_config=LoraConfig(all-linear
r=8))`` on a tiny repetitive dataset (three sentences, each repeated 16 times), seed 0,
``max_steps=STEPS`` (24), batch 8, learning rate 5e-3, constant schedule, loss logged every step.
Pass criterion (stated margin): the mean training loss of the first K=4 logged steps minus the
mean of the last K=4 is at least ``MIN_DROP`` = 0.3 nats; every logged ``grad_norm`` is finite and
the largest is > 0. Losses, grad norms and the drop are recorded.

Calibration (CPU, outside the case, tiny-llama): every ready combo with CPU 4-bit (TRL 0.19 - 1.16)
drops about 0.80 nats (about 6.10 -> 5.05 over the 24 steps; TRL 1.16 about 0.84 from 6.2). The same
run with the adapters effectively frozen (learning rate 0: literally setting ``requires_grad=False``
on every LoRA tensor leaves the optimizer an empty parameter list, which raises instead) drops
0.0016, so 0.3 sits far from both. The loss cannot fall much further: the base (lm_head, norms,
embeddings) is a frozen random init whose small lm_head bounds the logits, so LoRA alone stays near
5 nats; that is why the margin is in nats and not a ratio. Grad norms are > 0 even at learning
rate 0 (gradients are still computed), so the loss margin is what separates "learns" from "flat";
the grad-norm check catches the other failure, no gradient reaching the adapters at all.

The trainer is built inside ``ftcompat.harness.trlpath.GpuViewOfDeviceCheck`` like
cases/qlora_sft_trainable.py: on CPU, TRL <= 0.25 would otherwise treat the 4-bit weights (which
sit on cpu) as "sharded QLoRA" and skip the kbit preparation a GPU user gets; the patched
functions are recorded as ``device_check_patched``. The non-quantized weights are loaded in the
bnb compute dtype (fp32 on CPU, bf16 on CUDA) as QLoRA recipes do.
"""

from ftcompat.harness import record, setup, step
from ftcompat.harness.quant import load_4bit
from ftcompat.harness.trlpath import GpuViewOfDeviceCheck

DEFAULT_MODELS = ["tiny-llama"]

STEPS = 24
K = 4  # steps averaged at each end
MIN_DROP = 0.3  # mean(first K losses) - mean(last K losses) must be at least this many nats

_TEXTS = [
    "hello hello hello hello hello hello hello hello",
    "abc abc abc abc abc abc abc abc abc abc abc abc",
    "one two one two one two one two one two one two",
]


def _sft_config(tmp_path, device, learning_rate):
    """SFTConfig with whichever argument names this TRL/transformers accepts."""
    import inspect

    from trl import SFTConfig

    params = inspect.signature(SFTConfig.__init__).parameters
    kwargs = dict(
        output_dir=str(tmp_path / "out"),
        max_steps=STEPS,
        per_device_train_batch_size=8,
        learning_rate=learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=0,
        gradient_checkpointing=False,
        bf16=device == "cuda",
        fp16=False,
        dataloader_num_workers=0,
    )
    length_kw = "max_length" if "max_length" in params else "max_seq_length"
    kwargs[length_kw] = 32
    for name, value in (("dataset_text_field", "text"), ("packing", False)):
        if name in params:
            kwargs[name] = value
    if device == "cpu":
        kwargs["use_cpu" if "use_cpu" in params else "no_cuda"] = True
    return SFTConfig(**kwargs)


def _sft_trainer(base, tokenizer, args, dataset):
    import inspect

    from peft import LoraConfig
    from trl import SFTTrainer

    params = inspect.signature(SFTTrainer.__init__).parameters
    tok_kw = "processing_class" if "processing_class" in params else "tokenizer"
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    return SFTTrainer(model=base, args=args, train_dataset=dataset, peft_config=lora, **{tok_kw: tokenizer})


def run_sft(model, device, tmp_path, learning_rate=5e-3):
    """Build and train; return (losses, grad_norms). Also used outside the case to calibrate."""
    import torch
    from datasets import Dataset

    with setup("load 4-bit model, dataset, SFTConfig"):
        torch.manual_seed(0)
        base, tokenizer = load_4bit(model.path, device)
        dataset = Dataset.from_list([{"text": t} for t in _TEXTS for _ in range(16)])
        args = _sft_config(tmp_path, device, learning_rate)
    gpu_view = GpuViewOfDeviceCheck(device)
    with setup("find TRL's 4-bit device check"):
        gpu_view.prepare()
    record(device_check_patched=gpu_view.patched)
    with gpu_view, step("SFTTrainer(model=base, peft_config=LoraConfig)"):
        trainer = _sft_trainer(base, tokenizer, args, dataset)
    with step("SFTTrainer.train"):
        trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    losses = [round(float(h["loss"]), 5) for h in logs]
    grad_norms = [float(h["grad_norm"]) for h in logs if "grad_norm" in h]
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    record(losses=losses, grad_norms=[round(g, 6) for g in grad_norms], trainable_params=trainable,
           optimizer_steps=trainer.state.global_step)
    return losses, grad_norms


def test_recommended(model, device, tmp_path):
    """4-bit base + SFTTrainer(peft_config=LoraConfig): loss falls by >= 20% and grad norms are non-zero."""
    import math

    from ftcompat.harness.quant import require_4bit

    require_4bit(model.path)
    losses, grad_norms = run_sft(model, device, tmp_path)
    assert len(losses) >= 2 * K, f"only {len(losses)} losses logged in {STEPS} steps"
    first, last = sum(losses[:K]) / K, sum(losses[-K:]) / K
    record(first_k_mean=round(first, 5), last_k_mean=round(last, 5), drop=round(first - last, 5))
    assert first - last >= MIN_DROP, (
        f"loss did not fall enough: mean of first {K} = {first:.5f}, last {K} = {last:.5f}, "
        f"drop {first - last:.5f} < {MIN_DROP}"
    )
    assert grad_norms, "no grad_norm in the trainer's log history"
    bad = [g for g in grad_norms if not math.isfinite(g)]
    assert not bad, f"{len(bad)} of {len(grad_norms)} logged grad norms not finite: {bad[:3]}"
    assert max(grad_norms) > 0, f"every logged grad norm is zero ({len(grad_norms)} logged)"
