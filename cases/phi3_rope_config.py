"""Phi-3 hub-era remote code on a config.json with ``"rope_scaling": null``: where does it break?

Symptom (field report shared/seeds/003_*.txt, issue 1a): loading microsoft/Phi-3-mini with
``trust_remote_code=True`` on a new transformers raised ``KeyError: 'type'`` from the hub's
``modeling_phi3.py`` (``self.config.rope_scaling["type"]``); the user patched the cached file. The
report blamed "the new config format" (``rope_type`` instead of ``type``), but the hub's
config.json for the 4k models says ``"rope_scaling": null`` and the hub code reads ``["type"]``
only when ``rope_scaling is not None`` - so the question is why it is not None any more.

Setup: the tiny Phi-3 is copied and its config.json rewritten the way the hub's 2024 config is
shaped (``"rope_scaling": null``, ``"rope_theta": 10000.0``, no ``rope_parameters``, an
``auto_map``), beside remote code written for ftcompat: ``Phi3ForCausalLM`` subclasses
transformers' native Phi-3 and, while it is constructed, makes the hub code's rope-init decision
(plain rotary embeddings if ``self.config.rope_scaling is None``, else dispatch on
``self.config.rope_scaling["type"]``). Steps: ``AutoConfig.from_pretrained`` (the cell records what
``config.rope_scaling`` looks like there), ``AutoModelForCausalLM.from_pretrained``, ``generate``.
Variants:
- ``remote_code``: the remote ``Phi3Config`` is transformers' native one under the hub file name.
- ``remote_hub_config``: the remote ``Phi3Config`` is a bare ``PretrainedConfig`` subclass written
  like the hub's (stores ``rope_theta`` / ``rope_scaling`` itself and validates ``rope_scaling``
  before calling ``super().__init__``), so config loading runs the hub config's own checks.
- ``native``: control, the same folder loaded with ``trust_remote_code=False``.

Findings (the ten ready envs plus 4.57.6, CPU): on 4.47.1-4.57.6 ``config.rope_scaling`` stays
``None``, the remote code takes the plain-rotary branch and both remote variants pass. From 5.0.0
(through 5.23.0) ``PretrainedConfig.rope_scaling`` is a property aliasing ``rope_parameters``, which
config init fills from ``rope_theta`` even though config.json says null (``{'rope_theta': 10000.0,
'rope_type': 'default', ...}``: it has ``rope_type``, never ``type``). Config loading still passes
(the hub-style validation runs before ``super().__init__`` and still sees None), and the ``KeyError:
'type'`` is raised inside ``AutoModelForCausalLM.from_pretrained`` while the model is constructed -
before any weight or generate. So the report's fix (``.get("type") or .get("rope_type")`` and
treating ``"default"`` as plain rotary) is the right one, but its diagnosis (a changed hub config)
is not: the file did not change, transformers did. ``native`` passes everywhere.

Upstream: transformers v5 made ``rope_scaling`` an alias of the always-filled ``rope_parameters``
(MIGRATION_GUIDE_V5); the same break in other remote-code consumers:
https://github.com/sgl-project/sglang/pull/14772 (rope_scaling null in config.json becomes a
non-empty dict on v5), https://github.com/huggingface/transformers/pull/42390 (BC properties for
custom models still using ``rope_scaling`` / ``rope_theta``).
"""

from __future__ import annotations

import json
import shutil

from ftcompat.harness import record, setup, step

DEFAULT_MODELS = ["tiny-phi3"]

NATIVE_CONFIGURATION = '''\
"""Phi-3 configuration for the remote-code variant: transformers' own, under the hub's file name."""
from transformers import Phi3Config as _NativePhi3Config


class Phi3Config(_NativePhi3Config):
    model_type = "phi3"
'''

# Written for ftcompat after the hub config's behaviour (attributes set, then rope_scaling checked,
# then the base __init__), not copied from it.
HUB_CONFIGURATION = '''\
"""Phi-3 configuration shaped like the 2024 hub file: a bare PretrainedConfig subclass."""
from transformers import PretrainedConfig


class Phi3Config(PretrainedConfig):
    model_type = "phi3"

    def __init__(self, vocab_size=32064, hidden_size=3072, intermediate_size=8192,
                 num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=None,
                 resid_pdrop=0.0, embd_pdrop=0.0, attention_dropout=0.0, hidden_act="silu",
                 max_position_embeddings=4096, original_max_position_embeddings=4096,
                 initializer_range=0.02, rms_norm_eps=1e-5, use_cache=True,
                 tie_word_embeddings=False, rope_theta=10000.0, rope_scaling=None,
                 bos_token_id=1, eos_token_id=32000, pad_token_id=32000, sliding_window=None,
                 **kwargs):
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        self.intermediate_size, self.num_hidden_layers = intermediate_size, num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads or num_attention_heads
        self.resid_pdrop, self.embd_pdrop = resid_pdrop, embd_pdrop
        self.attention_dropout, self.hidden_act = attention_dropout, hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.original_max_position_embeddings = original_max_position_embeddings
        self.initializer_range, self.rms_norm_eps = initializer_range, rms_norm_eps
        self.use_cache, self.sliding_window = use_cache, sliding_window
        self.rope_theta = rope_theta
        self.rope_scaling = rope_scaling
        self.rope_scaling_seen_by_validation = repr(self.rope_scaling)
        if self.rope_scaling is not None and "type" not in self.rope_scaling:
            raise ValueError(f"`rope_scaling` must have a `type` field, got {self.rope_scaling}")
        super().__init__(bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                         pad_token_id=pad_token_id, tie_word_embeddings=tie_word_embeddings, **kwargs)
'''

