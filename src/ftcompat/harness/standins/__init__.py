"""Stand-ins for hub repos' remote code, and model folders shaped like those repos.

A case that checks ``trust_remote_code=True`` needs the repo's own Python files. Real checkpoints
bring theirs (on the GPU/Hub lane); a tiny model gets ftcompat's stand-in, written to touch
transformers' API the way the hub file does (see each stand-in's module docstring for where it
cannot). ``hub_folder`` builds the folder a user of the repo would load: the checkpoint's weights
(linked, never copied), its tokenizer, the repo's config.json shape and the remote code.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

WEIGHTS = (".safetensors", ".bin", ".pt", ".gguf")

# microsoft/Phi-3-mini-4k-instruct's config.json, as far as its shape goes: the tiny model's sizes
# and dtype stay (so the native model is the reference on the same weights), these keys come from
# the repo. rope_scaling is null there; transformers releases differ in what they make of that.
PHI3_REPO_CONFIG = {
    "architectures": ["Phi3ForCausalLM"],
    "model_type": "phi3",
    "rope_scaling": None,
    "sliding_window": 2047,
    "transformers_version": "4.40.2",
    "auto_map": {"AutoConfig": "configuration_phi3.Phi3Config",
                 "AutoModelForCausalLM": "modeling_phi3.Phi3ForCausalLM"},
}
PHI3_NATIVE_CONFIGURATION = '''\
"""transformers' own Phi3Config under the hub file's name (some forks of the repo ship this)."""
from transformers import Phi3Config as _NativePhi3Config


class Phi3Config(_NativePhi3Config):
    model_type = "phi3"
'''


# Folder name -> the code written there, in this process. transformers imports a folder's remote code
# as a module named after the folder, so one worker loading two folders of the same name but
# different code would run the first one's code for both: refused instead.
_WRITTEN: dict[str, str] = {}


def source(name: str) -> str:
    """The text of one stand-in file, e.g. ``phi3/modeling_phi3.py`` (from its loader: a repro script inlines it)."""
    import importlib.util

    module = f"{__name__}.{name.removesuffix('.py').replace('/', '.')}"
    return importlib.util.find_spec(module).loader.get_source(module)


def patched(text: str, replacements: Mapping[str, str]) -> str:
    """``text`` with each ``old`` replaced by ``new``; every ``old`` must occur exactly once."""
    for old, new in replacements.items():
        if text.count(old) != 1:
            raise ValueError(f"the remote code has {text.count(old)} copies of {old!r}, expected exactly one")
        text = text.replace(old, new)
    return text


def _link_or_copy(src: Path, dest: Path) -> None:
    if src.suffix in WEIGHTS:
        os.symlink(src.resolve(), dest)  # weights are read, never written: a link costs nothing
    else:
        shutil.copyfile(src, dest)


def phi3_folder(checkpoint: Path | str, dest: Path | str, *, own_code: bool = False, configuration: str = "hub",
                modeling_patch: Mapping[str, str] | None = None, modeling_append: str = "") -> Path:
    """A Phi-3 repo folder: the checkpoint's files, the repo's config.json shape, remote code beside it.

    ``own_code``: the checkpoint is the real repo, whose own remote code is used (``configuration``,
    ``modeling_patch`` and ``modeling_append`` still apply, to that code). Otherwise the stand-in is
    written in. ``configuration``: ``hub`` (the repo's configuration_phi3.py) or ``native``
    (transformers' own Phi3Config under that name). ``modeling_patch`` replaces lines (each exactly
    once); ``modeling_append`` adds code at the end, the way a user patches the cached file.
    """
    checkpoint, dest = Path(checkpoint), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(checkpoint.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            _link_or_copy(path, dest / path.name)
    if not own_code:
        config = json.loads((dest / "config.json").read_text())
        rope = config.pop("rope_parameters", None) or {}
        theta = config.pop("rope_theta", None) or rope.get("rope_theta") or 10000.0
        for key in ("rope_scaling", "partial_rotary_factor"):
            config.pop(key, None)
        config.update(PHI3_REPO_CONFIG, rope_theta=theta)
        (dest / "config.json").write_text(json.dumps(config, indent=2))
        (dest / "configuration_phi3.py").write_text(source("phi3/configuration_phi3.py"))
        (dest / "modeling_phi3.py").write_text(source("phi3/modeling_phi3.py"))
    if configuration == "native":
        (dest / "configuration_phi3.py").unlink(missing_ok=True)
        (dest / "configuration_phi3.py").write_text(PHI3_NATIVE_CONFIGURATION)
    elif configuration != "hub":
        raise ValueError(f"configuration must be 'hub' or 'native', got {configuration!r}")
    if modeling_patch or modeling_append:
        modeling = dest / "modeling_phi3.py"
        text = modeling.read_text(encoding="utf-8")
        modeling.unlink()  # a copy of the repo's file, never the file in the Hub cache
        modeling.write_text(patched(text, modeling_patch or {}) + modeling_append)
    _claim(dest)
    return dest


def _claim(dest: Path) -> None:
    """Refuse a folder name this process already used for different remote code (see ``_WRITTEN``)."""
    import hashlib

    code = "".join((dest / n).read_text(encoding="utf-8") for n in ("configuration_phi3.py", "modeling_phi3.py")
                   if (dest / n).exists())
    digest = hashlib.sha256(code.encode()).hexdigest()
    if _WRITTEN.setdefault(dest.name, digest) != digest:
        raise ValueError(f"remote-code folder name {dest.name!r} was already used for other code in this process; "
                         "give each variant its own folder name")


def remote_code_origin(own_code: bool, revision: str | None = None) -> str:
    """What a cell records about the code that ran: the hub's files or ftcompat's stand-in."""
    return f"hub files at {revision}" if own_code else "ftcompat stand-in (src/ftcompat/harness/standins/phi3)"
