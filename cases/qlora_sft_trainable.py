"""QLoRA + SFTTrainer: are the LoRA adapters still trainable once the trainer is built?

User symptom (field report shared/seeds/001_*.txt, upstream https://github.com/huggingface/trl/issues/3926):
a 4-bit model prepared the "legacy" way (``prepare_model_for_kbit_training`` then ``get_peft_model``)
and handed to ``SFTTrainer`` as a ``PeftModel`` *without* ``peft_config`` ends up with
``trainable params: 0`` and a flat loss. The recommended way (base model plus ``peft_config=``)
trains. Both patterns are variants here:

* ``test_legacy``: prepare_model_for_kbit_training -> get_peft_model -> SFTTrainer(model=peft_model).
* ``test_recommended``: SFTTrainer(model=base_4bit_model, peft_config=LoraConfig(...)).

Each variant loads the tiny model in real bitsandbytes nf4 (skipped via ``require_4bit`` where this
combo cannot run 4-bit on this device), counts the LoRA parameters independently (names containing
``lora_``) and the ``requires_grad`` parameters of ``trainer.model`` right after the trainer is
constructed, asserts they are equal, then runs two optimizer steps (``max_steps=2``) and asserts
every LoRA tensor changed. Counts, per-step losses and the number of unchanged LoRA tensors are
recorded.

Why it fails (read in TRL's code, confirmed by running): from TRL 0.20.0 SFTTrainer routes a bare
``PeftModel`` (``peft_config is None``) through its PEFT preparation too
(``if peft_config is not None or isinstance(model, PeftModel)``; 0.19.x only prepared the model
when a ``peft_config`` was given, and returned a PeftModel untouched; the change most likely came with
https://github.com/huggingface/trl/pull/3785, "Support training peft model with gradient
checkpointing", merged the day before 0.20.0 - inferred from its test, not read in its diff). That preparation
(``SFTTrainer._prepare_peft_model`` in 0.20-0.21, ``trl.models.utils.prepare_peft_model`` in
0.22-0.25) calls ``prepare_model_for_kbit_training`` whenever the model is 4-bit and "not
sharded" - and that function sets ``requires_grad=False`` on
*every* parameter, the already-attached adapters included. With no ``peft_config`` nothing re-adds
trainable adapters, so trainable=0. Fixed by https://github.com/huggingface/trl/pull/4081
(``and not isinstance(model, PeftModel)``), released in 0.23.1 and 0.24.0. From 0.26 SFTTrainer no
longer does any kbit preparation (https://github.com/huggingface/trl/pull/4577, it just calls
``get_peft_model``). The recommended pattern is unaffected everywhere. Measured on CPU with the
device check below: 0.19.1 pass; 0.20.0, 0.21.0, 0.22.0-0.22.2, 0.23.0 legacy fail with
trainable 0 != LoRA 7168; 0.23.1, 0.24.0, 0.25.1, 0.26.2, 0.27.2, 0.29.1, 1.0.0, 1.16.0 pass.

CPU versus CUDA, and how this case drives the GPU user's path on CPU: SFTTrainer (TRL 0.12 - 0.25) decides
"sharded QLoRA (FSDP / DeepSpeed ZeRO-3)" by looking at the first ``Params4bit`` and testing
``param.data.device.type in {"cpu", "meta"}``. On a GPU the packed 4-bit weights sit on ``cuda``, so
the check is False and ``prepare_model_for_kbit_training`` runs (the bug). With bitsandbytes' CPU
backend the weights sit on ``cpu``, so TRL takes the sharded-QLoRA branch, skips the kbit
preparation, and the bug can never show on CPU - a false "pass". So on CPU only, and only while
``SFTTrainer(...)`` is being constructed, the case finds the function(s) that SFTTrainer calls whose
source contains exactly that device test (feature detection: SFTTrainer's methods and the
module-level functions in ``trl.trainer.sft_trainer``'s namespace), recompiles each with that one
set literal changed to ``{"meta"}`` (what a CUDA tensor gives: not cpu, not meta), and restores the
originals right after (``ftcompat.harness.trlpath``). Nothing else in TRL, peft or bitsandbytes is
touched; the behaviour under
test (the kbit preparation and what it freezes) runs unmodified. Where SFTTrainer reaches no such check (TRL
>= 0.26) nothing is patched; on CUDA nothing is patched. Which functions were patched is recorded as
``device_check_patched``. If the check sits somewhere it cannot be safely recompiled (TRL <= 0.14
has it inline in ``SFTTrainer.__init__``, which uses ``super()``; not run here), the cell is skipped
on CPU rather than reporting the CPU path as if it were the GPU one. Without this, TRL 0.22.0 on CPU
passes both variants (checked) although GPU users get trainable=0.

Other notes: gradient checkpointing is off (both in ``prepare_model_for_kbit_training`` and in
``SFTConfig``) to keep the cells fast; the freeze does not depend on it. "Changed" means each LoRA
tensor differs somewhere after the two steps (``lora_A`` only moves at step 2, once ``lora_B`` is
non-zero); the learning rate is 1e-3 so that happens comfortably even where TRL (>= 0.26) keeps a
4-bit model's adapters in bf16 (``lora_dtypes`` is recorded).

The non-quantized weights are loaded in the bnb compute dtype (fp32 on CPU, bf16 on CUDA) as QLoRA
recipes do. Left unset, transformers loads them in fp16; TRL 0.25.x then runs its own
``prepare_model_for_kbit_training`` that upcasts only the norms, and fp32 training (no autocast, as
on CPU) dies in ``lm_head`` with "expected m1 and m2 to have the same dtype, but got: float !=
c10::Half" - a different breakage (see https://github.com/huggingface/trl/pull/4457), kept out of
this case so it checks one thing.
"""

