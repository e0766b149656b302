"""An ad-hoc environment asks before a large CUDA download on a machine without a GPU."""

from pathlib import Path

import pytest

from ftcompat.core.domain import Combo
from ftcompat.core.errors import InputError
from ftcompat.env import space, venv

CUDA = space.Estimate(int(4.2 * space.GB), (("torch", "2.5.1", 900_000_000), ("nvidia-cudnn-cu12", "9.1.0.70",
                                                                               700_000_000)))
SMALL = space.Estimate(int(0.3 * space.GB), (("trl", "0.8.0", 300_000),))


def _env(ask_above_gb):
    return venv.AdhocVenv(Path("/r"), Combo("adhoc-torch2.5.1", "3.11", {"torch": "2.5.1"}), Path("/r/v"), (),
                          ask_above_gb)


def test_a_large_cuda_download_without_a_gpu_is_said_first(monkeypatch):
    monkeypatch.setattr(venv, "has_gpu", lambda: False)
    with pytest.raises(InputError, match=r"would download about 4\.2 GB \(torch 2\.5\.1, nvidia-cudnn-cu12 .*Pass "
                                         r"--yes to go on.*--torch-backend cpu"):
        _env(2.0).ask(CUDA)
    _env(2.0).ask(SMALL)  # small downloads go ahead
    _env(None).ask(CUDA)  # --yes, or a search or bisection step: never asked


def test_with_a_gpu_the_cuda_build_is_what_is_wanted(monkeypatch):
    monkeypatch.setattr(venv, "has_gpu", lambda: True)
    _env(2.0).ask(CUDA)


def test_the_matrix_environments_never_ask():
    venv.NoxVenv(Path("/r"), Combo("c", "3.11", {}), Path("/r/v"), ()).ask(CUDA)
