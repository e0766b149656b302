"""What cases share: the tiny model and tokenizer, training arguments on the device, the checks that training ran.

A case keeps only its idiom, its twin and its docstring; the set-up every case repeats lives here.
Three rules keep the kit from changing what a case measures:

* nothing heavy at module level (torch, transformers, trl, peft are imported inside the functions), so
  the harness loads in any environment and a broken stack shows up as a cell, not a crash;
* feature detection only, never a version number: a helper asks the installed class which argument
  it takes, so a cell fails on the behaviour its case checks, not on the kit's guess about a release;
* the kit never renames, drops or adds a keyword the case passes (apart from the device switch), so a
  case that checks a rename (``api_surface``, ``sft_trainer_kwargs``, ``processing_class``) still spells
  the idiom under test itself. Renaming for setup is ``ftcompat.harness.compat``'s job, not the kit's.

The helpers do not open ``setup(...)``/``step(...)`` blocks of their own (``gpu_view`` and ``train`` aside,
which name theirs exactly as the cases did): the case decides whether a failing call is an ``error`` or
a ``fail``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ftcompat.harness.api import record, setup, step
from ftcompat.harness.compat import accepted, cpu_kwargs  # what a class takes: what a case can pass
from ftcompat.harness.trlpath import GpuViewOfDeviceCheck

__all__ = ["Trained", "accepted", "checkpointing_run", "cpu_kwargs", "exception_summary", "gpu_view", "held_tokenizer",
           "lm_training", "load", "snapshot", "supported", "tokenizer", "tokenizer_kwarg", "train", "training_args",
           "unchanged"]


def supported(cls, kwargs: dict) -> dict:
    """Return the items of ``kwargs`` whose keys ``cls`` accepts (set-up settings an older release lacks)."""
    # Only for settings that are not the case's idiom: an idiom must reach the class and fail there.
    names = accepted(cls)
    return {k: v for k, v in kwargs.items() if k in names}


def training_args(cls, output_dir, device: str, **kwargs):
    """Build ``cls(output_dir=..., **kwargs)`` with the CPU switch for ``device``; ``kwargs`` go in unchanged."""
    return cls(output_dir=str(output_dir), **kwargs, **cpu_kwargs(cls, device))


def tokenizer(path, **kwargs):
    """Load ``AutoTokenizer.from_pretrained(path, **kwargs)`` with a pad token (its EOS where it has none)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, **kwargs)
    # Llama-style tokenizers ship without one, and every batch of two or more needs padding.
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load(model_ref, **tokenizer_kwargs):
    """Return ``(model, tokenizer)``: the case's causal LM and its tokenizer with padding set."""
    from transformers import AutoModelForCausalLM

    tok = tokenizer(model_ref.path, **tokenizer_kwargs)
    return AutoModelForCausalLM.from_pretrained(model_ref.path), tok


def lm_training(model_ref, device: str, output_dir, **args):
    """Return ``(model, tokenizer, TrainingArguments(**args), causal-LM collator)`` for a plain ``Trainer``."""
    from transformers import DataCollatorForLanguageModeling, TrainingArguments

    lm, tok = load(model_ref)
    return lm, tok, training_args(TrainingArguments, output_dir, device, **args), DataCollatorForLanguageModeling(
        tok, mlm=False)


# Four short texts, two batches of two: enough for the resume cases' 2 + 1 optimizer steps.
_RESUME_TEXTS = ["the cat sat on the mat", "one two three four five", "red green blue red green", "a b c d e f"]


def checkpointing_run(model_ref, device: str, output_dir, max_steps: int):
    """Return ``(model, tokenized list dataset, TrainingArguments saving every step, collator)`` for a resume case."""
    # checkpoint_resume and torch_load_guard wrote this set-up out identically; it is set-up, not their idiom.
    lm, tok, args, collator = lm_training(model_ref, device, output_dir, per_device_train_batch_size=2, seed=0,
                                          max_steps=max_steps, save_strategy="steps", save_steps=1,
                                          logging_steps=1, report_to=[])
    return lm, [dict(tok(t)) for t in _RESUME_TEXTS], args, collator


