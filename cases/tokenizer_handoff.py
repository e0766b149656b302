"""Handoff: a BPE tokenizer saved by one tokenizers/transformers (training) and loaded by another (serving).

tokenizers 0.20 writes a BPE model's ``merges`` in ``tokenizer.json`` as pairs (``["Ġ", "t"]``) where earlier
releases wrote one string (``"Ġ t"``) and read only that, so a tokenizer saved by a newer stack fails to load in an
older one with ``Exception: data did not match any variant of untagged enum ModelWrapper``
(https://github.com/allenai/open-instruct/issues/738; the new format: https://github.com/huggingface/swift-transformers/pull/131).
Each producer saves the tiny model's byte-level BPE tokenizer (its fast tokenizer, ``save_pretrained``) and the ids
it gives three texts; its consumer, in the other environment, loads the folder with ``AutoTokenizer``:
* ``tokenizer_json``: the folder exactly as saved.
* ``tokenizer_json_rewritten``: the twin, the workarounds: a copy whose ``merges`` are rewritten as the single
  strings every release reads, and whose ``tokenizer_config.json`` names ``PreTrainedTokenizerFast`` where
  transformers 5 wrote its own ``TokenizersBackend``, which transformers 4 cannot resolve (``ValueError: Tokenizer
  class TokenizersBackend does not exist or is not currently imported``,
  https://github.com/huggingface/transformers/issues/47553); what was rewritten is recorded.
Pass: it loads and gives the producer's ids for every text. Boundaries, exact errors:
docs/findings/tokenizer_handoff.md.
"""

import json

from ftcompat.harness import kit, record, setup, step

_TEXTS = ["The quick brown fox jumps over the lazy dog.", "Fine-tuning with LoRA adapters.", "user: capital? Paris"]


def _save(model, folder):
    """Save the tokenizer and the ids it gives ``_TEXTS``; record the tokenizers release and the merges format."""
    import tokenizers

    with setup("the tiny model's fast tokenizer"):
        tok = kit.tokenizer(model.path)
    with step("tokenizer.save_pretrained(folder)"):
        tok.save_pretrained(str(folder))
    (folder / "expected_ids.json").write_text(json.dumps([tok(t)["input_ids"] for t in _TEXTS]))
    merges = json.loads((folder / "tokenizer.json").read_text())["model"].get("merges") or []
    config = json.loads((folder / "tokenizer_config.json").read_text())
    record(saved_by_tokenizers=tokenizers.__version__, merges_as_pairs=bool(merges) and isinstance(merges[0], list),
           tokenizer_class=config.get("tokenizer_class"))


def _rewrite(folder, dest) -> list[str]:
    """Copy ``folder`` to ``dest`` in the forms every release reads; return what was rewritten."""
    import shutil

    shutil.copytree(folder, dest)
    changed = []
    data = json.loads((dest / "tokenizer.json").read_text())
    merges = data["model"].get("merges") or []
    if merges and isinstance(merges[0], list):
        data["model"]["merges"] = [" ".join(m) for m in merges]
        (dest / "tokenizer.json").write_text(json.dumps(data))
        changed.append("merges as strings")
    config = json.loads((dest / "tokenizer_config.json").read_text())
    if config.get("tokenizer_class") == "TokenizersBackend":
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        (dest / "tokenizer_config.json").write_text(json.dumps(config))
        changed.append("tokenizer_class TokenizersBackend -> PreTrainedTokenizerFast")
    return changed


def _load(folder, tmp_path, rewritten: bool):
    """Load the other environment's tokenizer folder and compare its ids with the producer's."""
    import tokenizers
    from transformers import AutoTokenizer

    with setup("the producer's ids" + (", a copy in the forms every release reads" if rewritten else "")):
        expected = json.loads((folder / "expected_ids.json").read_text())
        path, changed = folder, []
        if rewritten:
            path = tmp_path / "tokenizer"
            changed = _rewrite(folder, path)
    record(loaded_by_tokenizers=tokenizers.__version__, rewritten=changed)
    with step("AutoTokenizer.from_pretrained(folder)"):
        tok = AutoTokenizer.from_pretrained(str(path))
    got = [tok(t)["input_ids"] for t in _TEXTS]
    differ = [i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b]
    record(texts_differing=differ, fast=bool(getattr(tok, "is_fast", False)))
    assert not differ, f"text {differ[0]} tokenizes to {got[differ[0]]} here, {expected[differ[0]]} where it was saved"


def produce_tokenizer_json(model, device, handoff):
    """Save the tokenizer as this stack writes it."""
    _save(model, handoff)


def test_tokenizer_json(model, device, handoff, tmp_path):
    """AutoTokenizer.from_pretrained on the folder exactly as the other environment saved it."""
    _load(handoff, tmp_path, rewritten=False)


def produce_tokenizer_json_rewritten(model, device, handoff):
    """Save the tokenizer as this stack writes it."""
    _save(model, handoff)


def test_tokenizer_json_rewritten(model, device, handoff, tmp_path):
    """The workarounds: merges as single strings and a tokenizer class every release knows, in a copy."""
    _load(handoff, tmp_path, rewritten=True)
