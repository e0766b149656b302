"""Phi-3 generation with the KV cache: transformers' own Phi-3 vs. the hub repo's remote code.

Symptom (field report shared/seeds/000_*.txt, transformers 4.56.2 + torch 2.8.0): ``model.generate()`` of
microsoft/Phi-3-mini-4k-instruct with ``trust_remote_code=True`` raised ``AttributeError: 'DynamicCache' object has no
attribute 'seen_tokens'`` (https://github.com/huggingface/transformers/issues/32855); ``trust_remote_code=False`` fixed
it. Variants (each loads, generates 8 tokens greedily with ``use_cache=True`` and without):
- ``native``: the twin, ``trust_remote_code=False``.
- ``remote_code``: ``trust_remote_code=True``: on the real checkpoint (GPU/Hub lane) the repo's
  ``configuration_phi3.py`` and ``modeling_phi3.py`` at the pinned revision; on the tiny model ftcompat's stand-in
  (``ftcompat.harness.standins``), a whole Phi-3 touching transformers' API as the hub file does, beside a repo-shaped
  config.json (``rope_scaling: null``, ``sliding_window: 2047``, ``auto_map``). The cell records which ran
  (``remote_code``); the stand-in's docstring says where it cannot match the hub file (flash and SDPA attention,
  classification heads: none reached here).
- ``remote_seen_tokens``: that remote code without its ``get_max_length()`` call (the users' first patch): does this
  release still have ``DynamicCache.seen_tokens``, and does the rest of the hub code run?
Pass: the model loads holding the checkpoint's tensors unchanged (silently overwritten weights are a ``fail`` with the
numbers), KV-cache generation makes 8 tokens, the returned cache holds every position but the last, and the tokens equal
a ``use_cache=False`` run and (remote variants) the native model's. More links and the grid across releases:
docs/findings/phi3_generate.md.
"""

from __future__ import annotations

from ftcompat.harness import record, setup, step

PROMPT = "Hello world, tell me a story about"
NEW_TOKENS = 8
# The user's first fix: drop the call that transformers 4.49 removed.
WITHOUT_GET_MAX_LENGTH = {"max_cache_length = past_key_values.get_max_length()": "max_cache_length = None"}


def _cache_facts(cache):
    """Describe a returned cache without assuming which Cache API this release has."""
    if cache is None:
        return {"cache_type": None, "cache_len": None}
    if hasattr(cache, "get_seq_length"):
        length = int(cache.get_seq_length())
    else:  # legacy tuple of (key, value) per layer
        length = int(cache[0][0].shape[-2])
    return {"cache_type": type(cache).__name__, "cache_len": length}


def _generate(model, tok, use_cache: bool):
    """Greedy tokens for the prompt (and the returned cache with ``use_cache``)."""
    import torch

    enc = {k: v.to(model.device) for k, v in tok(PROMPT, return_tensors="pt").items()
           if k in ("input_ids", "attention_mask")}  # some tokenizer releases add token_type_ids
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    with torch.no_grad():
        out = model.generate(**enc, use_cache=use_cache, return_dict_in_generate=True, max_new_tokens=NEW_TOKENS,
                             min_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=pad_id)
    return out.sequences[0].tolist(), getattr(out, "past_key_values", None), enc["input_ids"].shape[1]


def _first_difference(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _load(model_dir, trust_remote_code: bool, device: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ftcompat.harness import weights

    with step("AutoTokenizer.from_pretrained"):
        tok = AutoTokenizer.from_pretrained(model_dir)
    with step("AutoModelForCausalLM.from_pretrained"):
        loaded = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=trust_remote_code).to(device)
    loaded.eval()
    cls = type(loaded)
    check = weights.compare(loaded, model_dir)
    record(model_class=f"{cls.__module__.split('.')[-1]}.{cls.__qualname__}", weights=check.text())
    return loaded, tok, check


def _generate_and_check(model_dir, trust_remote_code: bool, device: str, native_dir=None):
    """Load, generate with and without the KV cache, and check weights, cache and tokens."""
    loaded, tok, check = _load(model_dir, trust_remote_code, device)
    with step("model.generate(use_cache=True)"):
        cached, cache, prompt_len = _generate(loaded, tok, use_cache=True)
    facts = _cache_facts(cache)
    record(prompt_tokens=prompt_len, new_tokens=cached[prompt_len:], **facts)
    with step("model.generate(use_cache=False)"):
        plain, _, _ = _generate(loaded, tok, use_cache=False)
    problems = [] if check.ok else [check.text()]
    new = len(cached) - prompt_len
    if new != NEW_TOKENS:
        problems.append(f"generate(use_cache=True) produced {new} new tokens, expected {NEW_TOKENS}")
    if facts["cache_len"] != len(cached) - 1:  # every position but the last token, never fed back
        problems.append(f"KV cache holds {facts['cache_len']} positions after {len(cached)} tokens, "
                        f"expected {len(cached) - 1}")
    if cached != plain:
        problems.append(f"tokens with the KV cache differ from without it at position "
                        f"{_first_difference(cached, plain) - prompt_len}")
    if native_dir is not None:
        del loaded
        with step("native model, same checkpoint"):
            reference, rtok, _ = _load(native_dir, False, device)
            expected, _, _ = _generate(reference, rtok, use_cache=True)
        if cached != expected:
            problems.append(f"tokens differ from native at position {_first_difference(cached, expected) - prompt_len}")
    with step("tokens and weights checked"):
        assert not problems, "; ".join(problems)


def test_native(model, device):
    """transformers' own Phi-3 (trust_remote_code=False): loads, and generates the same with and without cache."""
    _generate_and_check(model.path, False, device)


def _remote(model, tmp_path, variant: str, patch=None):
    from ftcompat.harness import standins

    own = not model.is_tiny  # the real repo brings its own remote code
    with setup("write the repo's model folder"):
        # One folder name per variant: the remote module is named after the folder (see phi3_rope_config).
        folder = standins.phi3_folder(model.path, tmp_path / f"phi3_generate_{variant}", own_code=own,
                                      modeling_patch=patch)
    record(remote_code=standins.remote_code_origin(own, (model.spec or {}).get("revision")))
    return folder


def test_remote_code(model, tmp_path, device):
    """The repo's remote code (trust_remote_code=True) loads, generates with the KV cache, matches native."""
    _generate_and_check(_remote(model, tmp_path, "remote_code"), True, device, native_dir=model.path)


def test_remote_seen_tokens(model, tmp_path, device):
    """The same remote code without its get_max_length() call: seen_tokens and the rest of the hub code."""
    folder = _remote(model, tmp_path, "remote_seen_tokens", WITHOUT_GET_MAX_LENGTH)
    _generate_and_check(folder, True, device, native_dir=model.path)
