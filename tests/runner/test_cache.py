"""The result cache's key: what the harness runs, all of it."""

from ftcompat.runner import cache


def test_the_harness_digest_covers_the_modules_the_harness_imports_and_the_stand_ins():
    files = {str(p.relative_to(cache.PACKAGE)) for p in cache.harness_files()}
    # outcome decides statuses, redact and paths rewrite what a cell says: all change results
    assert {"core/outcome.py", "core/redact.py", "core/paths.py", "harness/plugin.py",
            "harness/standins/phi3/modeling_phi3.py"} <= files
    assert "cli/__init__.py" not in files and "results/render.py" not in files  # the controller's own code does not
