"""The `hf-seg` command line (also `python -m hf_seg`): one program, a subcommand per pipeline stage.

Each subcommand lives in its own module with `add_arguments(parser)` and `run(args)`; only the chosen one is
imported, so `hf-seg --help` is quick. A user's mistake (any HfSegError, ValueError or FileNotFoundError) becomes one
`error:` line on stderr and exit status 2. Anything else is a bug or an environment problem: one line naming the
exception, the file it concerns and where it was raised, exit status 1; HF_SEG_DEBUG=1 shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Callable, Optional

from hf_seg import __version__
from hf_seg.errors import Terminated, one_line

COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train", "train a model from a JSON recipe into a run folder"),
    "audit": ("audit", "print a recipe's split audit (sizes, groups, leaks, near-duplicates) without training"),
    "eval": ("eval_run", "evaluate a run's best checkpoint on a split (the test split once)"),
    "predict": ("predict", "segment new images with a run, a saved model or a Hub id"),
    "benchmark": ("benchmark", "parameters, MACs/FLOPs, speed and memory of models"),
    "study": ("study", "run a whole study (variants x seeds), resumably, and write its report"),
    "report": ("report", "aggregate a study folder's runs into report.md and report.pdf"),
    "push": ("push", "publish a run's best checkpoint with its model card to the Hub"),
    "export": ("export", "export a trained model to ONNX, checked against onnxruntime"),
    "compare-sam": ("compare_sam", "a trained run against SAM with oracle prompts on the same images"),
    "download": ("download", "download a public dataset (needs the network)"),
    "augmentations": ("augmentations", "draw augmented image/mask overlays to a PNG grid"),
}
"""Subcommand -> (module under hf_seg.cli, one-line help)."""


def run_cli(fn: Callable[[], None]) -> None:
    """Run a command body; every exception becomes one `error:` line (the traceback only with HF_SEG_DEBUG=1).
    While it runs (in the main thread: the only one that may set handlers), `kill` (SIGTERM) stops it as Ctrl-C does:
    cleanup runs and one line says so."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        _report_errors(fn)
    finally:
        if previous is not None:  # None: a handler set outside Python, which cannot be put back
            signal.signal(signal.SIGTERM, previous)


def _report_errors(fn: Callable[[], None]) -> None:
    """Call fn; turn each exception into its `error:` line and exit status."""
    debug = os.environ.get("HF_SEG_DEBUG", "") not in ("", "0")
    try:
        fn()
    except (ValueError, FileNotFoundError) as e:
        if debug:
            raise
        print(f"error: {one_line(e)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted; to continue, add --resume to a training command, or run any other command "
              "(a study resumes where it stopped) again", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001  (the last line of defence: never a bare traceback)
        if debug:
            raise
        print(f"error: {unexpected(e)}", file=sys.stderr)
        sys.exit(1)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM handler: raise Terminated (a KeyboardInterrupt), so cleanup (temp files, a study's training step) runs
    as on Ctrl-C."""
    raise Terminated


def unexpected(error: BaseException) -> str:
    """One line for an exception hf_seg did not anticipate: its type, its message, the file it concerns, where."""
    frames = traceback.extract_tb(error.__traceback__)[1:]  # the first frame is _report_errors itself
    where = "?"
    if frames:
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}"
        ours = [f for f in frames if f"{os.sep}hf_seg{os.sep}" in f.filename]
        if ours and ours[-1] is not frames[-1]:  # raised in a library: also say where hf_seg called it
            where += f", called from hf_seg's {Path(ours[-1].filename).name}:{ours[-1].lineno}"
    concerned = getattr(error, "filename", None)
    about = f" (file '{concerned}')" if concerned else ""
    return (f"unexpected {type(error).__name__}{about}: {one_line(error)} [raised in {where}]; "
            "rerun with HF_SEG_DEBUG=1 for the traceback, and report it if the cause is not yours")


def build_parser(selected: Optional[str]) -> argparse.ArgumentParser:
    """The top-level parser; only the `selected` subcommand's module is imported and given its arguments."""
    parser = argparse.ArgumentParser(prog="hf-seg", description="Train, evaluate and compare semantic segmentation "
                                     "models on the Hugging Face stack.")
    parser.add_argument("--version", action="version", version=f"hf_seg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        if name == selected:
            mod = importlib.import_module(f"hf_seg.cli.{module}")
            command = sub.add_parser(name, help=help_text, description=mod.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
            mod.add_arguments(command)
            command.set_defaults(handler=mod.run)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Optional[list[str]] = None) -> None:
    """Parse `argv` (default: the process's arguments) and run the subcommand."""
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(selected if selected in COMMANDS else None).parse_args(argv)
    run_cli(lambda: args.handler(args))
