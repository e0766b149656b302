"""harness/kit: the set-up cases share, checked with small stand-ins for transformers, TRL and torch.

The dev environment has no torch, so the tensors and library classes below are fakes with just the
methods the kit calls; where torch is importable one test also runs ``train`` on a real module.
"""

import math
import subprocess
import sys
import types
from dataclasses import dataclass

import pytest

from ftcompat.harness import api, kit


@dataclass
class OldArgs:
    """TrainingArguments as transformers < 4.34 spells it."""

    output_dir: str
    no_cuda: bool = False
    evaluation_strategy: str = "no"
    max_steps: int = -1


@dataclass
class NewArgs:
    """TrainingArguments as transformers >= 4.34 spells it."""

    output_dir: str
    use_cpu: bool = False
    eval_strategy: str = "no"
    max_steps: int = -1


class OldTrainer:
    def __init__(self, model, args=None, tokenizer=None):
        self.tokenizer = tokenizer


class NewTrainer:
    def __init__(self, model, args=None, processing_class=None):
        self.processing_class = processing_class


@pytest.fixture(autouse=True)
def fresh_log():
    """Each test starts with an empty cell log, as the plugin gives each case."""
    return api.begin()


@pytest.fixture
def fake_transformers(monkeypatch):
    """A ``transformers`` whose tokenizer and model loaders note what they were asked for."""
    module = types.ModuleType("transformers")
    calls = []

    class Tok:
        def __init__(self, pad):
            self.pad_token, self.eos_token = pad, "</s>"

        def __call__(self, text):
            return {"input_ids": text.split()}

    class AutoTokenizer:
        pad = None

        @classmethod
        def from_pretrained(cls, path, **kwargs):
            calls.append(("tokenizer", path, kwargs))
            return Tok(cls.pad)

    class AutoModelForCausalLM:
        @staticmethod
        def from_pretrained(path, **kwargs):
            calls.append(("model", path, kwargs))
            return "lm"

    class DataCollatorForLanguageModeling:
        def __init__(self, tokenizer, mlm=True):
            self.tokenizer, self.mlm = tokenizer, mlm

    module.AutoTokenizer, module.AutoModelForCausalLM = AutoTokenizer, AutoModelForCausalLM
    module.DataCollatorForLanguageModeling, module.TrainingArguments = DataCollatorForLanguageModeling, OldArgs
    module.calls = calls
    monkeypatch.setitem(sys.modules, "transformers", module)
    return module


def test_cpu_kwargs_asks_the_class_which_switch_it_takes():
    assert kit.cpu_kwargs(NewArgs, "cpu") == {"use_cpu": True}
    assert kit.cpu_kwargs(OldArgs, "cpu") == {"no_cuda": True}
    assert kit.cpu_kwargs(NewArgs, "cuda") == {} and kit.cpu_kwargs(OldArgs, "cuda") == {}


def test_supported_keeps_only_what_the_class_accepts():
    assert kit.supported(OldArgs, {"max_steps": 2, "use_cpu": True, "eval_strategy": "steps"}) == {"max_steps": 2}
    assert kit.supported(NewArgs, {"max_steps": 2, "use_cpu": True}) == {"max_steps": 2, "use_cpu": True}


def test_training_args_adds_the_cpu_switch_and_a_string_output_dir(tmp_path):
    old = kit.training_args(OldArgs, tmp_path, "cpu", max_steps=2)
    assert (old.output_dir, old.no_cuda, old.max_steps) == (str(tmp_path), True, 2)
    new = kit.training_args(NewArgs, tmp_path, "cuda", eval_strategy="steps")
    assert (new.use_cpu, new.eval_strategy) == (False, "steps")


def test_training_args_never_renames_what_the_case_passes(tmp_path):
    """A rename under test must reach the class as written and fail there, not be translated by the kit."""
    with pytest.raises(TypeError, match="eval_strategy"):
        kit.training_args(OldArgs, tmp_path, "cpu", eval_strategy="steps")
    with pytest.raises(TypeError, match="evaluation_strategy"):
        kit.training_args(NewArgs, tmp_path, "cpu", evaluation_strategy="steps")


