"""The upstream projects a bug report can go to: their trackers, bug-template sections and areas.

Section names follow each project's ``.github/ISSUE_TEMPLATE/bug-report.yml``. Areas follow the
"Who can help?" guide of those templates; people change, so the report names the area and links
the template's current list instead of tagging anyone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ftcompat.core.record import Record


@dataclass(frozen=True)
class Project:
    """An upstream project's tracker and bug template."""

    name: str
    repo: str
    sections: tuple[str, ...]
    env_command: str | None
    areas: tuple[tuple[str, str], ...] = ()

    @property
    def new_issue_url(self) -> str:
        """Where to open a bug report with the project's template."""
        return f"https://github.com/{self.repo}/issues/new?template=bug-report.yml"

    @property
    def template_url(self) -> str:
        """The template whose "Who can help?" list says whom to tag now."""
        return f"https://github.com/{self.repo}/blob/main/.github/ISSUE_TEMPLATE/bug-report.yml"

    def area(self, files: list[str]) -> str | None:
        """The maintainers' area for the innermost file of this project a traceback went through."""
        for file in reversed(files):
            for pattern, area in self.areas:
                if re.search(pattern, file):
                    return area
        return None


HF_SECTIONS = ("System Info", "Who can help?", "Reproduction", "Expected behavior")
PROJECTS: Mapping[str, Project] = {
    "transformers": Project("transformers", "huggingface/transformers", HF_SECTIONS, "transformers env", (
        (r"transformers_modules/", "model hub: remote code of the model repo (and text models)"),
        (r"transformers/(generation/|cache_utils)", "generate"),
        (r"transformers/(quantizers/|integrations/bitsandbytes)", "quantization (bitsandbytes)"),
        (r"transformers/(trainer|training_args)", "trainer"),
        (r"transformers/(tokenization|convert_slow|processing_utils|models/auto/(tokenization|processing))",
         "tokenizers"),
        (r"transformers/(modeling_utils|integrations/accelerate|core_model_loading)", "Big Model Inference"),
        (r"transformers/models/", "text models"),
    )),
    "trl": Project("trl", "huggingface/trl", ("Reproduction", "System Info", "Checklist"), "trl env", (
        (r"trl/trainer/sft", "SFTTrainer"), (r"trl/trainer/", "trainers"), (r"trl/models/", "models"),
    )),
    "peft": Project("peft", "huggingface/peft", HF_SECTIONS, None, ((r"peft/", "library"),)),
    "bitsandbytes": Project("bitsandbytes", "bitsandbytes-foundation/bitsandbytes",
                            ("System Info", "Reproduction", "Expected behavior"), None),
    "accelerate": Project("accelerate", "huggingface/accelerate", HF_SECTIONS, "accelerate env"),
}
_REPO = re.compile(r"github\.com/([\w.-]+)/([\w.-]+)/(?:issues|pull)/\d+")
_FROM = re.compile(r"from '([\w]+)'|site-packages/([\w]+)/")


def frames(traceback: str | None) -> list[str]:
    """The file of every frame in a recorded traceback, outermost first."""
    return re.findall(r'File "([^"]+)"', traceback or "")


def project_of(cell: Record, case_doc: str = "") -> tuple[Project, str]:
    """The project whose code raised, and how that was decided (for the report to say)."""
    raised_at = cell.origin or {}
    origin = raised_at.get("package")
    if origin == "transformers_modules":
        return PROJECTS["transformers"], "raised in the model repo's remote code, which transformers loaded"
    if origin is not None and origin in PROJECTS:
        return PROJECTS[origin], f"raised in {origin}'s code ({raised_at['file']})"
    for file in reversed(frames(cell.traceback)):
        m = re.search(r"site-packages/(\w+)/", file)
        if m and m.group(1) in PROJECTS:
            return PROJECTS[m.group(1)], f"innermost {m.group(1)} frame of the traceback"
    url = (cell.known_issue or {}).get("url") or ""
    m = _REPO.search(url)
    if m and m.group(2) in PROJECTS:
        return PROJECTS[m.group(2)], "the known issue that covers this cell is filed there"
    for m in _FROM.finditer(cell.message or ""):
        name = m.group(1) or m.group(2)
        if name in PROJECTS:
            return PROJECTS[name], f"the error names {name}"
    for m in _REPO.finditer(case_doc):
        if m.group(2) in PROJECTS:
            return PROJECTS[m.group(2)], "the first upstream issue the case's docstring cites"
    return PROJECTS["transformers"], "no frame or reference pointed elsewhere"
