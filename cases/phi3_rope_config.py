"""Phi-3 hub remote code on a config.json with ``"rope_scaling": null``: does the model still load?

Symptom (field report shared/seeds/003_*.txt, issue 1a): loading microsoft/Phi-3-mini with ``trust_remote_code=True`` on
a new transformers raised ``KeyError: 'type'`` from the hub's ``modeling_phi3.py``
(``self.config.rope_scaling["type"]``), which it reads only when ``rope_scaling is not None``, and the repo's
config.json says ``null``: what does transformers make of that null (v5 made ``rope_scaling`` an alias of the
always-filled ``rope_parameters``)? The case checks **loading only**: ``AutoConfig.from_pretrained`` (the cell records
``config.rope_scaling``), ``AutoModelForCausalLM.from_pretrained`` (the rotary set-up), then that the model holds the
checkpoint's tensors unchanged; pass: it loads with its weights (generating is ``phi3_generate``'s ``remote_code``).
Variants:
- ``native``: the control, transformers' own Phi-3 (``trust_remote_code=False``) on the same folder.
- ``remote_loads``: the repo's remote ``configuration_phi3.py`` and ``modeling_phi3.py`` (the real ones at the pinned
  revision on the GPU/Hub lane; on the tiny model ftcompat's stand-in, ``ftcompat.harness.standins``); the cell records
  which ran.
- ``remote_native_config_loads``: the same with transformers' own ``Phi3Config`` under the hub file's name, as some
  forks ship.
- ``remote_rope_fix_loads``: the repo's code with the report's own fix appended (read ``type``, else ``rope_type``;
  ``default`` is plain rotary): without the ``KeyError``, does it load with its weights?
Same break elsewhere (e.g. https://github.com/sgl-project/sglang/pull/14772), more links, the grid:
docs/findings/phi3_rope_config.md.
"""

from __future__ import annotations

from ftcompat.harness import record, setup, step

# Field report 003's fix as its author applied it to the cached modeling file, appended to the remote code that runs.
REPORT_ROPE_FIX = """

def _ftcompat_report_003_init_rope(self):
    scaling = self.config.rope_scaling
    kind = None if scaling is None else (scaling.get("type") or scaling.get("rope_type", "default"))
    if kind in (None, "default"):
        self.rotary_emb = Phi3RotaryEmbedding(self.head_dim, max_position_embeddings=self.max_position_embeddings,
                                              base=self.rope_theta)
    else:
        _ftcompat_hub_init_rope(self)


_ftcompat_hub_init_rope = Phi3Attention._init_rope
Phi3Attention._init_rope = _ftcompat_report_003_init_rope
"""


def _load(model_dir, trust_remote_code: bool):
    """Load the config and the model as a user would, and check the weights survived loading."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from ftcompat.harness import weights

    with step("AutoConfig.from_pretrained"):
        config = AutoConfig.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    record(
        config_class=f"{type(config).__module__.split('.')[-1]}.{type(config).__qualname__}",
        rope_scaling_after_config_load=repr(getattr(config, "rope_scaling", "<no attribute>")),
        rope_parameters=repr(getattr(config, "rope_parameters", "<no attribute>")),
    )
    with step("AutoModelForCausalLM.from_pretrained"):
        model = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    check = weights.compare(model, model_dir)
    record(rotary_embedding=_rotary(model), weights=check.text())
    with step("loaded weights equal the checkpoint"):
        assert check.ok, check.text()


def _rotary(model):
    """The rotary embedding class the model built (per attention layer in the hub code, shared natively)."""
    decoder = getattr(model, "model", None)
    layers = getattr(decoder, "layers", None) or []
    holder = getattr(layers[0].self_attn, "rotary_emb", None) if len(layers) else None
    holder = holder or getattr(decoder, "rotary_emb", None)
    return type(holder).__name__ if holder is not None else None


def _folder(model, tmp_path, variant: str, configuration: str = "hub", append: str = ""):
    from ftcompat.harness import standins

    own = not model.is_tiny
    with setup("write the repo's model folder"):
        # One folder per variant: the remote module is named after the folder, so two variants' code would share one.
        folder = standins.phi3_folder(model.path, tmp_path / f"phi3_rope_{variant}", own_code=own,
                                      configuration=configuration, modeling_append=append)
    record(remote_code=standins.remote_code_origin(own, (model.spec or {}).get("revision")))
    return folder


def test_remote_loads(model, tmp_path):
    """The repo as published loads with trust_remote_code=True on a rope_scaling-null config, weights intact."""
    _load(_folder(model, tmp_path, "remote_loads"), True)


def test_remote_native_config_loads(model, tmp_path):
    """The same with transformers' own Phi3Config under the hub file's name."""
    _load(_folder(model, tmp_path, "remote_native_config_loads", configuration="native"), True)


def test_remote_rope_fix_loads(model, tmp_path):
    """The repo's code with field report 003's rope fix: loads, and keeps the checkpoint's weights."""
    _load(_folder(model, tmp_path, "remote_rope_fix_loads", append=REPORT_ROPE_FIX), True)


def test_native(model, tmp_path):
    """Control: transformers' own Phi-3 (trust_remote_code=False) on the same repo-shaped folder."""
    from ftcompat.harness import standins

    with setup("write the repo's model folder"):
        folder = standins.phi3_folder(model.path, tmp_path / "phi3_rope_native", own_code=not model.is_tiny)
    _load(folder, False)
