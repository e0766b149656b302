"""harness/compat: setup's argument names follow the installed release, never the case's behaviour."""

import sys
import types
from dataclasses import dataclass, field

import pytest

from ftcompat.harness import compat


@dataclass
class OldConfig:
    """An SFTConfig as TRL 0.19 and earlier spell it."""

    output_dir: str
    max_seq_length: int = 1024
    evaluation_strategy: str = "no"
    no_cuda: bool = False
    dataset_text_field: str = "text"


@dataclass
class NewConfig:
    """An SFTConfig as TRL 0.20 and later spell it."""

    output_dir: str
    max_length: int = 1024
    eval_strategy: str = "no"
    use_cpu: bool = False
    extra: dict = field(default_factory=dict)


class OldTrainer:
    def __init__(self, model, args, train_dataset, tokenizer=None, peft_config=None):
        self.got = dict(model=model, args=args, train_dataset=train_dataset, tokenizer=tokenizer,
                        peft_config=peft_config)


class NewTrainer:
    def __init__(self, model, args, train_dataset, processing_class=None, peft_config=None):
        self.got = dict(model=model, args=args, train_dataset=train_dataset,
                        processing_class=processing_class, peft_config=peft_config)


@pytest.fixture
def fake_trl(monkeypatch):
    """Install a fake ``trl`` whose classes a test chooses."""

    def install(config, trainer):
        module = types.ModuleType("trl")
        module.SFTConfig, module.SFTTrainer = config, trainer
        monkeypatch.setitem(sys.modules, "trl", module)

    return install


def test_renamed_uses_the_old_name_only_where_the_new_one_is_missing():
    assert compat.renamed(OldConfig, {"max_length": 8, "output_dir": "o"}) == {"max_seq_length": 8, "output_dir": "o"}
    assert compat.renamed(NewConfig, {"max_length": 8}) == {"max_length": 8}


def test_renamed_passes_an_unknown_name_through_so_the_release_rejects_it():
    assert compat.renamed(NewConfig, {"packing": False}) == {"packing": False}
    with pytest.raises(TypeError, match="packing"):
        NewConfig(output_dir="o", **compat.renamed(NewConfig, {"packing": False}))


def test_sft_config_on_an_old_trl(fake_trl, tmp_path):
    fake_trl(OldConfig, OldTrainer)
    cfg = compat.sft_config(tmp_path, "cpu", max_length=64, eval_strategy="steps",
                            optional={"dataset_text_field": "body", "packing": False})
    assert (cfg.max_seq_length, cfg.evaluation_strategy, cfg.no_cuda) == (64, "steps", True)
    assert cfg.dataset_text_field == "body"  # set where accepted; packing dropped where not
    assert cfg.output_dir == str(tmp_path)


def test_sft_config_on_a_new_trl_stays_off_the_gpu_only_for_cpu(fake_trl, tmp_path):
    fake_trl(NewConfig, NewTrainer)
    cpu = compat.sft_config(tmp_path, "cpu", max_length=64, eval_strategy="steps",
                            optional={"dataset_text_field": "text"})
    assert (cpu.max_length, cpu.eval_strategy, cpu.use_cpu) == (64, "steps", True)
    assert not compat.sft_config(tmp_path, "cuda", max_length=64).use_cpu


@pytest.mark.parametrize(("trainer", "key"), [(OldTrainer, "tokenizer"), (NewTrainer, "processing_class")])
def test_sft_trainer_hands_over_the_tokenizer_by_the_name_the_release_takes(fake_trl, trainer, key):
    fake_trl(NewConfig, trainer)
    built = compat.sft_trainer("model", "tok", "args", "data", peft_config="lora")
    assert built.got[key] == "tok"
    assert built.got["peft_config"] == "lora"


def test_dtype_kwarg_asks_the_config_which_name_this_transformers_reads(monkeypatch):
    module = types.ModuleType("transformers")

    class Config:
        def __init__(self):
            self.torch_dtype = None

    module.PretrainedConfig = Config
    monkeypatch.setitem(sys.modules, "transformers", module)
    assert compat.dtype_kwarg("bf16") == {"torch_dtype": "bf16"}
    Config.dtype = None
    assert compat.dtype_kwarg("bf16") == {"dtype": "bf16"}


def test_api_surface_never_imports_compat():
    """api_surface checks the renames themselves; adapting them there would hide what it checks."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).parents[2] / "cases" / "api_surface.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom | ast.Import) for a in n.names}
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "compat" not in imported and "ftcompat.harness.compat" not in modules
