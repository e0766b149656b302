"""SFTTrainer settings passed to the trainer itself (``dataset_text_field=``, ``packing=``, ...).

Older SFT recipes configure the dataset handling on the trainer (``SFTTrainer(model, train_dataset=ds,
dataset_text_field="text", packing=True, max_seq_length=512, dataset_num_proc=2, ...)``); TRL moved those settings into
``SFTConfig`` (first as overriding deprecated duplicates, then removed), so that code fails with ``TypeError``
(https://github.com/huggingface/trl/issues/1530). Variants, one per moved setting, each building an ``SFTTrainer`` on
the tiny model (no training):
* ``trainer_dataset_text_field``: ``SFTTrainer(dataset_text_field="content")`` on a dataset whose only column is
  ``content``; passes when the tokenized rows hold its text.
* ``trainer_packing``: ``SFTTrainer(packing=True)``; passes when the dataset was packed (fewer rows than examples, a row
  longer than any example).
* ``trainer_max_seq_length``: ``SFTTrainer(max_seq_length=16)``; passes when no tokenized row exceeds 16 and the long
  example was cut to 16.
* ``trainer_dataset_num_proc``: ``SFTTrainer(dataset_num_proc=2)``; passes when TRL's ``Dataset.map`` calls got
  ``num_proc=2``.
* ``config_*``: the twins, the same setting through ``SFTConfig`` under this TRL's name for it (``max_length``,
  ``max_seq_length`` before TRL 0.16; feature detection), checked the same way; on TRL 0.8.6 (no SFTConfig) they skip.
Settings not the variant's own (text field and length for packing, the tokenizer's keyword) go where this TRL takes
them, so a variant fails only on its own idiom. Boundaries, exact error, upstream links:
docs/findings/sft_trainer_kwargs.md.
"""

import pytest

from ftcompat.harness import kit, record, setup, step

# Twelve short examples of distinct words: each tokenizes to a handful of tokens.
_TEXTS = [f"{a} {b} {c} {d}" for a, b, c, d in zip(
    "red green blue black white pink gray brown gold teal navy lime".split(),
    "cat dog cow pig hen fox owl bat ant bee elk yak".split(),
    "sat ran hid ate dug saw met led won got cut fed".split(),
    "here there now then up down in out on off far near".split(), strict=True)]
_LONG = " ".join(["one two three four five six seven eight nine ten"] * 6)
_MAX = 16  # the cut for the long example
_PACK = 64  # the packed row length: several short examples fit in one row


def _config_cls():
    try:
        from trl import SFTConfig
    except ImportError:
        return None
    return SFTConfig


def _length_name(config_cls) -> str:
    return "max_length" if "max_length" in kit.accepted(config_cls) else "max_seq_length"


def _build(model, device, tmp_path, rows, *, trainer_kwargs=None, config_kwargs=None, needs=None):
    """Build an SFTTrainer with the variant's own setting in trainer_kwargs or config_kwargs.

    ``needs`` (settings the variant does not check, e.g. the text field) go into the config where it has the field,
    else to the trainer (TRL 0.8.6 has no SFTConfig). Returns (trainer, tokenizer); construction is the variant's step.
    """
    with setup("import trl, tiny model, dataset, config"):
        from datasets import Dataset
        from transformers import TrainingArguments
        from trl import SFTTrainer

        lm, tok = kit.load(model)
        ds = Dataset.from_list(rows)
        config_cls = _config_cls() or TrainingArguments
        names = kit.accepted(config_cls)
        cfg = dict(report_to="none", max_steps=1, per_device_train_batch_size=2)
        trainer_extra = dict(trainer_kwargs or {})
        for key, value in (needs or {}).items():
            if key == "max_length":
                key = _length_name(config_cls)
            (cfg if key in names else trainer_extra)[key] = value
        cfg.update(config_kwargs or {})
        args = kit.training_args(config_cls, tmp_path, device, **cfg)
        trainer_extra.update(kit.tokenizer_kwarg(SFTTrainer, tok))
    shown = ", ".join(f"{k}={v!r}" for k, v in (trainer_kwargs or {}).items()) or "args=SFTConfig(...)"
    with step(f"SFTTrainer({shown})"):
        trainer = SFTTrainer(model=lm, args=args, train_dataset=ds, **trainer_extra)
    return trainer, tok


def _rows(trainer) -> list:
    """The tokenized training rows as lists of ids (a packed IterableDataset is iterated)."""
    ds = trainer.train_dataset
    indexable = hasattr(ds, "__getitem__") and hasattr(ds, "__len__")
    items = [ds[i] for i in range(len(ds))] if indexable else list(ds)
    return [list(map(int, r["input_ids"])) for r in items]


def _contains(seq: list, sub: list) -> bool:
    return any(seq[i:i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))


def _check_text_field(trainer, tok):
    rows = _rows(trainer)
    want = tok(_TEXTS[0], add_special_tokens=False)["input_ids"]
    found = sum(any(_contains(r, tok(t, add_special_tokens=False)["input_ids"]) for r in rows) for t in _TEXTS)
    record(rows=len(rows), examples_found=found, first_row=rows[0] if rows else None, first_text_ids=want)
    assert found == len(_TEXTS), f"{found} of {len(_TEXTS)} texts of the 'content' column found in {len(rows)} rows"


