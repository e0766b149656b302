"""Handoff: a LoRA adapter saved by one peft (the training environment) and loaded by another (serving).

``PeftModel.from_pretrained`` rebuilds the adapter's ``LoraConfig`` from every key of ``adapter_config.json``,
and a newer peft writes keys an older one's ``LoraConfig`` does not take, so the serving side can fail with
``TypeError: LoraConfig.__init__() got an unexpected keyword argument '...'``
(https://github.com/huggingface/peft/issues/2275, https://github.com/huggingface/peft/pull/2340; peft#2038 made
configs forward compatible, which helps only the peft that has it). Each variant's producer gives the tiny Llama a LoRA
(r=4 on q_proj and v_proj) with non-zero B matrices and saves it with ``save_pretrained``; its consumer,
in the other environment, loads it onto the same tiny model:
* ``lora_adapter``: ``PeftModel.from_pretrained(base, folder)`` on the folder exactly as saved.
* ``lora_adapter_trimmed_config``: the twin, the workaround users apply: keys the loading peft's
  ``LoraConfig`` does not take are dropped from a copy of ``adapter_config.json`` first (the dropped keys
  are recorded).
Pass: it loads, every saved LoRA tensor is loaded unchanged, and the adapter changes the logits.
Boundaries, both directions, exact errors: docs/findings/lora_adapter_handoff.md.
"""

import json

from ftcompat.harness import kit, record, setup, step

_TARGETS = ["q_proj", "v_proj"]


def _save(model, folder):
    """Save a LoRA adapter with non-zero B matrices into ``folder``; record what its config holds."""
    import peft
    import torch
    from peft import LoraConfig, get_peft_model

    with setup("tiny model with a LoRA whose B matrices are not zero"):
        lm, _ = kit.load(model)
        wrapped = get_peft_model(lm, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=_TARGETS,
                                                task_type="CAUSAL_LM"))
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name, param in wrapped.named_parameters():
                if "lora_B" in name:  # B starts at zero: an adapter that was never trained changes nothing
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
    with step("PeftModel.save_pretrained(folder)"):
        wrapped.save_pretrained(str(folder))
    config = json.loads((folder / "adapter_config.json").read_text())
    record(saved_by_peft=peft.__version__, saved_config_keys=sorted(config))


def _load(model, folder, tmp_path, trim: bool):
    """Load the adapter in ``folder`` with this environment's peft and check it is the one saved."""
    import shutil

    import peft
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model_state_dict
    from safetensors.torch import load_file

    with setup("base model, the saved tensors" + (", a copy of the config without unknown keys" if trim else "")):
        base, tok = kit.load(model)
        saved = load_file(str(folder / "adapter_model.safetensors"))
        path = folder
        dropped: list[str] = []
        if trim:
            path = tmp_path / "adapter"
            shutil.copytree(folder, path)
            config = json.loads((path / "adapter_config.json").read_text())
            known = kit.accepted(LoraConfig)
            dropped = sorted(k for k in config if k not in known)
            (path / "adapter_config.json").write_text(json.dumps({k: v for k, v in config.items() if k in known}))
        inputs = {k: v for k, v in tok(["the cat sat on the mat"], return_tensors="pt").items()
                  if k in ("input_ids", "attention_mask")}  # 4.4x's generic tokenizer adds token_type_ids
        with torch.no_grad():
            plain = base(**inputs).logits
    record(loaded_by_peft=peft.__version__, dropped_keys=dropped)
    with step("PeftModel.from_pretrained(base, folder)"):
        loaded = PeftModel.from_pretrained(base, str(path))
    got = get_peft_model_state_dict(loaded)
    missing = sorted(set(saved) - set(got))
    changed = sorted(k for k in saved if k in got and not torch.equal(saved[k], got[k].to(saved[k].dtype)))
    with torch.no_grad():
        adapted = loaded(**inputs).logits
    moved = float((adapted - plain).abs().max())
    record(saved_tensors=len(saved), missing_tensors=missing[:5], changed_tensors=changed[:5],
           logits_max_change=moved)
    assert not missing and not changed, (f"{len(missing)} saved LoRA tensors not loaded, {len(changed)} loaded "
                                         f"with other values (of {len(saved)}): {(missing + changed)[:3]}")
    assert moved > 1e-6, f"the loaded adapter does not change the logits (max change {moved:g})"


def produce_lora_adapter(model, device, handoff):
    """Save the adapter as peft writes it."""
    _save(model, handoff)


def test_lora_adapter(model, device, handoff, tmp_path):
    """PeftModel.from_pretrained on the adapter folder exactly as the other environment saved it."""
    _load(model, handoff, tmp_path, trim=False)


def produce_lora_adapter_trimmed_config(model, device, handoff):
    """Save the adapter as peft writes it."""
    _save(model, handoff)


def test_lora_adapter_trimmed_config(model, device, handoff, tmp_path):
    """The workaround: drop the config keys this peft's LoraConfig does not take, then load."""
    _load(model, handoff, tmp_path, trim=True)
