"""accelerate re-creating a bitsandbytes 4-bit weight of a model loaded by transformers 5.

Symptom (https://github.com/bitsandbytes-foundation/bitsandbytes/pull/1900): after a 4-bit load
(``BitsAndBytesConfig(load_in_4bit=True)``) with transformers 5, accelerate's ``set_module_tensor_to_device``
(what ``dispatch_model``'s offload hooks call on every weight they move) raises ``TypeError: Params4bit.__new__() got
an unexpected keyword argument '_is_hf_initialized'``: transformers 5 marks every loaded parameter with
``_is_hf_initialized``, and accelerate re-creates a quantized weight as ``type(w)(data, requires_grad=...,
**w.__dict__)``, which a ``Params4bit`` with a fixed signature refuses. Fixed on either side: bitsandbytes 0.50.0
takes ``**kwargs`` (bnb#1900), accelerate 1.14.0 pops the flag first
(https://github.com/huggingface/accelerate/pull/3976). Variants (tiny Llama, nf4 on ``device_map={"": device}``,
every ``Linear4bit`` weight set again on its own device from its own packed data):
* ``set_tensor``: ``set_module_tensor_to_device(linear, "weight", device, value=linear.weight.data)``.
* ``set_tensor_cleared``: the twin, the workaround for the releases before the fixes: the same call with
  ``_is_hf_initialized`` taken out of the weight's ``__dict__`` first and put back on the new weight after.
Pass: the call returns, every such weight is still a quantized ``Params4bit`` with its ``quant_state``, and the logits
equal the ones before (max abs difference < 1e-5). A combo that cannot run 4-bit here skips with the reason. The
offload hooks (``cpu_offload``, ``disk`` in a device map) hit the same ``TypeError`` first, but offloading a 4-bit
weight also fails on fixed stacks (its ``quant_state`` is moved to ``meta`` in place), so no variant offloads.
Boundaries, exact error, upstream links: docs/findings/bnb4bit_param_move.md.
"""

from __future__ import annotations

from ftcompat.harness import record, setup, step
from ftcompat.harness.quant import load_4bit, require_4bit

_IDS = [[1, 2, 3, 4, 5, 6, 7, 8]]
_FLAG = "_is_hf_initialized"


def _load(model, device):
    """Return ``(4-bit model, its Linear4bit modules, logits before any move)``."""
    import torch

    require_4bit(model.path)
    with setup("load the tiny Llama in 4-bit and run one forward pass"):
        lm, _ = load_4bit(model.path, device)
        linears = [m for m in lm.modules() if type(m).__name__ == "Linear4bit"]
        assert linears, "no Linear4bit module after a 4-bit load"
        with torch.no_grad():
            before = lm(torch.tensor(_IDS, device=device)).logits.float().cpu()
    record(linear4bit=len(linears), flag_on_weights=sum(_FLAG in m.weight.__dict__ for m in linears))
    return lm, linears, before


def _check(lm, linears, before, device) -> None:
    import torch

    with step("forward pass after the weights were set again"), torch.no_grad():
        after = lm(torch.tensor(_IDS, device=device)).logits.float().cpu()
    classes = sorted({type(m.weight).__name__ for m in linears})
    lost = [m for m in linears if getattr(m.weight, "quant_state", None) is None
            or not getattr(m.weight, "bnb_quantized", False)]
    diff = float((after - before).abs().max())
    record(weight_classes=classes, lost_quant_state=len(lost), max_abs_diff=diff)
    assert classes == ["Params4bit"], f"after set_module_tensor_to_device the weights are {classes}, not Params4bit"
    assert not lost, f"{len(lost)} of {len(linears)} weights lost their quant_state / bnb_quantized flag"
    assert diff < 1e-5, f"the logits changed by {diff} after setting the same packed weights again"


def test_set_tensor(model, device):
    """accelerate's set_module_tensor_to_device(linear, "weight", device, value=...) on each 4-bit weight."""
    lm, linears, before = _load(model, device)
    from accelerate.utils import set_module_tensor_to_device

    with step("set_module_tensor_to_device(Linear4bit, 'weight', value=its packed data)"):
        for linear in linears:
            set_module_tensor_to_device(linear, "weight", device, value=linear.weight.data)
    _check(lm, linears, before, device)


def test_set_tensor_cleared(model, device):
    """The twin: the same call with transformers' _is_hf_initialized taken off the weight first, put back after."""
    lm, linears, before = _load(model, device)
    from accelerate.utils import set_module_tensor_to_device

    with step("set_module_tensor_to_device after popping weight.__dict__['_is_hf_initialized']"):
        for linear in linears:
            flag = linear.weight.__dict__.pop(_FLAG, None)
            set_module_tensor_to_device(linear, "weight", device, value=linear.weight.data)
            if flag is not None:
                setattr(linear.weight, _FLAG, flag)
    _check(lm, linears, before, device)
