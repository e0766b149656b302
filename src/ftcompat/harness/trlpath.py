"""Drive TRL's GPU QLoRA code path on a CPU, for cases whose bug lives on that path.

TRL (0.12 - 0.25) decides "sharded QLoRA (FSDP / DeepSpeed ZeRO-3)" by looking at the first
``Params4bit`` and testing ``param.data.device.type in {"cpu", "meta"}``. On a GPU the packed 4-bit
weights sit on ``cuda``, the test is False and TRL prepares the model for k-bit training (and, with
``bf16=True``, casts modules to bf16). With bitsandbytes' CPU backend the weights sit on ``cpu``, so
TRL takes the sharded branch and skips all of that: a CPU run would silently test another path.

``GpuViewOfDeviceCheck`` finds the functions SFTTrainer reaches whose source contains exactly that
test (SFTTrainer's methods and the functions in ``trl.trainer.sft_trainer``'s namespace: feature
detection, no version numbers), recompiles each with the set changed to ``{"meta"}`` (what a CUDA
tensor gives) and installs them only while active. On CUDA, or where no such test exists, it does
nothing. Where the test sits in a closure it cannot recompile, it skips the case rather than run
the CPU path as if it were the GPU one.
"""

from __future__ import annotations

_DEVICE_CHECK = r"""\.device\.type\s+in\s+\{\s*["']cpu["']\s*,\s*["']meta["']\s*\}"""
_MISSING = object()


class GpuViewOfDeviceCheck:
    """While active on CPU, TRL's 'Params4bit on cpu/meta => sharded QLoRA' test sees what CUDA gives.

    Recompiles only the functions SFTTrainer reaches whose source contains that exact test, with
    ``{"cpu", "meta"}`` replaced by ``{"meta"}``, and puts the originals back on exit.
    """

    def __init__(self, device):
        self.device = device
        self.patched = []
        self._patches = []  # (owner, attribute name, replacement)
        self._undo = []

    def prepare(self):
        """Find and recompile the device checks (CPU only); skip where that cannot be done."""
        if self.device != "cpu":
            return
        import inspect
        import re
        import textwrap

        import pytest
        import trl.trainer.sft_trainer as st

        pattern = re.compile(_DEVICE_CHECK)
        targets = []  # (owner, attribute name, function)
        for name, obj in list(vars(st).items()):
            if inspect.isfunction(obj) and (obj.__module__ or "").startswith("trl"):
                targets.append((st, name, obj))
        for klass in st.SFTTrainer.__mro__:
            if not (klass.__module__ or "").startswith("trl"):
                continue
            for name, obj in list(vars(klass).items()):
                if inspect.isfunction(obj):
                    targets.append((st.SFTTrainer, name, obj))
        seen = set()
        for owner, name, fn in targets:
            if (owner, name) in seen:
                continue
            try:
                source = inspect.getsource(fn)
            except (OSError, TypeError):
                continue
            if not pattern.search(source):
                continue
            seen.add((owner, name))
            label = f"{fn.__module__}.{fn.__qualname__}"
            if fn.__code__.co_freevars:
                pytest.skip(
                    f"TRL's 4-bit device check sits in {label}, which has a closure "
                    f"({fn.__code__.co_freevars}) and cannot be recompiled; on CPU this case could "
                    "only drive the sharded-QLoRA path, not the one a GPU user hits"
                )
            new_source = pattern.sub('.device.type in {"meta"}', textwrap.dedent(source))
            namespace = {}
            code = compile(new_source, inspect.getsourcefile(fn) or "<trl>", "exec")
            exec(code, fn.__globals__, namespace)  # noqa: S102 - TRL's own source, one literal changed
            new_fn = namespace[fn.__name__]
            new_fn.__qualname__ = fn.__qualname__
            self._patches.append((owner, name, new_fn))
            self.patched.append(label)

    def __enter__(self):
        for owner, name, new_fn in self._patches:
            self._undo.append((owner, name, vars(owner).get(name, _MISSING)))
            setattr(owner, name, new_fn)
        return self

    def __exit__(self, *exc):
        for owner, name, original in reversed(self._undo):
            if original is _MISSING:
                delattr(owner, name)  # it was inherited: drop the override
            else:
                setattr(owner, name, original)
        self._undo.clear()
        return False