from ftcompat.harness import record, setup, step
from ftcompat.harness.quant import load_4bit
from ftcompat.harness.trlpath import GpuViewOfDeviceCheck

DEFAULT_MODELS = ["tiny-llama"]

_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Low-rank adapters train a small number of parameters.",
    "Four-bit weights keep the base model frozen and small.",
    "A tiny model is enough to see whether gradients flow.",
    "Two optimizer steps should move every adapter weight.",
    "Supervised fine-tuning reads plain text examples here.",
    "Quantized base, trainable adapters, flat loss is a bug.",
    "The trainer should count only the adapter parameters.",
]


def _lora_config():
    from peft import LoraConfig

    return LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        bias="none",
        task_type="CAUSAL_LM",
    )


def _sft_config(tmp_path, device):
    """SFTConfig with whichever argument names this TRL/transformers accepts."""
    import inspect

    from trl import SFTConfig

    params = inspect.signature(SFTConfig.__init__).parameters
    kwargs = dict(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=0,
        gradient_checkpointing=False,
        bf16=device == "cuda",
        fp16=False,
        dataloader_num_workers=0,
    )
    if "max_length" in params:
        kwargs["max_length"] = 64
    elif "max_seq_length" in params:
        kwargs["max_seq_length"] = 64
    if "dataset_text_field" in params:
        kwargs["dataset_text_field"] = "text"
    if "packing" in params:
        kwargs["packing"] = False
    if device == "cpu":
        if "use_cpu" in params:
            kwargs["use_cpu"] = True
        elif "no_cuda" in params:
            kwargs["no_cuda"] = True
    return SFTConfig(**kwargs)


def _make_trainer(model_obj, tokenizer, args, dataset, peft_config=None):
    import inspect

    from trl import SFTTrainer

    params = inspect.signature(SFTTrainer.__init__).parameters
    kwargs = dict(model=model_obj, args=args, train_dataset=dataset)
    if "processing_class" in params:
        kwargs["processing_class"] = tokenizer
    else:
        kwargs["tokenizer"] = tokenizer
    if peft_config is not None:
        kwargs["peft_config"] = peft_config
    return SFTTrainer(**kwargs)


