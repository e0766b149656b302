"""Model folders shaped like a hub repo, with ftcompat's stand-in remote code (no ML stack needed)."""

import ast
import json

import pytest

from ftcompat.harness import standins


@pytest.fixture
def checkpoint(tmp_path):
    ckpt = tmp_path / "tiny"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"model_type": "phi3", "hidden_size": 64, "torch_dtype": "float32",
                                                  "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
                                                  "partial_rotary_factor": 1.0}))
    (ckpt / "model.safetensors").write_bytes(b"weights")
    (ckpt / "tokenizer.json").write_text("{}")
    return ckpt


def test_the_folder_is_shaped_like_the_repo_and_links_the_weights(checkpoint, tmp_path):
    folder = standins.phi3_folder(checkpoint, tmp_path / "repo")
    config = json.loads((folder / "config.json").read_text())
    assert config["rope_scaling"] is None and config["rope_theta"] == 10000.0 and config["sliding_window"] == 2047
    assert "rope_parameters" not in config and "partial_rotary_factor" not in config
    assert config["hidden_size"] == 64 and config["torch_dtype"] == "float32"  # the tiny model's own sizes
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_phi3.Phi3ForCausalLM"
    assert (folder / "model.safetensors").is_symlink() and not (folder / "tokenizer.json").is_symlink()
    assert (folder / "modeling_phi3.py").read_text() == standins.source("phi3/modeling_phi3.py")


def test_the_stand_in_imports_what_the_hub_file_imports_at_module_level():
    tree = ast.parse(standins.source("phi3/modeling_phi3.py"))
    imported = {(node.module, alias.name) for node in tree.body if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    for name in ("is_flash_attn_greater_or_equal_2_10", "replace_return_docstrings", "add_code_sample_docstrings"):
        assert ("transformers.utils", name) in imported
    assert ("transformers.modeling_attn_mask_utils", "_prepare_4d_causal_attention_mask") in imported
    assert ("transformers.cache_utils", "DynamicCache") in imported


def test_a_patch_applies_exactly_once_or_says_why(checkpoint, tmp_path):
    line = "max_cache_length = past_key_values.get_max_length()"
    folder = standins.phi3_folder(checkpoint, tmp_path / "a", modeling_patch={line: "max_cache_length = None"},
                                  modeling_append="\nAPPENDED = True\n")
    text = (folder / "modeling_phi3.py").read_text()
    assert line not in text and "max_cache_length = None" in text and text.endswith("APPENDED = True\n")
    with pytest.raises(ValueError, match="has 0 copies of 'no such line'"):
        standins.phi3_folder(checkpoint, tmp_path / "b", modeling_patch={"no such line": "x"})


def test_the_native_configuration_replaces_the_hub_one(checkpoint, tmp_path):
    folder = standins.phi3_folder(checkpoint, tmp_path / "n", configuration="native")
    assert "from transformers import Phi3Config" in (folder / "configuration_phi3.py").read_text()
    with pytest.raises(ValueError, match="'hub' or 'native'"):
        standins.phi3_folder(checkpoint, tmp_path / "x", configuration="other")


def test_a_real_repo_keeps_its_own_code(checkpoint, tmp_path):
    (checkpoint / "modeling_phi3.py").write_text("# the hub's own file\n")
    folder = standins.phi3_folder(checkpoint, tmp_path / "r", own_code=True)
    assert (folder / "modeling_phi3.py").read_text() == "# the hub's own file\n"
    assert "rope_parameters" in json.loads((folder / "config.json").read_text())  # its config.json as published
    assert standins.remote_code_origin(True, "0a67737c") == "hub files at 0a67737c"
    assert standins.remote_code_origin(False).startswith("ftcompat stand-in")


def test_one_folder_name_never_holds_two_different_codes_in_one_process(checkpoint, tmp_path):
    standins.phi3_folder(checkpoint, tmp_path / "a" / "phi3_same")
    standins.phi3_folder(checkpoint, tmp_path / "b" / "phi3_same")  # same code again: fine
    with pytest.raises(ValueError, match="'phi3_same' was already used for other code"):
        standins.phi3_folder(checkpoint, tmp_path / "c" / "phi3_same", modeling_append="\nX = 1\n")