def _check_packing(trainer, tok):
    rows = _rows(trainer)
    single = max(len(tok(t)["input_ids"]) for t in _TEXTS)
    lengths = [len(r) for r in rows]
    record(rows=len(rows), examples=len(_TEXTS), row_lengths=lengths, longest_single_example=single + 1)
    assert rows, "the packed dataset has no rows"
    assert len(rows) < len(_TEXTS) and max(lengths) > single + 1, (
        f"not packed: {len(rows)} rows for {len(_TEXTS)} examples, longest row {max(lengths)} tokens, "
        f"longest example {single} tokens (+1 for an EOS)")


def _check_max_length(trainer, tok):
    rows = _rows(trainer)
    lengths = [len(r) for r in rows]
    long_ids = tok(_LONG)["input_ids"]
    record(rows=len(rows), row_lengths=lengths, long_example_tokens=len(long_ids), limit=_MAX)
    assert len(rows) == len(_TEXTS[:3]) + 1, f"{len(rows)} rows for {len(_TEXTS[:3]) + 1} examples"
    assert max(lengths) == _MAX, (f"longest row {max(lengths)} tokens; the {len(long_ids)}-token example "
                                  f"should be cut to {_MAX}")


class _MapSpy:
    """Record the num_proc of every Dataset.map call while the trainer is built (setup, not the idiom)."""

    def __enter__(self):
        with setup("spy on datasets.Dataset.map"):
            from datasets import Dataset

            self.seen, self._orig, spy = [], Dataset.map, self

            def map_(ds, *a, **kw):
                spy.seen.append(kw.get("num_proc"))
                return spy._orig(ds, *a, **kw)

            Dataset.map = map_
        return self

    def __exit__(self, *exc):
        from datasets import Dataset

        Dataset.map = self._orig


def _check_num_proc(spy):
    record(map_num_proc=spy.seen)
    assert 2 in spy.seen, f"Dataset.map was called with num_proc {spy.seen}, never 2"


def _twin_config():
    with setup("import trl's SFTConfig"):
        cls = _config_cls()
    if cls is None:
        pytest.skip("this TRL has no SFTConfig: the setting can only be passed to SFTTrainer")
    return cls


_WORDS = [{"text": t} for t in _TEXTS]
_CUT = [{"text": t} for t in _TEXTS[:3]] + [{"text": _LONG}]
_CONTENT = [{"content": t} for t in _TEXTS]


def test_trainer_dataset_text_field(model, device, tmp_path):
    """SFTTrainer(dataset_text_field="content") tokenizes the content column."""
    _check_text_field(*_build(model, device, tmp_path, _CONTENT, trainer_kwargs={"dataset_text_field": "content"},
                              needs={"max_length": 64}))


def test_config_dataset_text_field(model, device, tmp_path):
    """The twin: SFTConfig(dataset_text_field="content") tokenizes the content column."""
    _twin_config()
    _check_text_field(*_build(model, device, tmp_path, _CONTENT, config_kwargs={"dataset_text_field": "content"},
                              needs={"max_length": 64}))


def test_trainer_packing(model, device, tmp_path):
    """SFTTrainer(packing=True) packs the examples into fewer, longer rows."""
    _check_packing(*_build(model, device, tmp_path, _WORDS, trainer_kwargs={"packing": True},
                           needs={"dataset_text_field": "text", "max_length": _PACK}))


def test_config_packing(model, device, tmp_path):
    """The twin: SFTConfig(packing=True) packs the examples into fewer, longer rows."""
    _twin_config()
    _check_packing(*_build(model, device, tmp_path, _WORDS, config_kwargs={"packing": True},
                           needs={"dataset_text_field": "text", "max_length": _PACK}))


def test_trainer_max_seq_length(model, device, tmp_path):
    """SFTTrainer(max_seq_length=16) cuts a long example to 16 tokens."""
    _check_max_length(*_build(model, device, tmp_path, _CUT, trainer_kwargs={"max_seq_length": _MAX},
                              needs={"dataset_text_field": "text"}))


def test_config_max_length(model, device, tmp_path):
    """The twin: SFTConfig(max_length=16) (max_seq_length= where the config has no max_length) cuts it to 16."""
    name = _length_name(_twin_config())
    record(config_field=name)
    _check_max_length(*_build(model, device, tmp_path, _CUT, config_kwargs={name: _MAX},
                              needs={"dataset_text_field": "text"}))


def test_trainer_dataset_num_proc(model, device, tmp_path):
    """SFTTrainer(dataset_num_proc=2) tokenizes with Dataset.map(num_proc=2)."""
    with _MapSpy() as spy:
        _build(model, device, tmp_path, _WORDS, trainer_kwargs={"dataset_num_proc": 2},
               needs={"dataset_text_field": "text", "max_length": 64})
    _check_num_proc(spy)


def test_config_dataset_num_proc(model, device, tmp_path):
    """The twin: SFTConfig(dataset_num_proc=2) tokenizes with Dataset.map(num_proc=2)."""
    _twin_config()
    with _MapSpy() as spy:
        _build(model, device, tmp_path, _WORDS, config_kwargs={"dataset_num_proc": 2},
               needs={"dataset_text_field": "text", "max_length": 64})
    _check_num_proc(spy)