def test_tokenizer_sets_the_pad_token_only_where_missing(fake_transformers):
    tok = kit.tokenizer("/m", padding_side="left")
    assert tok.pad_token == "</s>"
    assert fake_transformers.calls == [("tokenizer", "/m", {"padding_side": "left"})]
    fake_transformers.AutoTokenizer.pad = "<pad>"
    assert kit.tokenizer("/m").pad_token == "<pad>"


def test_load_returns_model_then_padded_tokenizer(fake_transformers):
    lm, tok = kit.load(types.SimpleNamespace(path="/m"))
    assert lm == "lm" and tok.pad_token == "</s>"
    assert [c[0] for c in fake_transformers.calls] == ["tokenizer", "model"]


def test_lm_training_builds_args_on_the_device_and_a_causal_collator(fake_transformers, tmp_path):
    lm, tok, args, collator = kit.lm_training(types.SimpleNamespace(path="/m"), "cpu", tmp_path, max_steps=3)
    assert (args.output_dir, args.no_cuda, args.max_steps) == (str(tmp_path), True, 3)
    assert collator.tokenizer is tok and collator.mlm is False


def test_checkpointing_run_saves_every_step_on_four_tokenized_texts(fake_transformers, tmp_path):
    class AnyArgs:
        def __init__(self, **kwargs):
            self.__dict__.update(kwargs)

    fake_transformers.TrainingArguments = AnyArgs
    lm, ds, args, collator = kit.checkpointing_run(types.SimpleNamespace(path="/m"), "cpu", tmp_path, max_steps=2)
    assert lm == "lm" and len(ds) == 4 and ds[0] == {"input_ids": ["the", "cat", "sat", "on", "the", "mat"]}
    assert (args.output_dir, args.no_cuda, args.max_steps) == (str(tmp_path), True, 2)
    assert (args.save_strategy, args.save_steps, args.per_device_train_batch_size) == ("steps", 1, 2)
    assert collator.mlm is False


def test_tokenizer_kwarg_and_held_tokenizer_follow_the_trainer():
    assert kit.tokenizer_kwarg(NewTrainer, "tok") == {"processing_class": "tok"}
    assert kit.tokenizer_kwarg(OldTrainer, "tok") == {"tokenizer": "tok"}
    assert kit.held_tokenizer(NewTrainer(None, processing_class="t1")) == "t1"
    assert kit.held_tokenizer(OldTrainer(None, tokenizer="t2")) == "t2"
    assert kit.held_tokenizer(object()) is None


def test_exception_summary_keeps_the_first_line_and_the_unpickler_detail():
    exc = RuntimeError("\x1b[31mWeights only load failed\x1b[0m\n\n  noise\n  WeightsUnpickler error: "
                       "Unsupported global: GLOBAL numpy.core.multiarray._reconstruct\n  more")
    assert kit.exception_summary(exc) == ("RuntimeError: Weights only load failed | WeightsUnpickler error: "
                                          "Unsupported global: GLOBAL numpy.core.multiarray._reconstruct")
    assert kit.exception_summary(ValueError("")) == "ValueError: "


class T:
    """A scalar standing in for a tensor: just the methods snapshot, train and unchanged call."""

    def __init__(self, v, requires_grad=True):
        self.v, self.requires_grad = float(v), requires_grad

    def detach(self):
        return T(self.v, False)

    float = cpu = clone = detach

    def __sub__(self, other):
        return T(self.v - other.v)

    def abs(self):
        return T(abs(self.v))

    def max(self):
        return self

    def item(self):
        return self.v


class FakeModel:
    def __init__(self, **params):
        self.params = params

    def named_parameters(self):
        return iter(self.params.items())


class FakeTrainer:
    """Trains by adding ``step`` to every trainable parameter of ``model``, as often as ``steps``."""

    def __init__(self, model, steps=2, loss=0.5, logs=None, step=0.1, fail=None):
        self.model, self.steps, self.loss, self.step_size, self.fail = model, steps, loss, step, fail
        self.state = types.SimpleNamespace(global_step=0, log_history=logs or [])

    def train(self):
        if self.fail:
            raise self.fail
        for p in self.model.params.values():
            if p.requires_grad:
                p.v += self.step_size * self.steps
        self.state.global_step = self.steps
        return types.SimpleNamespace(training_loss=self.loss)