# Written for ftcompat: only the hub code's rope-init decision, made while the model is built.
REMOTE_MODELING = '''\
"""Phi-3 remote code that picks its rotary embedding the way the 2024 hub repo's code did."""
from transformers.models.phi3.modeling_phi3 import Phi3ForCausalLM as _NativePhi3ForCausalLM

from .configuration_phi3 import Phi3Config


class Phi3ForCausalLM(_NativePhi3ForCausalLM):
    config_class = Phi3Config

    def __init__(self, config):
        super().__init__(config)
        if self.config.rope_scaling is None:
            self.hub_rope_choice = "plain"
        else:
            scaling_type = self.config.rope_scaling["type"]
            if scaling_type not in ("su", "longrope", "yarn"):
                raise ValueError(f"Unknown RoPE scaling type {scaling_type}")
            self.hub_rope_choice = scaling_type
'''

AUTO_MAP = {
    "AutoConfig": "configuration_phi3.Phi3Config",
    "AutoModelForCausalLM": "modeling_phi3.Phi3ForCausalLM",
}


def _hub_shaped_copy(model, tmp_path, configuration: str | None):
    """Copy the model with a 2024-hub-shaped config.json (rope_scaling null) and remote code."""
    with setup("write hub-shaped model folder"):
        dest = tmp_path / "phi3_hub"
        shutil.copytree(model.path, dest)
        config = json.loads((dest / "config.json").read_text())
        for key in ("rope_parameters", "rope_scaling", "rope_theta", "partial_rotary_factor"):
            config.pop(key, None)
        config.update(rope_scaling=None, rope_theta=10000.0, transformers_version="4.40.2")
        if configuration is not None:
            config["auto_map"] = AUTO_MAP
            (dest / "configuration_phi3.py").write_text(configuration)
            (dest / "modeling_phi3.py").write_text(REMOTE_MODELING)
        (dest / "config.json").write_text(json.dumps(config, indent=2))
    return dest


def _load_and_generate(model_dir, trust_remote_code):
    """Load config, model and tokenizer as a user would, then generate a few tokens."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    with step("AutoConfig.from_pretrained"):
        config = AutoConfig.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    record(
        config_class=f"{type(config).__module__}.{type(config).__qualname__}",
        rope_scaling_after_config_load=repr(getattr(config, "rope_scaling", "<no attribute>")),
        rope_parameters=repr(getattr(config, "rope_parameters", "<no attribute>")),
        rope_scaling_seen_by_validation=getattr(config, "rope_scaling_seen_by_validation", None),
    )
    with step("AutoModelForCausalLM.from_pretrained"):
        model = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    record(hub_rope_choice=getattr(model, "hub_rope_choice", None))
    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = tok("Hello world", return_tensors="pt")["input_ids"]
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    with step("model.generate"), torch.no_grad():
        out = model.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False, pad_token_id=pad_id)
    new = out.shape[1] - ids.shape[1]
    assert new == 4, f"generate produced {new} new tokens, expected 4"
    return model


def test_remote_code(model, tmp_path):
    """Hub-style remote code (native config class) loads and generates on a rope_scaling-null config."""
    loaded = _load_and_generate(_hub_shaped_copy(model, tmp_path, NATIVE_CONFIGURATION), True)
    assert loaded.hub_rope_choice == "plain", f"hub rope choice {loaded.hub_rope_choice!r}, expected 'plain'"


def test_remote_hub_config(model, tmp_path):
    """The same with a hub-shaped PretrainedConfig subclass as the remote configuration."""
    loaded = _load_and_generate(_hub_shaped_copy(model, tmp_path, HUB_CONFIGURATION), True)
    assert loaded.hub_rope_choice == "plain", f"hub rope choice {loaded.hub_rope_choice!r}, expected 'plain'"


def test_native(model, tmp_path):
    """Control: transformers' own Phi-3 (trust_remote_code=False) on the same config.json."""
    _load_and_generate(_hub_shaped_copy(model, tmp_path, None), False)
