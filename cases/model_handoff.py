"""Handoff: a full fine-tuned model saved by one transformers (training) and loaded by another (serving).

transformers 5 writes a model's RoPE settings only inside ``rope_parameters`` in ``config.json`` (``rope_theta``
moved in, ``rope_scaling`` renamed), where transformers 4 reads the top-level ``rope_theta`` and ``rope_scaling``.
A 4.x serving stack loads such a model without a word, with its default ``rope_theta`` (10000) and no scaling,
so a fine-tune of a model whose RoPE is not the default (Llama 3's 500000 with ``llama3`` scaling, Qwen3's
1000000) gives other logits there than where it was trained (https://github.com/marin-community/marin/issues/7146,
https://github.com/vllm-project/vllm/pull/44158). Each producer gives the tiny model the RoPE settings of the
real model it stands for (tiny-llama: Llama 3.2's, untied embeddings; tiny-qwen3: Qwen3-1.7B's, tied
embeddings), fine-tunes it 3 AdamW steps on fixed ids, saves it with ``save_pretrained`` (safetensors) and
records its logits on those ids; its consumer, in the other environment, loads the folder with
``AutoModelForCausalLM.from_pretrained`` (no tokenizer: ``tokenizer_handoff`` is that artifact):
* ``full_model``: the folder exactly as saved.
* ``full_model_legacy_rope``: the twin, the workaround: a copy whose ``config.json`` also carries the legacy
  top-level ``rope_theta`` (and ``rope_scaling`` for a scaled RoPE) read from ``rope_parameters``, where it
  has them only there; what was added is recorded.
Pass: it loads and its logits equal the producer's (max abs difference <= 1e-4), with the embeddings tied
exactly where they were. Boundaries, both directions, the numbers: docs/findings/model_handoff.md.
"""

import json

from ftcompat.harness import record, setup, step

