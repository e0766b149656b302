"""datasets 4: a local dataset folder with a loading script no longer loads, and ``ds["text"]`` is no longer a list.

datasets 4.0 removed loading scripts: ``load_dataset("<folder with <folder>.py>", trust_remote_code=True)`` raises
``RuntimeError: Dataset scripts are no longer supported, but found <folder>.py``
(https://github.com/huggingface/datasets/issues/7693). It also made ``ds["text"]`` a lazy ``datasets.Column`` instead
of a ``list`` (https://github.com/huggingface/datasets/pull/7614; reports https://github.com/huggingface/datasets/issues/7709,
https://github.com/Lightning-AI/litgpt/issues/2095),
so data-preparation code that treats a column as a list breaks, loudly or silently. Everything is written into the
test's temporary folder (a three-row ``data.jsonl`` and a ``GeneratorBasedBuilder`` script reading it); no network,
no model. Variants:
* ``script_folder``: ``load_dataset(folder, split="train", trust_remote_code=True)`` on the folder with the script;
* ``json_data_files``: the twin, ``load_dataset("json", data_files=<data.jsonl>, split="train")``;
* ``column_isinstance_list``: ``isinstance(ds["text"], list)``, the check code branches on (silently false on 4.x);
* ``column_concat``: ``ds["text"] + ["extra"]``;
* ``column_slice``: ``ds["text"][0:2]`` is the list of the first two texts;
* ``column_as_list``: the twin, ``list(ds["text"])`` and ``ds[:]["text"]`` are lists of all the texts.
Pass: the rows read are the three written (``{"text", "label"}``, in order), or the column idiom gives a ``list``
equal to the texts it should hold. Boundaries and causes: docs/findings/datasets_v4.md.
"""

from ftcompat.harness import record, setup, step

_ROWS = [{"text": "the cat sat", "label": 0}, {"text": "one two three", "label": 1},
         {"text": "red green blue", "label": 0}]
_TEXTS = [r["text"] for r in _ROWS]

# A minimal loading script of the kind hub datasets shipped before datasets 4: it reads the data file beside it.
_SCRIPT = '''
import json

import datasets


class Tiny(datasets.GeneratorBasedBuilder):
    VERSION = datasets.Version("1.0.0")

    def _info(self):
        return datasets.DatasetInfo(features=datasets.Features(
            {"text": datasets.Value("string"), "label": datasets.Value("int64")}))

    def _split_generators(self, dl_manager):
        path = dl_manager.download("data.jsonl")  # relative: resolved against the script's own folder
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={"path": path})]

    def _generate_examples(self, path):
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                yield i, json.loads(line)
'''


def _write_folder(tmp_path):
    """Write ``tiny/tiny.py`` (the script) and ``tiny/data.jsonl`` (the rows) under ``tmp_path``; return the folder."""
    import json

    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _ROWS), encoding="utf-8")
    (folder / "tiny.py").write_text(_SCRIPT, encoding="utf-8")
    return folder


def _check_rows(ds) -> None:
    rows = [{k: ds[i][k] for k in ("text", "label")} for i in range(len(ds))]
    record(rows=len(ds), columns=list(ds.column_names))
    assert rows == _ROWS, f"read {rows}, wrote {_ROWS}"


def _dataset(tmp_path):
    """The three rows as an in-memory ``Dataset`` (setup, not an idiom)."""
    with setup("Dataset.from_list of the three rows"):
        from datasets import Dataset

        return Dataset.from_list(_ROWS)


def test_script_folder(tmp_path):
    """``load_dataset(<folder with a loading script>, trust_remote_code=True)`` reads the rows the script yields."""
    with setup("write the loading script and its data; import datasets"):
        folder = _write_folder(tmp_path)
        from datasets import load_dataset
    with step("load_dataset(<folder with tiny.py>, split='train', trust_remote_code=True)"):
        ds = load_dataset(str(folder), split="train", trust_remote_code=True, cache_dir=str(tmp_path / "cache"))
    _check_rows(ds)


def test_json_data_files(tmp_path):
    """The twin: ``load_dataset("json", data_files=<data.jsonl>)`` reads the same rows without any script."""
    with setup("write the data file; import datasets"):
        folder = _write_folder(tmp_path)
        from datasets import load_dataset
    with step("load_dataset('json', data_files=<data.jsonl>, split='train')"):
        ds = load_dataset("json", data_files=str(folder / "data.jsonl"), split="train",
                          cache_dir=str(tmp_path / "cache"))
    _check_rows(ds)


def test_column_isinstance_list(tmp_path):
    """``isinstance(ds["text"], list)``: code that branches on it takes the other branch when it is not."""
    ds = _dataset(tmp_path)
    with step('ds["text"]'):
        col = ds["text"]
    record(column_type=f"{type(col).__module__}.{type(col).__name__}")
    assert isinstance(col, list), f'ds["text"] is a {type(col).__module__}.{type(col).__name__}, not a list'


def test_column_concat(tmp_path):
    """``ds["text"] + ["extra"]`` is the texts with one more."""
    ds = _dataset(tmp_path)
    with step('ds["text"] + ["extra"]'):
        got = ds["text"] + ["extra"]
    record(result_type=type(got).__name__)
    assert got == [*_TEXTS, "extra"], f"got {got!r}"


def test_column_slice(tmp_path):
    """``ds["text"][0:2]`` is a list of the first two texts."""
    ds = _dataset(tmp_path)
    with step('ds["text"][0:2]'):
        got = ds["text"][0:2]
    record(result_type=type(got).__name__)
    assert isinstance(got, list) and got == _TEXTS[:2], f"got {type(got).__name__} {got!r}"


def test_column_as_list(tmp_path):
    """The twin: ``list(ds["text"])`` and ``ds[:]["text"]`` are lists of every text, on any release."""
    ds = _dataset(tmp_path)
    with step('list(ds["text"]) and ds[:]["text"]'):
        as_list, batch = list(ds["text"]), ds[:]["text"]
    record(list_type=type(as_list).__name__, batch_type=type(batch).__name__)
    assert isinstance(batch, list) and as_list == _TEXTS and batch == _TEXTS, f"got {as_list!r} and {batch!r}"
