"""Real models load through the same path as tiny ones: a local directory stands in for the Hub."""

import pytest

from ftcompat.harness import models

pytest.importorskip("huggingface_hub")
REV = "0a67737cc96d2554230f90338b163bc6380a2a85"
SPEC = {"kind": "hub", "repo": "org/model", "revision": REV, "needs": ["network"]}


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A Hub cache holding org/model at REV, as a download would leave it."""
    cache = tmp_path / "hub"
    snap = cache / "models--org--model" / "snapshots" / REV
    snap.mkdir(parents=True)
    (snap / "config.json").write_text('{"model_type": "llama"}')
    (cache / "models--org--model" / "refs").mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return snap


def test_cached_revision_loads_without_network(hub_cache, tmp_path):
    ref = models.resolve("real", SPEC, tmp_path / "tiny")
    assert ref.kind == "hub" and ref.path == str(hub_cache)
    assert not ref.is_tiny


def test_missing_revision_offline_skips_with_reason(hub_cache, tmp_path):
    spec = {**SPEC, "revision": "1" * 40}
    with pytest.raises(pytest.skip.Exception, match="needs the Hugging Face Hub; HF_HUB_OFFLINE=1"):
        models.resolve("real", spec, tmp_path / "tiny")


def test_gated_without_token_skips(hub_cache, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(models, "_hf_token", lambda: None)
    spec = {**SPEC, "revision": "2" * 40, "gated": True}
    with pytest.raises(pytest.skip.Exception, match="is gated: set HF_TOKEN"):
        models.resolve("real", spec, tmp_path / "tiny")


def test_cuda_model_skips_on_cpu(tmp_path, monkeypatch):
    from ftcompat.harness import envinfo

    monkeypatch.setattr(envinfo, "torch_device", lambda: "cpu")
    with pytest.raises(pytest.skip.Exception, match="needs CUDA and this machine has none"):
        models.resolve("real", {**SPEC, "needs": ["network", "cuda"]}, tmp_path)


IDS = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2}


def test_tiny_config_defaults_vocab_and_ids_then_overrides():
    spec = {"kind": "tiny", "arch": "qwen3", "config": {"head_dim": 16, "hidden_size": 128}}
    kw = models.config_kwargs(spec, 498, IDS)
    assert kw == {**models.DEFAULT_CONFIG, "hidden_size": 128, "head_dim": 16, "vocab_size": 498, **IDS}


def test_tiny_composite_config_gets_defaults_vocab_and_ids_in_its_text_config():
    """gemma3 (text + vision): the language model reads its sizes and vocabulary from text_config."""
    from types import MappingProxyType

    vision = {"hidden_size": 64, "num_hidden_layers": 1}
    spec = {"kind": "tiny", "arch": "gemma3",
            "config": MappingProxyType({"text_config": {"head_dim": 16}, "vision_config": vision,
                                        "mm_tokens_per_image": 4})}
    kw = models.config_kwargs(spec, 498, IDS)
    assert kw["text_config"] == {**models.DEFAULT_CONFIG, "vocab_size": 498, **IDS, "head_dim": 16}
    assert kw["vision_config"] == vision and kw["mm_tokens_per_image"] == 4
    assert {k: kw[k] for k in IDS} == IDS
    assert not set(models.DEFAULT_CONFIG) & set(kw), "the text defaults stay out of the composite's top level"
