"""The command-line wrapper: user errors are one `error:` line (exit 2), anything unexpected is one line that names
the exception, the file and where it was raised (exit 1), and HF_SEG_DEBUG=1 shows the traceback."""

import os
import subprocess
import sys

from hf_seg.errors import one_line

from conftest import REPO  # noqa: E402

PROGRAM = """
import sys
from hf_seg.cli import run_cli
def fail():
    if sys.argv[1] == "oserror":
        open(sys.argv[2])  # a folder: IsADirectoryError, an OSError that is no user error hf_seg knows
    if sys.argv[1] == "zero":
        1 / 0
    raise ValueError("recipe key 'x' is wrong")
run_cli(fail)
"""


def run(kind: str, *args: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROGRAM, kind, *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "HF_SEG_DEBUG": "", **env}, timeout=120)


def test_unexpected_exceptions_are_one_line_with_type_place_and_hint():
    proc = run("zero")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: unexpected ZeroDivisionError: division by zero")
    assert "[raised in <string>:" in line and "HF_SEG_DEBUG=1" in line


def test_an_unexpected_file_error_names_the_file(tmp_path):
    folder = tmp_path / "a_folder"
    folder.mkdir()
    proc = run("oserror", str(folder))
    (line,) = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and line.startswith("error: unexpected IsADirectoryError (file '")
    assert "a_folder" in line and "HF_SEG_DEBUG=1" in line


def test_user_errors_exit_2_and_debug_shows_the_traceback():
    proc = run("value")
    assert proc.returncode == 2 and proc.stderr.strip() == "error: recipe key 'x' is wrong"
    debug = run("zero", HF_SEG_DEBUG="1")
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "ZeroDivisionError" in debug.stderr


def test_data_worker_tracebacks_are_reduced_to_the_original_message():
    wrapped = ValueError("Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call "
                         "last):\n  File \"x.py\", line 1, in f\n    g()\nhf_seg.data.errors.DataError: image 'a.png' "
                         "cannot be decoded (OSError: broken data stream); replace or remove the file\n")
    assert one_line(wrapped) == "image 'a.png' cannot be decoded (OSError: broken data stream); replace or remove the file"
    assert one_line(ValueError("two\n  lines")) == "two lines"
