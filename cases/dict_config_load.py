"""QLoRA training worker on a local Llama-3.2 directory: ``'dict' object has no attribute 'model_type'``.

Symptom (field report shared/seeds/002_*.txt, https://github.com/huggingface/transformers/issues/42374): a worker loads
a local download of ``meta-llama/Llama-3.2-3B`` the usual QLoRA way (config through ``CONFIG_MAPPING["llama"]`` /
``AutoConfig``, ``AutoModelForCausalLM.from_pretrained(path, config=..., quantization_config=4-bit)``, then the
tokenizer and a processor from the same directory) and fails with that error on transformers 4.57.2. The author blamed
4-bit quantization; each cell's steps show which call really raises. Variants, each passing when every call in it
succeeds:
* ``qlora_worker_flow``: the report's flow, 4-bit (skipped where this combo cannot run 4-bit here).
* ``unquantized_worker_flow``: the same without quantization.
* ``processor_alone``: ``AutoProcessor.from_pretrained(path)``.
* ``tokenizer_without_config_json``: the control, the same tokenizer files from a directory without ``config.json``.
Emulation: the tiny model's ``config.json`` is restamped with the real checkpoint's ``transformers_version``
(``4.45.0.dev0``) and its tokenizer has a Llama-3-sized vocabulary: the failing check reads both. Fix, cause and
measured range: docs/findings/dict_config_load.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ftcompat.harness import record, setup, step

# What a local meta-llama/Llama-3.2-3B download's config.json has where it matters to the bug: the transformers
# version it was saved with (Llama 3.2 was released saved by a 4.45 dev build) and the model type; shapes stay tiny.
LLAMA32_CONFIG_FIELDS = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "transformers_version": "4.45.0.dev0",
}


def _local_llama32_dir(model, tmp_path: Path, monkeypatch) -> str:
    """Lay out ``data/models/meta-llama/Llama-3.2-3B`` like a local download of the real model.

    Returns it relative to the working directory, as the report's worker passes it (messages quoting it stay stable).
    """
    src = Path(model.path)
    monkeypatch.chdir(tmp_path)
    dest = Path("data", "models", "meta-llama", "Llama-3.2-3B")
    dest.mkdir(parents=True)
    for f in src.iterdir():
        if f.name != "config.json":
            os.symlink(f, dest / f.name)
    config = json.loads((src / "config.json").read_text())
    config.update(LLAMA32_CONFIG_FIELDS)
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    return str(dest)


def _auto_processor(path: str):
    """AutoProcessor.from_pretrained on the model directory."""
    from transformers import AutoProcessor

    with step("AutoProcessor.from_pretrained"):
        proc = AutoProcessor.from_pretrained(path)
    record(processor_class=type(proc).__name__)
    return proc


def _load_config(path: str):
    """The worker's config steps: CONFIG_MAPPING by the project's model_type, and AutoConfig."""
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    with step('CONFIG_MAPPING["llama"].from_pretrained'):
        config = CONFIG_MAPPING["llama"].from_pretrained(path)
    with step("AutoConfig.from_pretrained"):
        auto = AutoConfig.from_pretrained(path)
    assert type(config) is type(auto), f"CONFIG_MAPPING gave {type(config).__name__}, AutoConfig {type(auto).__name__}"
    assert config.model_type == "llama", f"config.model_type is {config.model_type!r}, not 'llama'"
    record(config_class=type(config).__name__)
    return config


def _load_tokenizer_and_processor(path: str) -> None:
    """The worker's last steps: tokenizer and processor from the model directory."""
    from transformers import AutoTokenizer

    with step("AutoTokenizer.from_pretrained"):
        tok = AutoTokenizer.from_pretrained(path)
    record(tokenizer_class=type(tok).__name__, tokenizer_vocab_size=tok.vocab_size, tokenizer_len=len(tok))
    assert tok.vocab_size > 100_000, f"tokenizer vocab_size {tok.vocab_size} is not Llama-3-sized"
    proc = _auto_processor(path)
    ids = proc("The quick brown fox")["input_ids"]
    assert ids == tok("The quick brown fox")["input_ids"], f"processor ids {ids} differ from tokenizer's"


def test_qlora_worker_flow(model, device, tmp_path, monkeypatch):
    """The report's flow: config, 4-bit from_pretrained(config=...), tokenizer, processor."""
    from ftcompat.harness.quant import bnb_config, require_4bit

    with setup("lay out a local Llama-3.2-3B directory"):
        path = _local_llama32_dir(model, tmp_path, monkeypatch)
    require_4bit(model.path)
    config = _load_config(path)
    from transformers import AutoModelForCausalLM

    with step("AutoModelForCausalLM.from_pretrained(config=, quantization_config=4bit)"):
        m = AutoModelForCausalLM.from_pretrained(
            path, config=config, quantization_config=bnb_config(), device_map={"": device}
        )
    n4 = sum(1 for p in m.parameters() if type(p).__name__ == "Params4bit")
    record(model_config_type=type(m.config).__name__, params_4bit=n4)
    assert not isinstance(m.config, dict), "model.config is a dict after the 4-bit load"
    assert m.config.model_type == "llama", f"model.config.model_type is {m.config.model_type!r}"
    assert n4 > 0, "no weight was quantized to 4-bit"
    _load_tokenizer_and_processor(path)


def test_unquantized_worker_flow(model, device, tmp_path, monkeypatch):
    """Same flow without quantization, so the tokenizer/processor steps run where 4-bit cannot."""
    with setup("lay out a local Llama-3.2-3B directory"):
        path = _local_llama32_dir(model, tmp_path, monkeypatch)
    config = _load_config(path)
    from transformers import AutoModelForCausalLM

    with step("AutoModelForCausalLM.from_pretrained(config=)"):
        m = AutoModelForCausalLM.from_pretrained(path, config=config, device_map={"": device})
    record(model_config_type=type(m.config).__name__)
    assert not isinstance(m.config, dict), "model.config is a dict after the load"
    assert m.config.model_type == "llama", f"model.config.model_type is {m.config.model_type!r}"
    _load_tokenizer_and_processor(path)


def test_processor_alone(model, tmp_path, monkeypatch):
    """AutoProcessor.from_pretrained on the directory by itself, as VLM-style loaders call it."""
    with setup("lay out a local Llama-3.2-3B directory"):
        path = _local_llama32_dir(model, tmp_path, monkeypatch)
    proc = _auto_processor(path)
    ids = proc("The quick brown fox")["input_ids"]
    assert len(ids) > 1, f"processor gave {ids} for a 4-word prompt"


def test_tokenizer_without_config_json(model, tmp_path):
    """Control: the same tokenizer files in a directory with no config.json load on every release."""
    from transformers import AutoTokenizer

    with setup("copy the tokenizer files alone"):
        src = Path(model.path)
        dest = tmp_path / "tokenizer-only"
        dest.mkdir()
        for f in src.iterdir():
            if f.name.startswith(("tokenizer", "special_tokens")):
                os.symlink(f, dest / f.name)
    with step("AutoTokenizer.from_pretrained"):
        tok = AutoTokenizer.from_pretrained(dest)
    record(tokenizer_vocab_size=tok.vocab_size)
    assert tok.vocab_size > 100_000, f"tokenizer vocab_size {tok.vocab_size} is not Llama-3-sized"
