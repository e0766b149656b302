"""Case discovery reads variants from source without importing the case."""

from conftest import FIXTURES, ROOT

from ftcompat.config.cases import discover, read_case


def test_variants_and_model_use(fixture_cases):
    assert sorted(fixture_cases) == ["api", "gen"]
    gen = fixture_cases["gen"]
    assert gen.variants == ("native", "remote")
    assert gen.uses_model == (True, True)
    assert fixture_cases["api"].variants == ("import",)
    assert fixture_cases["api"].uses_model == (False,)
    assert gen.summary == "Fixture case: two variants on a model."


def test_helpers_are_not_cases():
    assert "_shared" not in discover(FIXTURES / "cases")


def test_every_repo_case_is_documented():
    """Each case says which symptom and which report it reproduces; each variant has a docstring."""
    import ast

    for case in discover(ROOT / "cases").values():
        assert len(case.doc) > 200, f"{case.path}: docstring too thin to say symptom and upstream report"
        assert "http" in case.doc, f"{case.path}: docstring names no upstream report"
        tree = ast.parse(case.path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                assert ast.get_docstring(node), f"{case.path}:{node.name} has no docstring"


def test_repo_cases_import_nothing_heavy_at_module_level():
    import ast

    heavy = {"torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate", "datasets"}
    for case in discover(ROOT / "cases").values():
        tree = ast.parse(case.path.read_text())
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            assert not heavy & set(names), f"{case.path}: imports {names} at module level"


def test_read_case_on_file(tmp_path):
    p = tmp_path / "x.py"
    p.write_text('"""Doc."""\ndef test_a(model):\n    """A."""\nasync def test_b():\n    pass\n')
    case = read_case(p)
    assert case.variants == ("a",)


def test_every_case_takes_a_broken_import_outside_its_subject_for_the_environment():
    """The same environment defect (datasets on a pyarrow built for NumPy 2) is error in every case, and a
    case's subject names only stack packages (and triton, torch's compiler, which bitsandbytes imports), so only a
    skew among them can be its verdict."""
    from ftcompat.config.cases import discover
    from ftcompat.core.domain import STACK
    from ftcompat.core.health import Defect, outside

    arrow = Defect("datasets", "ImportError", "pyarrow requires NumPy 2.0 or newer, found 1.26.4", "pyarrow")
    rich = Defect("trl", "ModuleNotFoundError", "No module named 'rich'", "trl", "rich")
    cases = discover(ROOT / "cases")
    assert len(cases) >= 20
    for case in cases.values():
        assert set(case.subject) <= {*STACK, "triton"}, case.id
        assert outside(arrow, case.subject) and outside(rich, case.subject), case.id
    assert {c.id for c in cases.values() if c.subject} == {"api_surface", "bnb_triton_ops", "import_skew"}


def test_a_subject_is_read_from_the_source_and_must_be_a_literal(tmp_path):
    import pytest

    from ftcompat.core.errors import InputError

    path = tmp_path / "mine.py"
    path.write_text('"""Doc."""\nSUBJECT = ("trl", "peft")\nNEEDS = ["sklearn"]\n\ndef test_x():\n    pass\n')
    case = read_case(path)
    assert (case.subject, case.needs) == (("trl", "peft"), ("sklearn",))
    path.write_text('"""Doc."""\nSUBJECT = names()\n\ndef test_x():\n    pass\n')
    with pytest.raises(InputError, match=r"mine.py:2: SUBJECT must be a literal tuple of names"):
        read_case(path)


def test_a_case_file_that_is_not_python_is_exit_2_naming_it_in_validate_run_and_cases(tmp_path, monkeypatch, capsys):
    from helpers import project

    from ftcompat.cli import main

    monkeypatch.chdir(tmp_path)
    config = project(tmp_path)
    case = tmp_path / "my_cases" / "mine.py"
    for body, why in ((b'"""Doc."""\ndef test_x(:\n    pass\n', "mine.py:2: invalid syntax"),
                      (b'"""Doc \xff."""\n', "mine.py: not UTF-8 text (byte 7 is 0xff)")):
        case.write_bytes(body)
        for command in (["validate"], ["cases"], ["run", "--combos", "prod"]):
            assert main(["--config", str(config), *command]) == 2, command
            assert why in capsys.readouterr().err, command
    assert not (tmp_path / ".nox").exists()
