"""TRL's removed top-level trainers: ``from trl import ORPOTrainer`` (and eight others) fails from TRL 0.29.

TRL moved nine trainers to ``trl.experimental`` for its 1.0 API (RFC https://github.com/huggingface/trl/issues/4223;
e.g. https://github.com/huggingface/trl/pull/4480 for ORPO): TRL 0.26 to 0.28 keep a ``FutureWarning`` shim at the old
name, and from 0.29 the shims are gone, so code and tutorials written for earlier releases stop at their first line
with ``ImportError: cannot import name 'ORPOTrainer' from 'trl'``. Later TRL removed five of them from
``trl.experimental`` as well (PPO: https://github.com/huggingface/trl/pull/7020; XPO:
https://github.com/huggingface/trl/pull/7256), so those five have no replacement in the newest TRL. No feature
detection: each variant's import is the idiom, written as users write it.
* ``trl_<name>`` for orpo, cpo, bco, ppo, online_dpo, gkd, xpo, nash_md, prm: ``from trl import <X>Config,
  <X>Trainer``; passes when both names import (TRL <= 0.28).
* ``experimental_<name>``, the twin: ``from trl.experimental.<name> import <X>Config, <X>Trainer`` and
  ``<X>Config(output_dir=..., report_to="none")`` on this device; passes when both import and the config builds. For
  ``orpo`` and ``cpo`` (the two users migrate most) it also builds the trainer on the tiny model with a four-row
  preference dataset and passes only when the trainer holds the tokenizer and the four tokenized rows. The
  ``trl.experimental`` path exists from TRL 0.26 (BCO from 0.25); ``ppo``, ``bco``, ``xpo``, ``nash_md`` and ``prm``
  were later removed from it too, and their twins fail there: no supported replacement is left.
Boundaries, the exact errors and the wheels' contents: docs/findings/trl_removed_trainers.md.
"""

from ftcompat.harness import kit, record, setup, step

# No SUBJECT: the health probe imports trl and its SFT, DPO and GRPO trainer modules, never these names, so a name
# missing from trl is always this case's verdict; a trl that cannot be imported at all is the environment's (error).

_ROWS = [
    {"prompt": "The cat sat on the", "chosen": " mat.", "rejected": " moon, loudly."},
    {"prompt": "One two three", "chosen": " four five.", "rejected": " banana."},
    {"prompt": "Red green", "chosen": " blue.", "rejected": " seven eight."},
    {"prompt": "A b c", "chosen": " d e f.", "rejected": " z z z."},
]


def _names(config, trainer):
    """Record where the imported classes are defined."""
    record(config_module=config.__module__, trainer_module=trainer.__module__)


def _config(config_cls, device, tmp_path, **extra):
    """``<X>Config(output_dir=..., report_to="none")`` with this device's CPU switch, as the step under test."""
    with step(f"{config_cls.__name__}(output_dir=..., report_to='none')"):
        cfg = kit.training_args(config_cls, tmp_path, device, report_to="none", **extra)
    record(config=type(cfg).__name__)
    return cfg


def _build(trainer_cls, config_cls, model, device, tmp_path):
    """Build a preference trainer on the tiny model and check it holds the tokenizer and the four rows."""
    with setup("tiny model, tokenizer, preference dataset"):
        from datasets import Dataset

        lm, tok = kit.load(model)
        ds = Dataset.from_list(_ROWS)
    cfg = _config(config_cls, device, tmp_path, per_device_train_batch_size=2, max_steps=1,
                  **kit.supported(config_cls, {"max_length": 64, "max_prompt_length": 32, "bf16": False,
                                                "fp16": False}))
    with step(f"{trainer_cls.__name__}(model, args, train_dataset, processing_class=tok)"):
        trainer = trainer_cls(model=lm, args=cfg, train_dataset=ds, processing_class=tok)
    held = kit.held_tokenizer(trainer)
    rows = len(trainer.train_dataset)
    record(held_tokenizer=type(held).__name__, train_rows=rows, columns=sorted(trainer.train_dataset.column_names))
    assert held is tok, f"trainer holds {type(held).__name__}, not the tokenizer passed as processing_class="
    assert rows == len(_ROWS), f"{rows} tokenized rows, not {len(_ROWS)}"


def test_trl_orpo():
    """from trl import ORPOConfig, ORPOTrainer."""
    with step("from trl import ORPOConfig, ORPOTrainer"):
        from trl import ORPOConfig, ORPOTrainer
    _names(ORPOConfig, ORPOTrainer)


def test_trl_cpo():
    """from trl import CPOConfig, CPOTrainer."""
    with step("from trl import CPOConfig, CPOTrainer"):
        from trl import CPOConfig, CPOTrainer
    _names(CPOConfig, CPOTrainer)


def test_trl_bco():
    """from trl import BCOConfig, BCOTrainer."""
    with step("from trl import BCOConfig, BCOTrainer"):
        from trl import BCOConfig, BCOTrainer
    _names(BCOConfig, BCOTrainer)


def test_trl_ppo():
    """from trl import PPOConfig, PPOTrainer."""
    with step("from trl import PPOConfig, PPOTrainer"):
        from trl import PPOConfig, PPOTrainer
    _names(PPOConfig, PPOTrainer)


