"""The half of ftcompat that runs inside each pinned environment.

Cases import the helpers below; nothing heavy (torch, transformers) is imported at module level,
so the plugin loads in any environment and a broken stack shows up as a cell, not a crash.
"""

from ftcompat.harness.api import CaseSetupError, record, setup, step

__all__ = ["CaseSetupError", "record", "setup", "step"]
