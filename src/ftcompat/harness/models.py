"""Models a case runs on: tiny ones built locally from a config with a fixed seed, or real ones.

A tiny model is built once per environment (its files are written by that environment's
transformers) and cached under the combo's work directory; concurrent xdist workers build into a
temporary folder and rename it into place, so none sees a half-written model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftcompat.harness import tokenizers
from ftcompat.harness.envinfo import torch_device

BUILTIN = {
    "tiny-llama": {"kind": "tiny", "arch": "llama", "tokenizer": "llama2-chat"},
    "tiny-phi3": {"kind": "tiny", "arch": "phi3", "tokenizer": "llama2-chat"},
    "tiny-llama3": {"kind": "tiny", "arch": "llama", "tokenizer": "llama3"},
}

# Small enough to build in a second, big enough for 4-bit blocks (multiples of 64) and a 512-token
# prompt; matrix.yaml may override any of these per model.
DEFAULT_CONFIG = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 1024,
}


@dataclass(frozen=True)
class ModelRef:
    """A model a case can load with ``from_pretrained(ref.path)``."""

    name: str
    path: str
    arch: str | None
    kind: str
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def is_tiny(self) -> bool:
        """True for models built locally from a config."""
        return self.kind == "tiny"


def builtin_spec(name: str) -> dict:
    """Return the spec of a built-in tiny model, for running cases without a plan."""
    if name not in BUILTIN:
        raise KeyError(f"unknown model {name!r}; known without a plan: {sorted(BUILTIN)}")
    return BUILTIN[name]


def resolve(name: str, spec: dict, cache: Path) -> ModelRef:
    """Return a ready model: build a tiny one, or fetch a real one where the machine allows it."""
    kind = spec.get("kind", "tiny")
    if kind == "tiny":
        _require_arch(name, spec["arch"])
        return ModelRef(name, str(build_tiny(name, spec, cache)), spec.get("arch"), kind, spec)
    _require_cuda(name, spec)
    if kind == "local":  # the project's own folder (``repo`` is its absolute path, checked at validation)
        return ModelRef(name, spec["repo"], spec.get("arch"), kind, spec)
    return _hub(name, spec)


def _require_cuda(name: str, spec: dict) -> None:
    """Skip, with the reason, a model that needs CUDA on a machine without it."""
    import pytest

    if "cuda" in set(spec.get("needs", [])):
        if torch_device() != "cuda":
            pytest.skip(f"model {name} needs CUDA and this machine has none")


def _require_arch(name: str, arch: str) -> None:
    """Skip, with the reason, where this transformers does not know the model's architecture."""
    import pytest
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    if arch not in CONFIG_MAPPING_NAMES:
        from importlib.metadata import version

        pytest.skip(f"model {name}: transformers {version('transformers')} has no {arch!r} architecture")


def _hub(name: str, spec: dict) -> ModelRef:
    """A real model at a pinned revision: from the local Hub cache, else downloaded where allowed."""
    import pytest
    from huggingface_hub import snapshot_download

    repo, revision = spec["repo"], spec["revision"]
    try:  # already in the Hub cache (or a directory standing in for it): no network needed
        path = snapshot_download(repo, revision=revision, local_files_only=True)
        return ModelRef(name, path, spec.get("arch"), "hub", spec)
    except Exception:  # noqa: BLE001 - not cached: fall through to the network checks
        pass
    if spec.get("gated") and not _hf_token():
        pytest.skip(f"model {name} ({repo}) is gated: set HF_TOKEN to an account that accepted its license")
    if os.environ.get("HF_HUB_OFFLINE", "1").lower() not in ("0", "false", "no"):
        pytest.skip(f"model {name} needs the Hugging Face Hub; HF_HUB_OFFLINE=1 (set HF_HUB_OFFLINE=0 to allow)")
    if not _hub_reachable():
        pytest.skip(f"model {name} needs the Hugging Face Hub, which this machine cannot reach")
    path = snapshot_download(repo, revision=revision)
    return ModelRef(name, path, spec.get("arch"), "hub", spec)


def _hf_token() -> str | None:
    """The Hub token from the environment (HF_TOKEN) or huggingface-cli login, never printed."""
    if os.environ.get("HF_TOKEN"):
        return os.environ["HF_TOKEN"]
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:  # noqa: BLE001 - old huggingface_hub: no stored-token lookup
        return None


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Answer within seconds whether the Hub endpoint accepts a connection, so a cell never hangs."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _key(spec: dict) -> str:
    from importlib.metadata import version

    blob = json.dumps([spec, version("transformers"), version("torch")], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def build_tiny(name: str, spec: dict, cache: Path) -> Path:
    """Build (or reuse) the tiny model ``name`` and return its directory."""
    dest = Path(cache) / f"{name}-{_key(spec)}"
    if (dest / "config.json").exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{name}-"))
    try:
        _build_into(spec, tmp)
        try:
            os.rename(tmp, dest)
        except OSError:  # another worker won the race; its copy is identical
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def config_kwargs(spec: dict, vocab_size: int, token_ids: dict) -> dict:
    """Return the keywords of ``AutoConfig.for_model``: the defaults, the tokenizer's size and ids, then ``config``.

    A composite config (``config`` has a ``text_config``, e.g. gemma3's text + vision) gets the defaults, the
    vocabulary size and the token ids in its text part, where its language model reads them.
    """
    custom = dict(spec.get("config", {}))
    base = {**DEFAULT_CONFIG, "vocab_size": vocab_size, **token_ids}
    if isinstance(custom.get("text_config"), Mapping):
        return {**token_ids, **custom, "text_config": {**base, **custom["text_config"]}}
    return {**base, **custom}


def _build_into(spec: dict, dest: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizers.build(spec.get("tokenizer", "llama2-chat"), dest)
    tok = AutoTokenizer.from_pretrained(dest)
    ids = dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
               pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    config = AutoConfig.for_model(spec["arch"], **config_kwargs(spec, len(tok), ids))
    torch.manual_seed(int(spec.get("seed", 0)))
    # An encoder-decoder arch (t5, bart) is built with its LM head, one with a vision tower (gemma3) as an
    # image-text-to-text model; everything else is a causal LM.
    if getattr(config, "is_encoder_decoder", False):
        auto = AutoModelForSeq2SeqLM
    elif getattr(config, "vision_config", None) is not None:
        from transformers import AutoModelForImageTextToText  # not in old releases: imported only here

        auto = AutoModelForImageTextToText
    else:
        auto = AutoModelForCausalLM
    model = auto.from_config(config)
    model.save_pretrained(dest, safe_serialization=True)
