"""The GPU-path view of TRL's 4-bit device check, against a stand-in ``trl`` package."""

import sys
import textwrap
from types import SimpleNamespace

import pytest

FAKE_SFT = '''
def prepare_peft_model(model):
    """Module-level helper, as in TRL 0.22-0.25."""
    return model.weight.data.device.type in {"cpu", "meta"}


def untouched(model):
    return model.weight.data.device.type == "cpu"


class Base:
    def from_base(self):
        return "base"


class SFTTrainer(Base):
    def _prepare_peft_model(self, model):
        """Method form, as in TRL 0.15-0.21."""
        sharded = model.weight.data.device.type in {'cpu', 'meta'}
        return sharded
'''


@pytest.fixture
def fake_trl(tmp_path, monkeypatch):
    pkg = tmp_path / "trl"
    (pkg / "trainer").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "trainer" / "__init__.py").write_text("")
    (pkg / "trainer" / "sft_trainer.py").write_text(textwrap.dedent(FAKE_SFT))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "trl" or m.startswith("trl.")]:
        monkeypatch.delitem(sys.modules, name)
    import trl.trainer.sft_trainer as st

    return st


def cpu_model():
    return SimpleNamespace(weight=SimpleNamespace(data=SimpleNamespace(device=SimpleNamespace(type="cpu"))))


def test_cpu_sees_the_cuda_answer_only_while_active(fake_trl):
    from ftcompat.harness.trlpath import GpuViewOfDeviceCheck

    view = GpuViewOfDeviceCheck("cpu")
    view.prepare()
    assert sorted(view.patched) == ["trl.trainer.sft_trainer.SFTTrainer._prepare_peft_model",
                                    "trl.trainer.sft_trainer.prepare_peft_model"]
    trainer, model = fake_trl.SFTTrainer(), cpu_model()
    assert fake_trl.prepare_peft_model(model) is True
    with view:
        assert fake_trl.prepare_peft_model(model) is False
        assert trainer._prepare_peft_model(model) is False
        assert fake_trl.untouched(model) is True
        assert trainer.from_base() == "base"
    assert fake_trl.prepare_peft_model(model) is True
    assert trainer._prepare_peft_model(model) is True


def test_cuda_patches_nothing(fake_trl):
    from ftcompat.harness.trlpath import GpuViewOfDeviceCheck

    view = GpuViewOfDeviceCheck("cuda")
    view.prepare()
    assert view.patched == []
