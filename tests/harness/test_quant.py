"""harness/quant: the 4-bit and 8-bit probes share one load-and-forward check, with stand-ins for torch/transformers."""

import contextlib
import sys
import types

import pytest

from ftcompat.harness import quant


@pytest.fixture
def fake_stack(monkeypatch):
    """A torch and a transformers whose model loads with parameters of the class the test sets."""
    torch = types.ModuleType("torch")
    torch.no_grad = contextlib.nullcontext
    torch.tensor = lambda data, device=None: data
    transformers = types.ModuleType("transformers")
    loads = []

    class Int8Params:
        pass

    class AutoModelForCausalLM:
        params = [Int8Params()]

        @classmethod
        def from_pretrained(cls, path, **kwargs):
            loads.append((path, kwargs))
            return Model(cls.params)

    class Model:
        def __init__(self, params):
            self.params = params

        def __call__(self, ids):
            return ids

        def parameters(self):
            return iter(self.params)

    transformers.AutoModelForCausalLM = AutoModelForCausalLM
    transformers.BitsAndBytesConfig = lambda **kwargs: ("bnb", kwargs)
    transformers.loads = loads
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "transformers", transformers)
    quant.why_no_8bit.cache_clear()
    yield transformers
    quant.why_no_8bit.cache_clear()


def test_why_no_8bit_is_none_when_an_8bit_load_and_forward_work(fake_stack):
    assert quant.why_no_8bit("/m", "cpu") is None
    assert fake_stack.loads == [("/m", {"quantization_config": ("bnb", {"load_in_8bit": True}),
                                        "device_map": {"": "cpu"}})]


def test_why_no_8bit_says_when_no_weight_was_quantized(fake_stack):
    fake_stack.AutoModelForCausalLM.params = [object()]
    assert quant.why_no_8bit("/m", "cpu") == (
        "the model loaded with BitsAndBytesConfig(load_in_8bit=True) but no weight is Int8Params")


def test_why_no_8bit_reports_the_failure_and_require_8bit_skips_with_it(fake_stack):
    def broken(path, **kwargs):
        raise ImportError("Using bitsandbytes 8-bit quantization requires Accelerate\nmore")

    fake_stack.AutoModelForCausalLM.from_pretrained = staticmethod(broken)
    reason = quant.why_no_8bit("/m", "cpu")
    assert "cannot run 8-bit on cpu: ImportError: Using bitsandbytes 8-bit quantization requires Accelerate" in reason
    assert reason.endswith("Accelerate")
    with pytest.raises(pytest.skip.Exception, match="cannot run 8-bit on cpu"):
        quant.require_8bit("/m", "cpu")
