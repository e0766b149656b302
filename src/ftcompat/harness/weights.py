"""Did loading keep the checkpoint's weights? Compare a loaded model's tensors with the files on disk.

A model class's own weight initialisation, run by transformers while it loads, can overwrite what
was just loaded without a word (remote code that writes ``weight.data`` directly is the classic
way). The model then generates, just wrongly. This reads every tensor of the checkpoint's
safetensors files and counts the ones the loaded model no longer holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WeightCheck:
    """How many of the checkpoint's tensors differ in the loaded model, and which (a few)."""

    differ: int
    total: int
    missing: int
    examples: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every checkpoint tensor is in the model, unchanged."""
        return self.differ == 0 and self.missing == 0

    def text(self) -> str:
        """``10 of 15 tensors differ from the checkpoint after loading (e.g. model.embed_tokens.weight)``."""
        parts = []
        if self.differ:
            parts.append(f"{self.differ} of {self.total} tensors differ from the checkpoint after loading")
        if self.missing:
            parts.append(f"{self.missing} of {self.total} checkpoint tensors are not in the model")
        if not parts:
            return f"all {self.total} tensors equal the checkpoint"
        return "; ".join(parts) + (f" (e.g. {', '.join(self.examples)})" if self.examples else "")


def compare(model, folder: Path | str) -> WeightCheck:
    """Compare ``model``'s state dict with every tensor in the safetensors files of ``folder``."""
    import torch
    from safetensors import safe_open

    state = model.state_dict()
    differ, missing, total = 0, 0, 0
    examples: list[str] = []
    for path in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as fh:
            for name in fh.keys():  # noqa: SIM118 - safe_open is not a mapping
                total += 1
                if name not in state:
                    missing += 1
                    continue
                loaded = state[name].detach().to("cpu")
                stored = fh.get_tensor(name).to(loaded.dtype)
                if loaded.shape != stored.shape or not torch.equal(loaded, stored):
                    differ += 1
                    if len(examples) < 3:
                        examples.append(name)
    return WeightCheck(differ, total, missing, tuple(examples))