def test_snapshot_takes_trainable_or_lora_tensors():
    model = FakeModel(w=T(1.0), frozen=T(2.0, requires_grad=False), lora_A=T(3.0, requires_grad=False))
    assert sorted(kit.snapshot(model)) == ["w"]
    assert sorted(kit.snapshot(model, lora=True)) == ["lora_A"]


def test_train_records_the_step_and_measures_what_moved():
    model = FakeModel(a=T(1.0), b=T(2.0), frozen=T(0.0, requires_grad=False))
    logs = [{"loss": 1.23456789, "reward": 0.5}, {"loss": 0.9, "grad_norm": 2}]
    run = kit.train(FakeTrainer(model, logs=logs), model, "FakeTrainer.train()")
    assert api.current().steps == ["FakeTrainer.train()"]
    assert run.series("loss") == [1.234568, 0.9] and run.series("absent") == []
    assert run.keys() == ["grad_norm", "loss", "reward"]
    assert run.moved == 2 and run.facts()["params_moved"] == "2/2"
    assert math.isclose(run.facts()["max_param_delta"], 0.2)
    assert run.facts()["optimizer_steps"] == 2 and run.facts()["training_loss"] == 0.5
    run.assert_ran(2)
    run.assert_moved(2)


def test_train_failure_is_charged_to_its_step():
    model = FakeModel(a=T(1.0))
    with pytest.raises(TypeError):
        kit.train(FakeTrainer(model, fail=TypeError("unexpected keyword")), model, "DPOTrainer.train()")
    assert api.current().failed_step == "DPOTrainer.train()"


def test_trained_assertions_say_what_went_wrong():
    model = FakeModel(a=T(1.0))
    short = kit.train(FakeTrainer(model, steps=1), model, "train")
    with pytest.raises(AssertionError, match="1 optimizer steps, not 2"):
        short.assert_ran(2)
    nan = kit.train(FakeTrainer(model, loss=float("nan")), model, "train")
    with pytest.raises(AssertionError, match="training loss nan is not finite"):
        nan.assert_ran(2)
    still = kit.train(FakeTrainer(model, step=0.0), model, "train")
    with pytest.raises(AssertionError, match="0 of 1 trainable tensors moved in 2 steps"):
        still.assert_moved(2)


def test_unchanged_names_the_tensors_training_did_not_touch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(equal=lambda a, b: a.v == b.v))
    model = FakeModel(lora_A=T(1.0), lora_B=T(2.0))
    before = kit.snapshot(model, lora=True)
    model.params["lora_B"].v = 2.5
    assert kit.unchanged(before, model) == ["lora_A"]
    del model.params["lora_A"]
    with pytest.raises(KeyError):  # a tensor gone from the model is a broken model, not "changed"
        kit.unchanged(before, model)


def test_gpu_view_records_whether_it_patched_and_failures_are_setup_errors(monkeypatch):
    view = kit.gpu_view("cuda")  # off CPU nothing is patched
    assert view.patched == [] and api.current().details == {"device_check_patched": []}

    class Broken:
        def __init__(self, device):
            self.patched = []

        def prepare(self):
            raise ImportError("no trl")

    monkeypatch.setattr(kit, "GpuViewOfDeviceCheck", Broken)
    with pytest.raises(api.CaseSetupError, match="ImportError: no trl"):
        kit.gpu_view("cpu")
    assert api.current().failed_step == "find TRL's 4-bit device check"


def test_the_kit_imports_nothing_heavy():
    code = ("import sys, ftcompat.harness.kit; "
            "print(sorted({'torch', 'transformers', 'trl', 'peft', 'datasets', 'accelerate'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_train_on_a_real_module_where_torch_is_installed():
    torch = pytest.importorskip("torch")
    lin = torch.nn.Linear(2, 1)

    class OneStep:
        state = types.SimpleNamespace(global_step=0, log_history=[{"loss": 1.0}])

        def train(self):
            opt = torch.optim.SGD(lin.parameters(), lr=0.1)
            lin(torch.ones(1, 2)).sum().backward()
            opt.step()
            self.state.global_step = 1
            return types.SimpleNamespace(training_loss=1.0)

    run = kit.train(OneStep(), lin, "train")
    run.assert_ran(1)
    run.assert_moved(1)
    assert run.facts()["params_moved"] == "2/2"
