"""Argument names that moved between releases, chosen by feature detection for a case's setup.

Cases build ``SFTConfig``/``SFTTrainer`` and load models across years of TRL and transformers. Where
only an argument's *name* changed, setup asks the installed signature which name it takes, so a cell
fails on the behaviour it checks, never on a rename. ``cases/api_surface.py`` checks the renames
themselves and must not use this module.
"""

from __future__ import annotations

import inspect

# new name -> the name older releases used for the same setting
RENAMED = {
    "max_length": "max_seq_length",  # SFTConfig, TRL 0.20
    "eval_strategy": "evaluation_strategy",  # TrainingArguments, transformers 4.41
    "processing_class": "tokenizer",  # Trainer/SFTTrainer, transformers 4.46 / TRL 0.12
}


def accepted(func) -> set[str]:
    """Return the keyword names ``func`` (a class or callable) accepts."""
    target = func.__init__ if inspect.isclass(func) else func
    return set(inspect.signature(target).parameters)


def renamed(func, kwargs: dict) -> dict:
    """Return ``kwargs`` with each new name swapped for its old one where ``func`` only takes the old."""
    names = accepted(func)
    out = {}
    for key, value in kwargs.items():
        old = RENAMED.get(key)
        out[old if key not in names and old in names else key] = value
    return out


def cpu_kwargs(cls, device: str) -> dict:
    """Return the keyword that keeps ``cls`` (TrainingArguments or a TRL config) off the GPU for ``device="cpu"``."""
    if device != "cpu":
        return {}
    # transformers 4.34 renamed no_cuda to use_cpu; ask the class which one it takes.
    return {"use_cpu" if "use_cpu" in accepted(cls) else "no_cuda": True}


def sft_config(output_dir, device: str, *, optional: dict | None = None, **kwargs):
    """Build ``SFTConfig(**kwargs)`` for this TRL: renames applied, ``optional`` keys set where accepted.

    ``device="cpu"`` adds ``use_cpu=True`` (``no_cuda`` before transformers 4.34), so a case meant for
    CPU stays there on a GPU machine too. ``SFTTrainer`` is imported here as well: cases build their
    config during setup, so a TRL whose trainer cannot even be imported is a setup error, not a
    verdict on the step the case checks.
    """
    from trl import SFTConfig, SFTTrainer  # noqa: F401 - see above

    names = accepted(SFTConfig)
    kwargs = dict(output_dir=str(output_dir), **kwargs)
    kwargs.update({k: v for k, v in (optional or {}).items() if k in names})
    kwargs.update(cpu_kwargs(SFTConfig, device))
    return SFTConfig(**renamed(SFTConfig, kwargs))


def sft_trainer(model, tokenizer, args, train_dataset, **kwargs):
    """Build ``SFTTrainer``, handing the tokenizer over as ``processing_class`` or ``tokenizer``."""
    from trl import SFTTrainer

    kwargs = dict(model=model, args=args, train_dataset=train_dataset, processing_class=tokenizer, **kwargs)
    return SFTTrainer(**renamed(SFTTrainer, kwargs))


def dtype_kwarg(dtype) -> dict:
    """Return ``{"dtype": dtype}``, or ``{"torch_dtype": dtype}`` where this transformers predates 4.56.

    ``from_pretrained`` takes ``**kwargs``, so its signature cannot tell; the config attribute renamed
    with it can.
    """
    from transformers import PretrainedConfig

    return {"dtype" if hasattr(PretrainedConfig(), "dtype") else "torch_dtype": dtype}