# The RoPE settings (legacy config.json spelling, which every release reads) of the real model each
# tiny architecture stands for, with its context length: Llama 3.2 1B and Qwen3-1.7B.
_ROPE = {
    "llama": {"rope_theta": 500000.0, "max_position_embeddings": 131072,
              "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                               "original_max_position_embeddings": 8192, "rope_type": "llama3"}},
    "qwen3": {"rope_theta": 1000000.0, "max_position_embeddings": 40960},
}
_TOLERANCE = 1e-4


def _rope_of(config) -> dict:
    """The RoPE settings a loaded config holds, in the spelling this transformers reads: the top-level
    ``rope_theta`` and ``rope_scaling`` (4.x, which keeps an unknown ``rope_parameters`` unread), else
    ``rope_parameters`` (5.x)."""
    theta = getattr(config, "rope_theta", None)
    if theta is not None:
        return {"rope_theta": theta, **(getattr(config, "rope_scaling", None) or {})}
    return dict(getattr(config, "rope_parameters", None) or {})


def _tied(lm) -> bool:
    return lm.get_output_embeddings().weight.data_ptr() == lm.get_input_embeddings().weight.data_ptr()


def _save(model, folder):
    """Fine-tune the tiny model with its real model's RoPE settings, save it, and keep its logits."""
    import shutil
    import tempfile
    from pathlib import Path

    import torch
    import transformers
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    with setup(f"the tiny model with {model.arch}'s real RoPE settings, fine-tuned 3 steps"), \
            tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        shutil.copytree(model.path, base)
        config = json.loads((base / "config.json").read_text())
        config.pop("rope_parameters", None)  # a transformers 5 build of the tiny model: set in the legacy form
        config.update(_ROPE[model.arch])
        (base / "config.json").write_text(json.dumps(config))
        lm = AutoModelForCausalLM.from_pretrained(str(base))
        rope = _rope_of(lm.config)
        assert rope.get("rope_theta") == _ROPE[model.arch]["rope_theta"], f"the tiny model took RoPE {rope}"
        ids = torch.randint(3, lm.config.vocab_size, (2, 32), generator=torch.Generator().manual_seed(0))
        torch.manual_seed(0)
        optimizer = torch.optim.AdamW(lm.parameters(), lr=1e-2)
        lm.train()
        losses = []
        for _ in range(3):
            loss = lm(input_ids=ids, labels=ids).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(round(float(loss), 4))
        lm.eval()
        with torch.no_grad():
            logits = lm(input_ids=ids).logits.float()
    with step("model.save_pretrained(folder)"):
        lm.save_pretrained(str(folder / "model"))
    save_file({"input_ids": ids, "logits": logits.contiguous()}, str(folder / "reference.safetensors"))
    (folder / "producer.json").write_text(json.dumps({"tied": _tied(lm)}))
    saved = json.loads((folder / "model" / "config.json").read_text())
    record(saved_by_transformers=transformers.__version__, losses=losses, tied=_tied(lm), rope=rope,
           saved_rope_keys=sorted(k for k in saved if "rope" in k), saved_dtype_key=[k for k in saved if "dtype" in k],
           saved_files=sorted(p.name for p in (folder / "model").iterdir()))


def _legacy_rope(folder, dest) -> list[str]:
    """Copy ``folder`` to ``dest``, its config also carrying the top-level RoPE keys; return what was added."""
    import shutil

    shutil.copytree(folder, dest)
    config = json.loads((dest / "config.json").read_text())
    params = config.get("rope_parameters")
    added = []
    if isinstance(params, dict) and "rope_theta" in params and "rope_theta" not in config:
        config["rope_theta"] = params["rope_theta"]
        added.append("rope_theta")
        scaling = {k: v for k, v in params.items() if k != "rope_theta"}
        if scaling.get("rope_type", "default") != "default" and not config.get("rope_scaling"):
            config["rope_scaling"] = scaling
            added.append("rope_scaling")
        (dest / "config.json").write_text(json.dumps(config))
    return added


def _load(folder, tmp_path, legacy: bool):
    """Load the other environment's model folder and compare its logits with the producer's."""
    import torch
    import transformers
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    with setup("the producer's ids and logits" + (", a copy with the legacy RoPE keys" if legacy else "")):
        reference = load_file(str(folder / "reference.safetensors"))
        tied_there = json.loads((folder / "producer.json").read_text())["tied"]
        path, added = folder / "model", []
        if legacy:
            path = tmp_path / "model"
            added = _legacy_rope(folder / "model", path)
    record(loaded_by_transformers=transformers.__version__, added_keys=added)
    with step("AutoModelForCausalLM.from_pretrained(folder)"):
        lm, info = AutoModelForCausalLM.from_pretrained(str(path), output_loading_info=True)
    lm.eval()
    with torch.no_grad():
        logits = lm(input_ids=reference["input_ids"]).logits.float()
    diff = float((logits - reference["logits"]).abs().max())
    same_next = float((logits.argmax(-1) == reference["logits"].argmax(-1)).float().mean())
    rope = _rope_of(lm.config)
    record(logits_max_abs_diff=diff, logits_max_abs=float(reference["logits"].abs().max()),
           argmax_agreement=round(same_next, 4), rope=rope, tied=_tied(lm), dtype=str(lm.dtype),
           missing_keys=sorted(info.get("missing_keys", []))[:5],
           unexpected_keys=sorted(info.get("unexpected_keys", []))[:5])
    assert diff <= _TOLERANCE, (f"the loaded model's logits differ from the producer's by up to {diff:.4g} "
                                f"(argmax agrees at {same_next:.0%} of positions); RoPE loaded here: {rope}")
    assert _tied(lm) == tied_there, f"embeddings tied here: {_tied(lm)}, where the model was saved: {tied_there}"


def produce_full_model(model, device, handoff):
    """Fine-tune and save the model as this transformers writes it."""
    _save(model, handoff)


def test_full_model(model, device, handoff, tmp_path):
    """AutoModelForCausalLM.from_pretrained on the folder exactly as the other environment saved it."""
    _load(handoff, tmp_path, legacy=False)


def produce_full_model_legacy_rope(model, device, handoff):
    """Fine-tune and save the model as this transformers writes it."""
    _save(model, handoff)


def test_full_model_legacy_rope(model, device, handoff, tmp_path):
    """The workaround: the top-level rope_theta/rope_scaling back-filled from rope_parameters in a copy."""
    _load(handoff, tmp_path, legacy=True)
