"""SFT packing on sdpa/eager: each packed sample must get the loss it gets alone, not one its neighbour contaminates.

Symptom (silent): ``SFTConfig(packing=True)`` concatenates samples into one row. Unless the attention keeps them apart
(flash attention through ``position_ids``; on sdpa/eager, transformers' block-diagonal mask built from ``position_ids``
when the forward gets no ``attention_mask`` and no cache), each token also attends to the samples packed before it and
training runs on a loss no unpacked sample has (https://github.com/huggingface/trl/issues/3910, the warning of
https://github.com/huggingface/trl/issues/3695, https://github.com/huggingface/trl/issues/1230). Setup: the tiny model
in float32 on ``attn_implementation`` sdpa or eager, its output embeddings scaled by 40 so a loss depends on its context
(checked: the second sample's loss after the first under a plain causal mask must differ by >= 1 % from its loss alone,
else the cell is an error), two short texts and ``SFTTrainer``'s own data path: the first batch of
``trainer.get_train_dataloader()`` goes through ``trainer.compute_loss`` in train mode, as a training step runs it (from
TRL 0.22 that forward has ``use_cache=False``; with a cache transformers skips the packed mask). Each sample is found in
the batch by its token ids; its loss is the mean next-token cross-entropy over its own span (its first token has no
target), compared with the span's loss in a forward of the span alone (relative tolerance 1e-4). Variants:
* ``packed_sdpa`` / ``packed_eager``: ``packing=True`` with this TRL's default strategy (``ConstantLengthDataset`` or
  ``wrapped`` to 0.18, ``ffd`` in 0.19, ``bfd`` from 0.20); ``max_length`` is the two samples' total: one packed row.
* ``unpacked_sdpa`` / ``unpacked_eager``: the twins, ``packing=False``: the two samples padded into a batch of two, the
  way that keeps samples apart on every attention implementation.
A pass means every sample's loss in the trainer's batch equals its loss alone; a fail names both numbers and the
plain-causal reference. Cells record the batch's keys, ``position_ids``, TRL's packing strategy and padding-free flag,
whether TRL warned of contamination, and every loss. Boundaries, cause, upstream links:
docs/findings/packing_contamination.md.
"""

import logging
import warnings

from ftcompat.harness import kit, record, setup, step

_TEXTS = ["the quick brown fox jumps over the lazy dog again and again", "blue green red"]
_RTOL = 1e-4
_SENSITIVITY = 1e-2  # the contaminated reference must differ from the loss alone by at least this (relative)
_LOGIT_SCALE = 40.0


def _close(a, b):
    return abs(a - b) <= _RTOL * max(abs(a), abs(b))


def _load(model_ref, device, attn):
    """The tiny model in float32 on ``attn``, its logits scaled so a sample's loss depends on what it attends to."""
    import torch
    from transformers import AutoModelForCausalLM

    from ftcompat.harness.compat import dtype_kwarg

    lm = AutoModelForCausalLM.from_pretrained(model_ref.path, attn_implementation=attn, **dtype_kwarg(torch.float32))
    with torch.no_grad():
        lm.get_output_embeddings().weight.mul_(_LOGIT_SCALE)
    return lm.to(device)


def _settings(packing, max_length, batch_size):
    """Split the SFT settings between SFTConfig (where this TRL has it) and SFTTrainer, under this TRL's names."""
    from transformers import TrainingArguments
    from trl import SFTTrainer

    from ftcompat.harness.compat import accepted, renamed

    try:
        from trl import SFTConfig
    except ImportError:  # TRL < 0.9: the dataset settings go to the trainer
        SFTConfig = None
    config_cls = SFTConfig or TrainingArguments
    wanted = {"packing": packing, "max_length": max_length, "dataset_text_field": "text"}
    in_config, to_trainer = {}, {}
    for key, value in wanted.items():
        name = next(iter(renamed(config_cls, {key: value})))
        if name in accepted(config_cls):
            in_config[name] = value
        else:
            to_trainer.update(renamed(SFTTrainer, {key: value}))
    config = dict(report_to=[], max_steps=1, per_device_train_batch_size=batch_size, seed=0, **in_config)
    return config_cls, config, to_trainer


