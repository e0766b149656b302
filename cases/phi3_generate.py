"""Phi-3 generation with the KV cache: native code vs. the Phi-3 hub repo's remote code.

Symptom (field report shared/seeds/000_*.txt, transformers 4.56.2 + torch 2.8.0): every
``model.generate()`` of microsoft/Phi-3-mini-4k-instruct loaded with ``trust_remote_code=True``
raised ``AttributeError: 'DynamicCache' object has no attribute 'seen_tokens'``; loading it with
``trust_remote_code=False`` (transformers' own Phi-3, native since 4.40) fixed it.

Variants (all on a tiny Phi-3; each generates 8 tokens greedily with ``use_cache=True``, checks the
returned cache holds every position but the last token, and that the tokens equal a
``use_cache=False`` run, so a pass means the KV cache really works):
- ``native``: ``trust_remote_code=False``.
- ``remote_code``: the model folder gets ``configuration_phi3.py`` / ``modeling_phi3.py`` and an
  ``auto_map`` in config.json, and is loaded with ``trust_remote_code=True`` as the hub repo is.
  The remote ``Phi3ForCausalLM`` subclasses transformers' own Phi-3 and replaces
  ``prepare_inputs_for_generation`` with the hub code's logic: on a ``Cache`` it reads
  ``get_seq_length()``, then ``seen_tokens``, then ``get_max_length()`` (the standard
  transformers 4.38-era pattern the hub file copied), crops the unprocessed tokens and rebuilds
  position ids from the attention mask. generate() calls it before every forward, so this is the
  first place a missing Cache API shows.
- ``remote_seen_tokens``: the same remote code without the ``get_max_length()`` line, so the cell
  answers exactly "does this release still have ``DynamicCache.seen_tokens``?".

Findings (wheels read, then runs on CPU with torch 2.13.0, and 4.56.2 with torch 2.8.0):
- ``Cache.get_max_length()`` was deprecated in 4.47 (for ``get_max_cache_shape``) and removed in
  4.49.0. ``Cache.seen_tokens`` (deprecated since 4.39, "will be removed in v4.41") survived until
  4.53.3 and went with the cache refactor in 4.54.0 (with ``get_usable_length``, which the hub's
  forward also called). Later 5.x releases re-add an unrelated ``get_max_length()`` returning -1.
- So the hub code fails on more releases than the report thought: ``remote_code`` passes on
  4.47-4.48, fails with ``AttributeError: 'DynamicCache' object has no attribute 'get_max_length'``
  on 4.49-4.53 (transformers#36071) and with the report's ``seen_tokens`` error from 4.54 on
  (5.x included). ``remote_seen_tokens`` passes up to 4.53 and fails with the report's text from
  4.54 on. ``native`` passes everywhere.
- The real hub repo hits one more break on 5.x before generating: its ``_init_rope`` reads
  ``config.rope_scaling["type"]``, and in v5 ``rope_scaling`` aliases the always-filled
  ``rope_parameters``, so loading fails with ``KeyError: 'type'``. That is field report 003's
  issue, with a case of its own; it is left out here so this case keeps to the cache.
- On the real ``phi3-mini`` checkpoint (pinned revision; GPU combos with the Hub), ``native`` loads
  it with ``trust_remote_code=False`` and ``remote_code`` with ``trust_remote_code=True``, running
  the repo's own modeling file; ``remote_seen_tokens`` only exists for the tiny model.

Upstream:
- https://github.com/huggingface/transformers/issues/32855 (``seen_tokens`` deprecation, cited by the report)
- https://github.com/huggingface/transformers/issues/36071 (Phi-3 remote code:
  ``'DynamicCache' object has no attribute 'get_max_length'``, 4.49)
- https://github.com/oreilly-japan/hands-on-llm-ja/issues/5 (``seen_tokens`` with Phi-3 hub code on
  4.56.2; fixed by ``trust_remote_code=False``)
"""

from __future__ import annotations

import json
import shutil

from ftcompat.harness import record, setup, step

DEFAULT_MODELS = ["tiny-phi3"]

PROMPT = "Hello world, tell me a story about"
NEW_TOKENS = 8

REMOTE_CONFIGURATION = '''\
"""Phi-3 configuration for the remote-code variant: transformers' own, under the hub's file name."""
from transformers import Phi3Config as _NativePhi3Config


class Phi3Config(_NativePhi3Config):
    model_type = "phi3"
'''

# Written for ftcompat after the hub repo's behaviour (not copied from it): the generation-input
# preparation is what matters for the cache, the rest is transformers' native Phi-3.
REMOTE_MODELING = '''\
"""Phi-3 remote code that prepares generation inputs the way the 2024 hub repo's code did."""
from transformers.cache_utils import Cache
from transformers.models.phi3.modeling_phi3 import Phi3ForCausalLM as _NativePhi3ForCausalLM

from .configuration_phi3 import Phi3Config


class Phi3ForCausalLM(_NativePhi3ForCausalLM):
    config_class = Phi3Config

    def prepare_inputs_for_generation(self, input_ids, past_key_values=None, attention_mask=None,
                                      inputs_embeds=None, **kwargs):
        if past_key_values is not None:
            if isinstance(past_key_values, Cache):
                cache_length = past_key_values.get_seq_length()
                past_length = past_key_values.seen_tokens
                max_cache_length = @MAX_CACHE_LENGTH@
            else:
                cache_length = past_length = past_key_values[0][0].shape[2]
                max_cache_length = None
            # Keep only the tokens the cache has not seen yet.
            if attention_mask is not None and attention_mask.shape[1] > input_ids.shape[1]:
                input_ids = input_ids[:, -(attention_mask.shape[1] - past_length):]
            elif past_length < input_ids.shape[1]:
                input_ids = input_ids[:, past_length:]
            if (max_cache_length is not None and attention_mask is not None
                    and cache_length + input_ids.shape[1] > max_cache_length):
                attention_mask = attention_mask[:, -max_cache_length:]
        position_ids = kwargs.get("position_ids")
        if attention_mask is not None and position_ids is None:
            position_ids = attention_mask.long().cumsum(-1) - 1
            position_ids.masked_fill_(attention_mask == 0, 1)
            if past_key_values:
                position_ids = position_ids[:, -input_ids.shape[1]:]
        if inputs_embeds is not None and past_key_values is None:
            model_inputs = {"inputs_embeds": inputs_embeds}
        else:
            model_inputs = {"input_ids": input_ids}
        model_inputs.update(position_ids=position_ids, past_key_values=past_key_values,
                            use_cache=kwargs.get("use_cache"), attention_mask=attention_mask)
        return model_inputs
'''

