"""Can this environment run bitsandbytes 4-bit (or 8-bit) on the device at hand? Asked by doing it.

Older bitsandbytes (< 0.46) and older transformers refuse 4-bit on CPU; that is a property of the
combo on this machine, not a failure of the behaviour a case checks, so cases skip with the
reason this probe found. The probe never looks at version numbers.
"""

from __future__ import annotations

import functools

from ftcompat.core.outcome import root_cause
from ftcompat.harness.envinfo import torch_device, versions

PARAM_CLASS = {4: "Params4bit", 8: "Int8Params"}  # the class a quantized weight has, by bit width


def bnb_config(**overrides):
    """Return the BitsAndBytesConfig QLoRA users write (nf4, double quant, fp32 compute on CPU)."""
    import torch
    from transformers import BitsAndBytesConfig


    compute = torch.bfloat16 if torch_device() == "cuda" else torch.float32
    kwargs = dict(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )
    kwargs.update(overrides)
    return BitsAndBytesConfig(**kwargs)


def _why_not(model_path: str, device: str, bits: int, config, unquantized: str) -> str | None:
    """Return why loading with ``config()`` and one forward pass fails for ``bits``-bit on ``device``, or None."""
    # One probe for both widths (the 8-bit one was a copy in cases/quantized_load_kwargs.py).
    try:
        import torch
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(
            model_path, quantization_config=config(), device_map={"": device}
        )
        if not any(type(p).__name__ == PARAM_CLASS[bits] for p in model.parameters()):
            return unquantized
        with torch.no_grad():
            model(torch.tensor([[1, 2, 3]], device=device))
    except Exception as exc:  # noqa: BLE001 - any failure here means "cannot run it here"
        v = versions()
        root = root_cause(exc)
        first = str(root).strip().splitlines()[0][:200] if str(root).strip() else ""
        return (
            f"bitsandbytes {v['bitsandbytes']} with transformers {v['transformers']} cannot run "
            f"{bits}-bit on {device}: {type(root).__name__}: {first}"
        )
    return None


@functools.cache
def why_no_4bit(model_path: str) -> str | None:
    """Return why 4-bit cannot run here, or None when a tiny 4-bit load and forward works."""
    return _why_not(model_path, torch_device(), 4, bnb_config, "the model loaded but no weight was quantized to 4-bit")


def _bnb_8bit():
    """Return ``BitsAndBytesConfig(load_in_8bit=True)``."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_8bit=True)


@functools.cache
def why_no_8bit(model_path: str, device: str) -> str | None:
    """Return why 8-bit cannot run on ``device`` (asked by loading with BitsAndBytesConfig), or None."""
    return _why_not(model_path, device, 8, _bnb_8bit,
                    "the model loaded with BitsAndBytesConfig(load_in_8bit=True) but no weight is Int8Params")


def require_4bit(model_path: str) -> None:
    """Skip the running case, with the reason, when this combo cannot run 4-bit on this device."""
    import pytest

    reason = why_no_4bit(str(model_path))
    if reason:
        pytest.skip(reason)


def require_8bit(model_path: str, device: str) -> None:
    """Skip the running case, with the reason, when this combo cannot run 8-bit on ``device``."""
    import pytest

    reason = why_no_8bit(str(model_path), device)
    if reason:
        pytest.skip(reason)


def load_4bit(model_path: str, device: str):
    """Load ``(model, tokenizer)`` the way QLoRA recipes do: nf4 weights, the rest in the compute dtype.

    Left unset, transformers would keep the non-quantized weights (embeddings, norms, lm_head) in
    fp16; the argument is ``dtype`` or ``torch_dtype`` depending on the release (feature-detected).
    """
    import inspect

    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    quant = bnb_config()
    takes_dtype = 'kwargs.pop("dtype"' in inspect.getsource(PreTrainedModel.from_pretrained)
    dtype_kw = "dtype" if takes_dtype else "torch_dtype"
    model = AutoModelForCausalLM.from_pretrained(
        model_path, quantization_config=quant, device_map={"": device}, **{dtype_kw: quant.bnb_4bit_compute_dtype}
    )
    return model, tokenizer