def test_trl_online_dpo():
    """from trl import OnlineDPOConfig, OnlineDPOTrainer."""
    with step("from trl import OnlineDPOConfig, OnlineDPOTrainer"):
        from trl import OnlineDPOConfig, OnlineDPOTrainer
    _names(OnlineDPOConfig, OnlineDPOTrainer)


def test_trl_gkd():
    """from trl import GKDConfig, GKDTrainer."""
    with step("from trl import GKDConfig, GKDTrainer"):
        from trl import GKDConfig, GKDTrainer
    _names(GKDConfig, GKDTrainer)


def test_trl_xpo():
    """from trl import XPOConfig, XPOTrainer."""
    with step("from trl import XPOConfig, XPOTrainer"):
        from trl import XPOConfig, XPOTrainer
    _names(XPOConfig, XPOTrainer)


def test_trl_nash_md():
    """from trl import NashMDConfig, NashMDTrainer."""
    with step("from trl import NashMDConfig, NashMDTrainer"):
        from trl import NashMDConfig, NashMDTrainer
    _names(NashMDConfig, NashMDTrainer)


def test_trl_prm():
    """from trl import PRMConfig, PRMTrainer."""
    with step("from trl import PRMConfig, PRMTrainer"):
        from trl import PRMConfig, PRMTrainer
    _names(PRMConfig, PRMTrainer)


def test_experimental_orpo(model, device, tmp_path):
    """from trl.experimental.orpo import ORPOConfig, ORPOTrainer; the trainer builds on the tiny model."""
    with step("from trl.experimental.orpo import ORPOConfig, ORPOTrainer"):
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer
    _names(ORPOConfig, ORPOTrainer)
    _build(ORPOTrainer, ORPOConfig, model, device, tmp_path)


def test_experimental_cpo(model, device, tmp_path):
    """from trl.experimental.cpo import CPOConfig, CPOTrainer; the trainer builds on the tiny model."""
    with step("from trl.experimental.cpo import CPOConfig, CPOTrainer"):
        from trl.experimental.cpo import CPOConfig, CPOTrainer
    _names(CPOConfig, CPOTrainer)
    _build(CPOTrainer, CPOConfig, model, device, tmp_path)


def test_experimental_bco(device, tmp_path):
    """from trl.experimental.bco import BCOConfig, BCOTrainer; BCOConfig builds."""
    with step("from trl.experimental.bco import BCOConfig, BCOTrainer"):
        from trl.experimental.bco import BCOConfig, BCOTrainer
    _names(BCOConfig, BCOTrainer)
    _config(BCOConfig, device, tmp_path)


def test_experimental_ppo(device, tmp_path):
    """from trl.experimental.ppo import PPOConfig, PPOTrainer; PPOConfig builds."""
    with step("from trl.experimental.ppo import PPOConfig, PPOTrainer"):
        from trl.experimental.ppo import PPOConfig, PPOTrainer
    _names(PPOConfig, PPOTrainer)
    _config(PPOConfig, device, tmp_path)


def test_experimental_online_dpo(device, tmp_path):
    """from trl.experimental.online_dpo import OnlineDPOConfig, OnlineDPOTrainer; OnlineDPOConfig builds."""
    with step("from trl.experimental.online_dpo import OnlineDPOConfig, OnlineDPOTrainer"):
        from trl.experimental.online_dpo import OnlineDPOConfig, OnlineDPOTrainer
    _names(OnlineDPOConfig, OnlineDPOTrainer)
    _config(OnlineDPOConfig, device, tmp_path)


def test_experimental_gkd(device, tmp_path):
    """from trl.experimental.gkd import GKDConfig, GKDTrainer; GKDConfig builds."""
    with step("from trl.experimental.gkd import GKDConfig, GKDTrainer"):
        from trl.experimental.gkd import GKDConfig, GKDTrainer
    _names(GKDConfig, GKDTrainer)
    _config(GKDConfig, device, tmp_path)


def test_experimental_xpo(device, tmp_path):
    """from trl.experimental.xpo import XPOConfig, XPOTrainer; XPOConfig builds."""
    with step("from trl.experimental.xpo import XPOConfig, XPOTrainer"):
        from trl.experimental.xpo import XPOConfig, XPOTrainer
    _names(XPOConfig, XPOTrainer)
    _config(XPOConfig, device, tmp_path)


def test_experimental_nash_md(device, tmp_path):
    """from trl.experimental.nash_md import NashMDConfig, NashMDTrainer; NashMDConfig builds."""
    with step("from trl.experimental.nash_md import NashMDConfig, NashMDTrainer"):
        from trl.experimental.nash_md import NashMDConfig, NashMDTrainer
    _names(NashMDConfig, NashMDTrainer)
    _config(NashMDConfig, device, tmp_path)


def test_experimental_prm(device, tmp_path):
    """from trl.experimental.prm import PRMConfig, PRMTrainer; PRMConfig builds."""
    with step("from trl.experimental.prm import PRMConfig, PRMTrainer"):
        from trl.experimental.prm import PRMConfig, PRMTrainer
    _names(PRMConfig, PRMTrainer)
    _config(PRMConfig, device, tmp_path)
