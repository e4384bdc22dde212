"""run_json_job: a real child Python process, its JSON answer, its failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedlab.errors import BackendError
from embedlab.json_child import run_json_job

CHILD = """
import json, sys, time
job = json.loads(sys.stdin.read())
time.sleep(job.get("sleep", 0))
print("progress noise")
print("a warning", file=sys.stderr)
if job.get("fail"):
    print(json.dumps({"error": "bad job", "type": "ConfigError"}))
    sys.exit(3)
print(json.dumps({"doubled": [2 * x for x in job["values"]]}))
"""


@pytest.fixture
def child_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "echo_child.py").write_text(CHILD)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return "echo_child"


def test_the_last_json_line_of_stdout_is_the_answer(child_module: str) -> None:
    done = run_json_job(child_module, {"values": [1, 2, 3]}, "doubling")
    assert (done.returncode, done.result, done.stderr_tail) == (0, {"doubled": [2, 4, 6]}, "a warning")


def test_a_failure_on_purpose_comes_back_as_its_error_object(child_module: str) -> None:
    done = run_json_job(child_module, {"fail": True}, "doubling")
    assert done.returncode == 3 and done.result == {"error": "bad job", "type": "ConfigError"}


def test_a_missing_module_is_a_failed_exit_with_its_last_stderr_line() -> None:
    done = run_json_job("embedlab.no_such_probe", {"x": 1}, "probing")
    assert done.returncode == 1 and done.result == {}
    assert done.stderr_tail.endswith("No module named embedlab.no_such_probe")


def test_a_job_over_its_time_is_a_backend_error(child_module: str) -> None:
    with pytest.raises(BackendError, match=r"sleeping took over 0\.5 s"):
        run_json_job(child_module, {"sleep": 30, "values": []}, "sleeping", timeout_s=0.5)