class _Heard(logging.Handler):
    """Collect TRL's log warnings (from 0.20 TRL logs its packing warning; 0.19 used warnings.warn)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, rec):
        self.messages.append(rec.getMessage())


def _span(row, ids, eos):
    """Where the sample ``ids`` sits in ``row`` (with the EOS TRL appends after it), or None."""
    n = len(ids)
    for s in range(len(row) - n + 1):
        if row[s:s + n] == ids:
            e = s + n
            return s, (e + 1 if e < len(row) and row[e] == eos else e)
    return None


def _span_loss(logits, ids, s, e):
    import torch

    return float(torch.nn.functional.cross_entropy(logits[s:e - 1].float(), ids[s + 1:e]))


def _measure(model, device, tmp_path, attn, packing):
    """Build the trainer, run its first batch through the model, and compare each sample with its loss alone."""
    import torch
    from trl import SFTTrainer

    with setup(f"tiny model on attn_implementation={attn}, tokenizer, dataset, config"):
        from datasets import Dataset

        tok = kit.tokenizer(model.path)
        lm = _load(model, device, attn)
        samples = [list(tok(t)["input_ids"]) for t in _TEXTS]
        eos = tok.eos_token_id
        total = sum(len(ids) + 1 for ids in samples)  # each sample and the EOS TRL appends: one packed row exactly
        config_cls, config, to_trainer = _settings(packing, total, 1 if packing else 2)
        args = kit.training_args(config_cls, tmp_path, device, **config)
        ds = Dataset.from_list([{"text": t} for t in _TEXTS])
        to_trainer.update(kit.tokenizer_kwarg(SFTTrainer, tok))
    heard = _Heard()
    trl_logger = logging.getLogger("trl")
    trl_logger.addHandler(heard)
    try:
        with warnings.catch_warnings(record=True) as warned, step(f"SFTTrainer(packing={packing}) on {attn}"):
            warnings.simplefilter("always")
            trainer = SFTTrainer(model=lm, args=args, train_dataset=ds, **to_trainer)
    finally:
        trl_logger.removeHandler(heard)
    said = heard.messages + [str(w.message) for w in warned]
    with step("first batch of trainer.get_train_dataloader() through trainer.compute_loss"):
        batch = next(iter(trainer.get_train_dataloader()))
        batch = {k: v.to(lm.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        keys = sorted(batch)  # before compute_loss adds its own (TRL >= 0.22 sets use_cache=False)
        trainer.model.train()  # as Trainer.train() leaves it; the tiny model has no dropout
        with torch.no_grad():
            trainer_loss, outputs = trainer.compute_loss(trainer.model, batch, return_outputs=True)
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
    rows = batch["input_ids"].tolist()
    facts = dict(attn_implementation=getattr(lm.config, "_attn_implementation", attn), packing=packing,
                 packing_strategy=getattr(args, "packing_strategy", None),
                 padding_free=getattr(trainer, "padding_free", getattr(args, "padding_free", None)),
                 batch_keys=keys, trainer_loss=round(float(trainer_loss), 6),
                 batch_shape=list(batch["input_ids"].shape),
                 position_ids=batch["position_ids"].tolist() if "position_ids" in batch else None,
                 trl_warned_contamination=any("contamination" in m for m in said),
                 sample_tokens=[len(ids) for ids in samples])
    results, sensitivity = [], []
    with setup("locate each sample in the batch; its loss alone and after the other under a plain causal mask"):
        for k, ids in enumerate(samples):
            where = next(((r, _span(row, ids, eos)) for r, row in enumerate(rows) if _span(row, ids, eos)), None)
            if where is None:
                raise RuntimeError(f"sample {k} ({len(ids)} tokens) is not in the trainer's batch {rows}")
            r, (s, e) = where
            row = batch["input_ids"][r]
            with torch.no_grad():
                alone = _span_loss(lm(input_ids=row[None, s:e], use_cache=False).logits[0], row[s:e], 0, e - s)
                concat = _span_loss(lm(input_ids=row[None, :e], use_cache=False).logits[0], row, s, e)
            results.append(dict(sample=k, row=r, span=[s, e], batch_loss=round(_span_loss(logits[r], row, s, e), 6),
                                alone_loss=round(alone, 6), plain_causal_loss=round(concat, 6)))
            if s > 0:
                sensitivity.append(abs(concat - alone) / abs(alone))
        facts["samples"] = results
        record(**facts)
        if packing and (not sensitivity or max(sensitivity) < _SENSITIVITY):
            raise RuntimeError(f"the second sample's loss after the first differs from its loss alone by "
                               f"{max(sensitivity, default=0):.4%}: the data cannot show contamination ({results})")
    for res in results:
        assert _close(res["batch_loss"], res["alone_loss"]), (
            f"sample {res['sample']} (tokens {res['span'][0]}..{res['span'][1]} of row {res['row']}): loss "
            f"{res['batch_loss']:.6f} in the trainer's batch != {res['alone_loss']:.6f} alone (ratio "
            f"{res['batch_loss'] / res['alone_loss']:.4f}); attending to the sample before it under a plain causal "
            f"mask gives {res['plain_causal_loss']:.6f}; batch keys {facts['batch_keys']}, packing_strategy "
            f"{facts['packing_strategy']}, padding_free {facts['padding_free']}")


def test_packed_sdpa(model, device, tmp_path):
    """SFTConfig(packing=True) on sdpa: each packed sample gets its loss alone."""
    _measure(model, device, tmp_path, "sdpa", True)


def test_packed_eager(model, device, tmp_path):
    """SFTConfig(packing=True) on eager: each packed sample gets its loss alone."""
    _measure(model, device, tmp_path, "eager", True)


def test_unpacked_sdpa(model, device, tmp_path):
    """The twin: packing=False on sdpa, the two samples padded into one batch; each gets its loss alone."""
    _measure(model, device, tmp_path, "sdpa", False)


def test_unpacked_eager(model, device, tmp_path):
    """The twin: packing=False on eager; each sample gets its loss alone."""
    _measure(model, device, tmp_path, "eager", False)