def tokenizer_kwarg(trainer_cls, tok) -> dict:
    """Return ``{"processing_class": tok}`` where ``trainer_cls`` takes it, else ``{"tokenizer": tok}``."""
    # For set-up only: a case whose idiom *is* this keyword writes it out itself.
    return {"processing_class" if "processing_class" in accepted(trainer_cls) else "tokenizer": tok}


def held_tokenizer(trainer):
    """Return the tokenizer a trainer holds, as ``processing_class`` (transformers >= 4.46) or ``tokenizer``."""
    return getattr(trainer, "processing_class", None) or getattr(trainer, "tokenizer", None)


def exception_summary(exc) -> str:
    """Return ``Type: first line | the unpickler's detail line``, colour codes removed, for a cell's details."""
    # torch.load's refusal spreads the useful part (the unsupported global) over many lines.
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines() if ln.strip()]
    detail = [ln for ln in lines if "Unsupported global" in ln or "WeightsUnpickler" in ln]
    return f"{type(exc).__name__}: " + " | ".join(lines[:1] + detail[:1])


def gpu_view(device: str):
    """Prepare TRL's 4-bit device-check stand-in (a setup step), record whether it patched, and return it."""
    view = GpuViewOfDeviceCheck(device)
    with setup("find TRL's 4-bit device check"):
        view.prepare()
    record(device_check_patched=view.patched)
    return view


def snapshot(model, lora: bool = False) -> dict:
    """Copy the trainable parameters (with ``lora``, every LoRA tensor by name), to compare after training."""
    # float() and cpu() so 4-bit-era bf16 adapters and CUDA tensors compare the same way as fp32 CPU ones.
    def pick(name, param):
        return "lora_" in name if lora else param.requires_grad

    return {n: p.detach().float().cpu().clone() for n, p in model.named_parameters() if pick(n, p)}


def unchanged(before: dict, model) -> list[str]:
    """Return the sorted names of the tensors in ``before`` that are still exactly equal in ``model``."""
    import torch

    now = dict(model.named_parameters())  # a tensor gone from the model raises KeyError: a broken model, not a pass
    return sorted(n for n, t in before.items() if torch.equal(t, now[n].detach().float().cpu()))


@dataclass
class Trained:
    """What ``train`` saw: the TrainOutput, the trainer's log history, and how far each tensor moved."""

    trainer: Any
    out: Any
    deltas: dict[str, float] = field(default_factory=dict)

    @property
    def logs(self) -> list[dict]:
        """Return the trainer's log history."""
        return self.trainer.state.log_history

    def series(self, key: str) -> list[float]:
        """Return every logged value of ``key``, rounded to 6 places, in order."""
        return [round(float(e[key]), 6) for e in self.logs if key in e]

    def keys(self) -> list[str]:
        """Return every key the trainer logged, sorted (for a message saying what was logged instead)."""
        return sorted({k for e in self.logs for k in e})

    @property
    def moved(self) -> int:
        """Return how many snapshotted tensors changed at all."""
        return sum(d > 0 for d in self.deltas.values())

    def facts(self) -> dict:
        """Return the details every trained cell records: steps, losses, parameters moved."""
        return dict(optimizer_steps=self.trainer.state.global_step, training_loss=float(self.out.training_loss),
                    loss=self.series("loss"), params_moved=f"{self.moved}/{len(self.deltas)}",
                    max_param_delta=max(self.deltas.values(), default=0.0))

    def assert_ran(self, steps: int) -> None:
        """Assert ``train()`` took exactly ``steps`` optimizer steps with a finite training loss."""
        got = self.trainer.state.global_step
        assert got == steps, f"{got} optimizer steps, not {steps}"
        assert math.isfinite(self.out.training_loss), f"training loss {self.out.training_loss} is not finite"

    def assert_moved(self, steps: int) -> None:
        """Assert at least one trainable tensor changed."""
        assert self.moved > 0, f"0 of {len(self.deltas)} trainable tensors moved in {steps} steps"


def train(trainer, model, name: str) -> Trained:
    """Run ``trainer.train()`` as step ``name`` and measure how far ``model``'s trainable tensors moved."""
    before = snapshot(model)
    with step(name):
        out = trainer.train()
    now = dict(model.named_parameters())
    deltas = {n: (now[n].detach().float().cpu() - t).abs().max().item() for n, t in before.items() if n in now}
    return Trained(trainer, out, deltas)