def _count(peft_model):
    lora = sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    return lora, trainable


def _lora_snapshot(peft_model):
    return {n: p.detach().float().cpu().clone() for n, p in peft_model.named_parameters() if "lora_" in n}


def _train_and_check(trainer, before):
    import torch

    with step("SFTTrainer.train"):
        trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    after = _lora_snapshot(trainer.model)
    unchanged = sorted(n for n, t in before.items() if torch.equal(t, after[n]))
    record(
        losses=losses,
        optimizer_steps=trainer.state.global_step,
        lora_tensors=len(before),
        lora_tensors_unchanged=len(unchanged),
        unchanged_examples=unchanged[:4],
    )
    assert trainer.state.global_step == 2, f"ran {trainer.state.global_step} optimizer steps, expected 2"
    assert before, "no LoRA tensors found in trainer.model"
    assert not unchanged, (
        f"{len(unchanged)} of {len(before)} LoRA tensors unchanged after 2 optimizer steps (e.g. {unchanged[:2]})"
    )


def _dataset():
    from datasets import Dataset

    return Dataset.from_list([{"text": t} for t in _TEXTS])


def _check_trainable(trainer):
    lora, trainable = _count(trainer.model)
    dtypes = sorted({str(p.dtype) for n, p in trainer.model.named_parameters() if "lora_" in n})
    record(
        lora_params=lora,
        trainable_params=trainable,
        lora_dtypes=dtypes,
        model_class=type(trainer.model).__name__,
    )
    if trainable != lora:
        odd = [n for n, p in trainer.model.named_parameters() if p.requires_grad and "lora_" not in n]
        record(non_lora_trainable_examples=odd[:4])
    assert lora > 0, "trainer.model has no LoRA parameters"
    assert trainable == lora, f"trainable params {trainable} != LoRA params {lora} after SFTTrainer()"


def test_legacy(model, device, tmp_path):
    """prepare_model_for_kbit_training + get_peft_model, PeftModel passed without peft_config."""
    import torch

    from ftcompat.harness.quant import require_4bit

    require_4bit(model.path)
    with setup("load 4-bit model, prepare_model_for_kbit_training, get_peft_model"):
        from peft import get_peft_model, prepare_model_for_kbit_training

        torch.manual_seed(0)
        base, tokenizer = load_4bit(model.path, device)
        base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
        peft_model = get_peft_model(base, _lora_config())
        lora0, trainable0 = _count(peft_model)
        record(lora_params_before_trainer=lora0, trainable_params_before_trainer=trainable0)
        args = _sft_config(tmp_path, device)
        dataset = _dataset()
    gpu_view = GpuViewOfDeviceCheck(device)
    with setup("find TRL's 4-bit device check"):
        gpu_view.prepare()
    record(device_check_patched=gpu_view.patched)
    with gpu_view, step("SFTTrainer(model=PeftModel, no peft_config)"):
        trainer = _make_trainer(peft_model, tokenizer, args, dataset)
    _check_trainable(trainer)
    _train_and_check(trainer, _lora_snapshot(trainer.model))


def test_recommended(model, device, tmp_path):
    """Base 4-bit model plus peft_config=LoraConfig; SFTTrainer wraps it."""
    import torch

    from ftcompat.harness.quant import require_4bit

    require_4bit(model.path)
    with setup("load 4-bit model"):
        torch.manual_seed(0)
        base, tokenizer = load_4bit(model.path, device)
        args = _sft_config(tmp_path, device)
        dataset = _dataset()
    gpu_view = GpuViewOfDeviceCheck(device)
    with setup("find TRL's 4-bit device check"):
        gpu_view.prepare()
    record(device_check_patched=gpu_view.patched)
    with gpu_view, step("SFTTrainer(model=base, peft_config=LoraConfig)"):
        trainer = _make_trainer(base, tokenizer, args, dataset, peft_config=_lora_config())
    _check_trainable(trainer)
    _train_and_check(trainer, _lora_snapshot(trainer.model))
