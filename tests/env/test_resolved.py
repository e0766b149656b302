"""Reading an environment from its files, and rebuilding one that was broken by hand."""

from ftcompat.env import resolved


def fake_venv(root, packages):
    """A venv tree with dist-info records for ``{name: version}``, each with one module file."""
    venv = root / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    sp = venv / "lib" / "python3.11" / "site-packages"
    for name, version in packages.items():
        info = sp / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "RECORD").write_text(f"{name}/__init__.py,,\n{name}-{version}.dist-info/METADATA,,\n")
        (sp / name).mkdir()
        (sp / name / "__init__.py").write_text("")
    return venv


def test_resolved_versions_come_from_the_files(tmp_path):
    venv = fake_venv(tmp_path, {"trl": "0.20.0", "peft": "0.17.0"})
    got = resolved.resolved(venv)
    assert got["trl"] == "0.20.0" and got["peft"] == "0.17.0" and got["torch"] is None


def test_a_deleted_package_or_file_is_noticed(tmp_path):
    venv = fake_venv(tmp_path, {"trl": "0.20.0", "peft": "0.17.0"})
    expected = {"trl": "0.20.0", "peft": "0.17.0", "torch": None}
    assert resolved.problems(venv, expected) == []
    sp = resolved.site_packages(venv)
    (sp / "peft" / "__init__.py").unlink()
    import shutil

    shutil.rmtree(sp / "trl-0.20.0.dist-info")
    got = resolved.problems(venv, expected)
    assert got == ["trl 0.20.0 is not installed any more", "peft 0.17.0 lost 1 file(s), e.g. peft/__init__.py"]
