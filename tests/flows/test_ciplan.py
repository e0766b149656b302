import json

import pytest

from ftcompat.cli import main
from ftcompat.flows import ciplan

GPU = ["self-hosted", "gpu"]


def session(name, *tags, python="3.11"):
    return {"session": name, "name": name, "description": "", "python": python, "tags": list(tags),
            "call_spec": {}}


SESSIONS = [
    session("tf4.47", "combo", "cpu", "seed"),
    session("tf4.54-trl0.20", "combo", "cpu"),
    session("tf5.0", "combo", "cpu", "seed"),
    session("latest", "combo", "cpu", "latest"),
    session("gpu-latest", "combo", "gpu", "network", "latest"),
    session("render", "cpu", "gpu", python=False),
    session("tests", python=False),
]


def combos(matrix):
    return [e["combo"] for e in matrix["include"]]


def test_every_combo_by_default_and_not_render_or_tests():
    matrix = ciplan.plan(SESSIONS, GPU, "ubuntu-latest", None)
    assert combos(matrix) == ["tf4.47", "tf4.54-trl0.20", "tf5.0", "latest", "gpu-latest"]
    assert ciplan.plan(SESSIONS, GPU, "ubuntu-latest", "") == matrix
    assert set(matrix) == {"include"}  # any other key would become a matrix dimension in GitHub


def test_gpu_combos_get_the_gpu_runner_labels_and_cpu_combos_the_hosted_runner():
    by_id = {e["combo"]: e for e in ciplan.plan(SESSIONS, ["self-hosted", "a100"], "ubuntu-24.04", None)["include"]}
    assert by_id["gpu-latest"]["gpu"] is True
    assert by_id["gpu-latest"]["runner"] == ["self-hosted", "a100"]
    assert by_id["tf4.47"]["gpu"] is False
    assert by_id["tf4.47"]["runner"] == "ubuntu-24.04"
    assert by_id["tf4.47"]["tags"] == ["cpu", "seed"]  # the combo tag is implied
    assert {e["kind"] for e in by_id.values()} == {"combo"}


def test_select_globs_commas_spaces_and_tags():
    assert combos(ciplan.plan(SESSIONS, GPU, "u", "tf*")) == ["tf4.47", "tf4.54-trl0.20", "tf5.0"]
    assert combos(ciplan.plan(SESSIONS, GPU, "u", "tf5.0, latest")) == ["tf5.0", "latest"]
    assert combos(ciplan.plan(SESSIONS, GPU, "u", "tf4.4? gpu-*")) == ["tf4.47", "gpu-latest"]
    assert combos(ciplan.plan(SESSIONS, GPU, "u", "tag:seed")) == ["tf4.47", "tf5.0"]
    assert combos(ciplan.plan(SESSIONS, GPU, "u", "tag:gpu")) == ["gpu-latest"]


def test_a_selector_matching_no_combo_is_an_error_that_lists_them():
    with pytest.raises(ciplan.PlanError, match=r"'tf9\*'.*combos: tf4.47, "):
        ciplan.plan(SESSIONS, GPU, "u", "tf5.0,tf9*")
    with pytest.raises(ciplan.PlanError):
        ciplan.plan(SESSIONS, GPU, "u", "render")  # a session, but not a combo


def test_pins_add_an_adhoc_entry_and_alone_select_no_combo():
    matrix = ciplan.plan(SESSIONS, GPU, "ubuntu-latest", "", ["transformers==4.56.2 trl==0.23.0"])
    assert matrix["include"] == [{
        "combo": "adhoc-transformers4.56.2-trl0.23.0", "kind": "adhoc", "gpu": False,
        "runner": "ubuntu-latest", "python": "3.11", "tags": ["adhoc"],
        "pins": "transformers==4.56.2 trl==0.23.0",
    }]
    both = ciplan.plan(SESSIONS, GPU, "u", "*", ["trl==0.23.0", "peft==0.17.1"])
    assert combos(both)[-1] == "adhoc-peft0.17.1-trl0.23.0"  # the id `ftcompat adhoc` itself uses
    assert len(both["include"]) == 6


