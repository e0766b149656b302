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
