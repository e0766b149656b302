"""Import skew: peft or TRL, installed beside a transformers it was not written for, cannot be imported.

Neither package declares the transformers it needs, so pip and uv install pairs that fail at the first import: ``import
peft`` (peft >= 0.14) on an older transformers (``EncoderDecoderCache``,
https://github.com/huggingface/peft/issues/2292), ``import trl`` (TRL <= 0.7.x) on a newer one
(``top_k_top_p_filtering``). peft < 0.18 on transformers 5 is ``api_surface[import_peft]``, which only imports; these
variants do what users do next, so a pass proves the package works. No feature detection for the import (the idiom);
each step names the call that raised.
* ``peft_lora_wrap``: ``from peft import LoraConfig, get_peft_model``, LoRA (q_proj, v_proj) on the tiny model; passes
  when LoRA weights are the only trainable ones and a forward/backward gives a finite loss and non-zero gradients on
  them.
* ``import_trl``: ``import trl`` then ``from trl import SFTTrainer`` (TRL >= 0.8 imports lazily); passes when both
  succeed.
* ``trl_sft_one_step``: the same imports, then ``SFTTrainer`` trains the tiny model one step with a finite loss (setup
  adapts to SFTConfig/TrainingArguments by feature detection).
No in-code twin: each variant's twin is the same variant in the neighbouring combo (the last peft before 0.14; the first
TRL with its own ``top_k_top_p_filtering``; same transformers). Boundaries, exact errors and upstream links:
docs/findings/import_skew.md.
"""

from ftcompat.harness import kit, record, setup, step

# What this case checks: these three importing beside each other. Any other broken import (datasets on a pyarrow built
# for NumPy 2, trl on an undeclared rich) is the environment's, and the cell says so instead of a verdict.
SUBJECT = ("peft", "transformers", "trl")

_TEXTS = ["the cat sat on the mat", "one two three four five", "red green blue red green", "a b c d e f"]


def _versions():
    import importlib.metadata as md

    out = {}
    for name in ("transformers", "peft", "trl"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def test_peft_lora_wrap(model, device):
    """from peft import LoraConfig, get_peft_model; wrap the tiny model; one backward reaches the LoRA weights."""
    import math

    import torch

    record(**{f"{k}_version": v for k, v in _versions().items()})
    with step("import peft"):
        import peft
    with step("from peft import LoraConfig, get_peft_model"):
        from peft import LoraConfig, get_peft_model
    with setup("load the tiny model"):
        from transformers import AutoModelForCausalLM

        torch.manual_seed(0)
        lm = AutoModelForCausalLM.from_pretrained(model.path).to(device)
    with step("get_peft_model(model, LoraConfig(r=4, target_modules=['q_proj', 'v_proj']))"):
        pm = get_peft_model(lm, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                                           target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    named = [(n, p) for n, p in pm.named_parameters() if p.requires_grad]
    lora = [p for n, p in named if "lora_" in n]
    with step("forward + backward"):
        ids = torch.arange(1, 17, device=device).unsqueeze(0)
        out = pm(input_ids=ids, labels=ids)
        out.loss.backward()
    grad = sum(float(p.grad.abs().sum()) for p in lora if p.grad is not None)
    record(peft_module=peft.__name__, trainable_tensors=len(named), lora_tensors=len(lora),
           trainable_params=sum(p.numel() for _, p in named), loss=float(out.loss), lora_grad_abs_sum=grad)
    assert lora and len(lora) == len(named), f"{len(named)} trainable tensors, {len(lora)} of them LoRA"
    assert math.isfinite(float(out.loss)), f"loss {float(out.loss)} not finite"
    assert grad > 0, f"LoRA gradient sum {grad} after one backward"


def test_import_trl():
    """import trl, then from trl import SFTTrainer (TRL >= 0.8 resolves top-level names lazily)."""
    record(**{f"{k}_version": v for k, v in _versions().items()})
    with step("import trl"):
        import trl
    with step("from trl import SFTTrainer"):
        from trl import SFTTrainer
    record(trl_version=getattr(trl, "__version__", None), sfttrainer_module=SFTTrainer.__module__)


def test_trl_sft_one_step(model, device, tmp_path):
    """import trl; SFTTrainer on the tiny model trains one optimizer step with a finite loss."""
    import math

    import torch

    record(**{f"{k}_version": v for k, v in _versions().items()})
    with step("import trl"):
        import trl
    with step("from trl import SFTTrainer"):
        from trl import SFTTrainer
    with setup("tiny model, dataset, SFTConfig or TrainingArguments"):
        from datasets import Dataset
        from transformers import TrainingArguments

        from ftcompat.harness.compat import renamed, sft_config

        torch.manual_seed(0)
        lm, tok = kit.load(model)
        ds = Dataset.from_list([{"text": t} for t in _TEXTS])
        common = dict(max_steps=1, per_device_train_batch_size=2, logging_steps=1, save_strategy="no",
                      report_to="none", seed=0)
        extra = {}
        if hasattr(trl, "SFTConfig"):
            args = sft_config(tmp_path, device, max_length=32, **common,
                              optional={"dataset_text_field": "text", "packing": False})
        else:  # TRL < 0.8.2: TrainingArguments, and the SFT options go to SFTTrainer itself
            args = kit.training_args(TrainingArguments, tmp_path, device, **common)
            extra = {"dataset_text_field": "text", "max_seq_length": 32, "packing": False}
        kwargs = renamed(SFTTrainer, dict(model=lm, args=args, train_dataset=ds, processing_class=tok, **extra))
    with step("SFTTrainer(model, args, train_dataset)"):
        trainer = SFTTrainer(**kwargs)
    with step("SFTTrainer.train"):
        out = trainer.train()
    record(trl_version=getattr(trl, "__version__", None), optimizer_steps=trainer.state.global_step,
           train_loss=float(out.training_loss))
    assert trainer.state.global_step == 1, f"{trainer.state.global_step} optimizer steps, not 1"
    assert math.isfinite(out.training_loss), f"training loss {out.training_loss} not finite"
