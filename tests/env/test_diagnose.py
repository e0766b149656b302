"""An installer's failure is told apart: the versions' verdict, or the machine's (and which part of it)."""

from ftcompat.env import diagnose

# uv 0.13.9's own words, run on this machine with --torch-backend cpu and no route to PyTorch's index
PYTORCH_DOWN = """error: Request failed after 3 retries in 10.4s
  Caused by: Failed to fetch: `https://download.pytorch.org/whl/cpu/torch/`
  Caused by: error sending request for url (https://download.pytorch.org/whl/cpu/torch/)
  Caused by: client error (Connect)
  Caused by: dns error
  Caused by: failed to lookup address information: Name or service not known
"""
PYPI_DOWN = PYTORCH_DOWN.replace("https://download.pytorch.org/whl/cpu/torch/", "https://pypi.org/simple/torch/")
NO_SOLUTION = """  × No solution found when resolving dependencies:
  ╰─▶ Because there is no version of trl==9.9 and you require trl==9.9, we can conclude that your requirements are
      unsatisfiable.
"""


def test_pytorchs_index_out_of_reach_is_the_machines_and_names_the_backend():
    failure = diagnose.classify(PYTORCH_DOWN, 2)
    assert failure.machine and failure.transient
    assert failure.reason.startswith("PyTorch's index could not be reached")
    assert "--torch-backend" in failure.todo and "PIP_FIND_LINKS" in failure.todo


def test_the_package_index_out_of_reach_is_the_machines():
    failure = diagnose.classify(PYPI_DOWN, 2)
    assert failure.machine and failure.reason.startswith("the package index could not be reached")


def test_no_solution_is_the_versions_verdict():
    failure = diagnose.classify(NO_SOLUTION, 1)
    assert not failure.machine and "no version of trl==9.9" in failure.reason
