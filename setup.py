"""Build hook: map the repository's case library and default matrix into the package.

The repository keeps ``matrix.yaml``, ``cases/`` and ``noxfile.py`` at its top level; an installed
ftcompat finds them as ``ftcompat/library/`` (``ftcompat.config.library``). An editable install
reads the checkout's own, so nothing is copied for it.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
LIBRARY = ("matrix.yaml", "noxfile.py", "cases")


class BuildWithLibrary(build_py):
    """build_py, then copy the library into the built package."""

    def run(self):
        """Build the package and add ftcompat/library/ to it."""
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "ftcompat" / "library"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in LIBRARY:
            src = HERE / name
            if src.is_dir():
                shutil.copytree(src, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, target / name)


setup(cmdclass={"build_py": BuildWithLibrary})
