"""Helpers more than one test module uses: a project file on disk, and an environment's fingerprint."""

import hashlib
import os
import shutil
import subprocess

import yaml

PINS = {"torch": "2.13.0", "transformers": "5.23.0", "trl": "1.16.0", "peft": "0.21.2", "bitsandbytes": "0.50.2",
        "accelerate": "1.15.0"}
CASE = '''"""Mine: a case of the project's own."""


def test_plain(model):
    assert model.path
'''


def project(tmp_path, **data):
    """Write ftcompat.yaml (one combo unless given) and a case folder with ``mine.py``; return the file."""
    body = {"version": 1, "extends": "builtin", "builtin_cases": ["api_surface"], "case_dirs": ["my_cases"],
            "combos": [{"id": "prod", "python": "3.11", "pins": PINS}],
            "cases": {"mine": {"models": ["tiny-llama"]}}, **data}
    (tmp_path / "my_cases").mkdir(exist_ok=True)
    (tmp_path / "my_cases" / "mine.py").write_text(CASE)
    path = tmp_path / "ftcompat.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path



def fingerprint(venv):
    """Every file of the env (path and bytes) and what `uv pip freeze` says: one hash, one list."""
    h = hashlib.sha256()
    for path in sorted(p for p in venv.rglob("*") if p.is_file() or p.is_symlink()):
        h.update(str(path.relative_to(venv)).encode() + b"\0")
        h.update(os.readlink(path).encode() if path.is_symlink() else path.read_bytes())
    freeze = subprocess.run([shutil.which("uv") or "uv", "pip", "freeze", "--python", str(venv / "bin" / "python")],
                            capture_output=True, text=True, check=True).stdout
    return h.hexdigest(), freeze


# Distributions that break at import the way real ones do: a pyarrow built for NumPy 2 (it says so only when
# imported), a datasets that imports it, a trl that imports a module nobody declared, and one that is fine.
BROKEN_PACKAGES = {
    "fakearrow": ("26.0.1", 'raise ImportError("fakearrow requires NumPy 2.0 or newer, found 1.26.4")\n'),
    "fakedatasets": ("5.0.1", "import fakearrow\n"),
    "faketrl": ("0.8.0", "import os\nimport undeclaredrich\n"),
    "fakeok": ("1.0", "VALUE = 1\n"),
}


def plant(site, packages=None):
    """Install ``packages`` (name: (version, code)) into a site-packages folder, metadata included."""
    for name, (version, code) in (packages or BROKEN_PACKAGES).items():
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text(code)
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "top_level.txt").write_text(name + "\n")
    return site