@pytest.mark.parametrize("bad", ["transformers>=4.56", "trl==not-a-version", "$(id)==1.0"])
def test_bad_pins_fail_the_plan(bad):
    with pytest.raises(ciplan.PlanError):
        ciplan.plan(SESSIONS, GPU, "u", "", [bad])


def test_empty_pins_are_no_pins():
    assert combos(ciplan.plan(SESSIONS, GPU, "u", "", [""])) == combos(ciplan.plan(SESSIONS, GPU, "u", None))


def test_no_gpu_runner_leaves_gpu_combos_out():
    assert "gpu-latest" not in combos(ciplan.plan(SESSIONS, [], "u", None))


@pytest.mark.parametrize(("text", "labels"), [
    ("", GPU), (None, GPU), ('["self-hosted","gpu"]', GPU), ('["self-hosted", "linux", "h100"]',
                                                              ["self-hosted", "linux", "h100"]),
    ('"gpu-box"', ["gpu-box"]), ("gpu-box", ["gpu-box"]), ("none", []), ("[]", []),
])
def test_gpu_runner_setting(text, labels):
    assert ciplan.gpu_runner_labels(text) == labels


@pytest.mark.parametrize("text", ['{"labels": 1}', "[1, 2]", '[""]'])
def test_bad_gpu_runner_setting(text):
    with pytest.raises(ciplan.PlanError):
        ciplan.gpu_runner_labels(text)


def test_outputs_split_the_matrix_per_job_and_say_whether_the_run_is_complete():
    full = ciplan.plan(SESSIONS, GPU, "u", None)
    out = ciplan.outputs(full, SESSIONS, GPU)
    assert json.loads(out["matrix"]) == full
    assert [e["combo"] for e in json.loads(out["gpu"])["include"]] == ["gpu-latest"]
    assert len(json.loads(out["cpu"])["include"]) == 4
    assert json.loads(out["adhoc"]) == {"include": []}
    assert (out["any_cpu"], out["any_gpu"], out["any_adhoc"], out["complete"]) == ("true", "true", "false", "true")
    assert all("\n" not in v for v in out.values())  # one GITHUB_OUTPUT line each

    some = ciplan.outputs(ciplan.plan(SESSIONS, GPU, "u", "tf*"), SESSIONS, GPU)
    assert (some["any_gpu"], some["complete"]) == ("false", "false")
    adhoc_only = ciplan.outputs(ciplan.plan(SESSIONS, GPU, "u", "", ["trl==0.23.0"]), SESSIONS, GPU)
    assert (adhoc_only["any_cpu"], adhoc_only["any_adhoc"], adhoc_only["complete"]) == ("false", "true", "false")
    # Without a GPU runner, every CPU combo is the whole grid this repository can run.
    no_gpu = ciplan.outputs(ciplan.plan(SESSIONS, [], "u", None), SESSIONS, [])
    assert (no_gpu["any_gpu"], no_gpu["complete"]) == ("false", "true")


def run_cli(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_reads_a_session_list_and_writes_github_outputs(tmp_path, capsys):
    listing = tmp_path / "sessions.json"
    listing.write_text(json.dumps(SESSIONS))
    gh_out = tmp_path / "github_output"
    gh_out.write_text("earlier=1\n")
    code, out, _ = run_cli(["ci-plan", "--sessions", str(listing), "--select", "tf5.0 gpu-latest",
                            "--gpu-runner", '["self-hosted","gpu"]', "--github-output", str(gh_out)], capsys)
    assert code == 0
    assert combos(json.loads(out)) == ["tf5.0", "gpu-latest"]
    lines = dict(line.split("=", 1) for line in gh_out.read_text().splitlines())
    assert lines["earlier"] == "1"  # appended, as GITHUB_OUTPUT wants
    assert json.loads(lines["gpu"])["include"][0]["runner"] == ["self-hosted", "gpu"]
    assert lines["complete"] == "false"


def test_cli_reports_a_bad_selector_with_status_2(tmp_path, capsys):
    listing = tmp_path / "sessions.json"
    listing.write_text(json.dumps(SESSIONS))
    code, out, err = run_cli(["ci-plan", "--sessions", str(listing), "--select", "nope"], capsys)
    assert (code, out) == (2, "")
    assert "'nope' match no combo" in err
