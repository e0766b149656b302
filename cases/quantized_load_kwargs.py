"""bitsandbytes loading through ``from_pretrained(load_in_4bit=True)`` / ``load_in_8bit=True``.

Symptom: QLoRA recipes for transformers 4.x pass ``load_in_4bit=True`` (or ``load_in_8bit=True``) straight to
``AutoModelForCausalLM.from_pretrained``; 4.x accepted it with a deprecation warning, 5 removed the two arguments
(https://github.com/huggingface/transformers/pull/41287), so the keyword reaches the model's ``__init__`` and the load
raises ``TypeError``. The working idiom is ``quantization_config=BitsAndBytesConfig(...)``. Variants (tiny Llama,
``device_map={"": device}``), each loading, then one forward pass:
* ``kwarg_4bit``: ``from_pretrained(path, load_in_4bit=True)``; twin ``config_4bit``:
  ``quantization_config=BitsAndBytesConfig(load_in_4bit=True)``.
* ``kwarg_8bit`` and its twin ``config_8bit``: the same with ``load_in_8bit=True``.
Pass: the model loads, at least one weight is really quantized (``Params4bit`` / ``Int8Params``; a keyword silently
ignored would leave none), and the forward gives finite logits. Where this combo cannot run bitsandbytes 4-bit (resp.
8-bit) here at all, found by doing it with the twin idiom, the cells skip with that reason (``require_4bit``,
``require_8bit``). Boundaries, exact error, upstream links: docs/findings/quantized_load_kwargs.md.
"""

from __future__ import annotations

from ftcompat.harness import record, setup, step
from ftcompat.harness.quant import PARAM_CLASS, require_4bit, require_8bit


def _load_and_check(bits: int, model, device, idiom: str, **kwargs) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    with step(idiom):
        lm = AutoModelForCausalLM.from_pretrained(model.path, device_map={"": device}, **kwargs)
    want = PARAM_CLASS[bits]
    quantized = sum(type(p).__name__ == want for p in lm.parameters())
    with step("forward pass on the loaded model"), torch.no_grad():
        logits = lm(torch.tensor([[1, 2, 3, 4]], device=device)).logits
    record(
        quantized_params=quantized,
        param_classes=sorted({type(p).__name__ for p in lm.parameters()}),
        linear_classes=sorted({type(m).__name__ for m in lm.modules() if "Linear" in type(m).__name__}),
        quantization_config=type(getattr(lm.config, "quantization_config", None)).__name__,
    )
    assert quantized > 0, f"the model loaded but 0 parameters are {want}: the {bits}-bit request was ignored"
    assert bool(torch.isfinite(logits).all()), "the quantized model's logits are not finite"


def test_kwarg_4bit(model, device):
    """from_pretrained(load_in_4bit=True): the 4.x keyword (removed in transformers 5)."""
    require_4bit(model.path)
    _load_and_check(4, model, device, "from_pretrained(load_in_4bit=True)", load_in_4bit=True)


def test_config_4bit(model, device):
    """The twin: from_pretrained(quantization_config=BitsAndBytesConfig(load_in_4bit=True))."""
    require_4bit(model.path)
    with setup("BitsAndBytesConfig(load_in_4bit=True)"):
        from transformers import BitsAndBytesConfig

        config = BitsAndBytesConfig(load_in_4bit=True)
    _load_and_check(4, model, device, "from_pretrained(quantization_config=4-bit)", quantization_config=config)


def test_kwarg_8bit(model, device):
    """from_pretrained(load_in_8bit=True): the 4.x keyword (removed in transformers 5)."""
    require_8bit(model.path, device)
    _load_and_check(8, model, device, "from_pretrained(load_in_8bit=True)", load_in_8bit=True)


def test_config_8bit(model, device):
    """The twin: from_pretrained(quantization_config=BitsAndBytesConfig(load_in_8bit=True))."""
    require_8bit(model.path, device)
    with setup("BitsAndBytesConfig(load_in_8bit=True)"):
        from transformers import BitsAndBytesConfig

        config = BitsAndBytesConfig(load_in_8bit=True)
    _load_and_check(8, model, device, "from_pretrained(quantization_config=8-bit)", quantization_config=config)