AUTO_MAP = {
    "AutoConfig": "configuration_phi3.Phi3Config",
    "AutoModelForCausalLM": "modeling_phi3.Phi3ForCausalLM",
}


def _cache_facts(cache):
    """Describe a returned cache without assuming which Cache API this release has."""
    if cache is None:
        return {"cache_type": None, "cache_len": None}
    if hasattr(cache, "get_seq_length"):
        length = int(cache.get_seq_length())
    else:  # legacy tuple of (key, value) per layer
        length = int(cache[0][0].shape[-2])
    return {"cache_type": type(cache).__name__, "cache_len": length}


def _generate_and_check(model_dir, trust_remote_code):
    """Load, generate greedily with and without the KV cache, and check both agree."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with step("AutoTokenizer.from_pretrained"):
        tok = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    with step("AutoModelForCausalLM.from_pretrained"):
        model = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    model.eval()
    cls = type(model)
    record(model_class=f"{cls.__module__}.{cls.__qualname__}")

    # Only what a causal LM takes: some tokenizer releases also return token_type_ids.
    enc = {k: v for k, v in tok(PROMPT, return_tensors="pt").items() if k in ("input_ids", "attention_mask")}
    prompt_len = enc["input_ids"].shape[1]
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    gen_kwargs = dict(
        max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=pad_id
    )

    torch.manual_seed(0)
    with step("model.generate(use_cache=True)"), torch.no_grad():
        cached = model.generate(**enc, use_cache=True, return_dict_in_generate=True, **gen_kwargs)
    seq_cached = cached.sequences[0].tolist()
    facts = _cache_facts(getattr(cached, "past_key_values", None))
    record(prompt_tokens=prompt_len, cached_tokens=len(seq_cached) - prompt_len, **facts)

    with step("model.generate(use_cache=False)"), torch.no_grad():
        plain = model.generate(**enc, use_cache=False, **gen_kwargs)
    seq_plain = plain[0].tolist()

    new = len(seq_cached) - prompt_len
    assert new == NEW_TOKENS, f"generate(use_cache=True) produced {new} new tokens, expected {NEW_TOKENS}"
    assert facts["cache_len"] is not None, "generate(use_cache=True) returned no past_key_values"
    # The cache holds every position but the last generated token (which was never fed back).
    assert facts["cache_len"] == len(seq_cached) - 1, (
        f"KV cache holds {facts['cache_len']} positions after generating {len(seq_cached)} tokens, "
        f"expected {len(seq_cached) - 1}"
    )
    first_diff = next((i for i, (a, b) in enumerate(zip(seq_cached, seq_plain, strict=False)) if a != b), None)
    assert seq_cached == seq_plain, (
        f"greedy generation with the KV cache differs from without it at position {first_diff}: "
        f"{seq_cached[prompt_len:]} vs {seq_plain[prompt_len:]}"
    )
    record(new_tokens=seq_cached[prompt_len:])


def test_native(model):
    """Native Phi-3 (trust_remote_code=False) generates with the KV cache, same tokens as without it."""
    _generate_and_check(model.path, trust_remote_code=False)


def _remote_copy(model, tmp_path, max_cache_length: str):
    """Copy the model beside Phi-3-style remote code and point config.json's auto_map at it."""
    with setup("write remote-code model folder"):
        dest = tmp_path / "phi3_remote"
        shutil.copytree(model.path, dest)
        (dest / "configuration_phi3.py").write_text(REMOTE_CONFIGURATION)
        modeling = REMOTE_MODELING.replace("@MAX_CACHE_LENGTH@", max_cache_length)
        (dest / "modeling_phi3.py").write_text(modeling)
        config = json.loads((dest / "config.json").read_text())
        config["auto_map"] = AUTO_MAP
        (dest / "config.json").write_text(json.dumps(config, indent=2))
    return dest


def test_remote_code(model, tmp_path):
    """Phi-3 hub-style remote code (auto_map, trust_remote_code=True) generates with the KV cache."""
    if not model.is_tiny:  # the real checkpoint brings its own remote code: run exactly that
        _generate_and_check(model.path, trust_remote_code=True)
        return
    _generate_and_check(_remote_copy(model, tmp_path, "past_key_values.get_max_length()"), True)


def test_remote_seen_tokens(model, tmp_path):
    """The same remote code reading only seen_tokens: does this release's DynamicCache still have it."""
    if not model.is_tiny:
        import pytest

        pytest.skip("isolates seen_tokens with ftcompat's own remote code; real checkpoints run remote_code")
    _generate_and_check(_remote_copy(model, tmp_path, "None"), True)
