"""Run-folder helpers: atomic checkpoint swaps, refusal to clobber, history truncation, strict JSON."""

import json
import math

import pytest

from hf_seg.runs import (MARKER, RunFolder, RunFolderError, append_history, check_run_dir, empty_own_folder,
                         made_by_hf_seg, prepare_run_dir, read_history, save_dir_atomically, truncate_history,
                         write_json)


def test_save_dir_atomically_swaps_and_cleans(tmp_path):
    def writer(text):
        def write(d):
            d.mkdir()
            (d / "w.txt").write_text(text)
        return write

    save_dir_atomically(tmp_path / "best", writer("one"))
    assert (tmp_path / "best" / "w.txt").read_text() == "one"
    save_dir_atomically(tmp_path / "best", writer("two"))
    assert (tmp_path / "best" / "w.txt").read_text() == "two"
    assert len(list((tmp_path / "checkpoints").glob("best-*"))) == 1


def test_failed_write_leaves_the_old_checkpoint(tmp_path):
    save_dir_atomically(tmp_path / "best", lambda d: (d.mkdir(), (d / "w.txt").write_text("old")))

    def crash(d):
        d.mkdir()
        (d / "w.txt").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        save_dir_atomically(tmp_path / "best", crash)
    assert (tmp_path / "best" / "w.txt").read_text() == "old"


def test_run_dir_refuses_existing_unless_asked(tmp_path):
    out = tmp_path / "run"
    prepare_run_dir(out, resume=False, overwrite=False)
    assert made_by_hf_seg(out, "run")
    (out / "x").write_text("1")
    with pytest.raises(RunFolderError, match="holds no checkpoint .* pass --overwrite to start it again"):
        check_run_dir(out, resume=False, overwrite=False)
    with pytest.raises(RunFolderError, match="--resume: .* holds no checkpoint in last/ .* again with --overwrite"):
        check_run_dir(out, resume=True, overwrite=False)
    (out / "last").mkdir()
    write_json(out / "last" / "trainer_state.json", {})
    with pytest.raises(RunFolderError, match="already exists; pass --resume .* or --overwrite"):
        check_run_dir(out, resume=False, overwrite=False)
    with pytest.raises(RunFolderError, match="contradict"):
        check_run_dir(out, resume=True, overwrite=True)
    prepare_run_dir(out, resume=False, overwrite=True)
    assert [p.name for p in out.iterdir()] == [MARKER] and out.is_dir()


def test_overwrite_never_deletes_a_folder_hf_seg_did_not_make(tmp_path):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_text("years of work")
    for overwrite in (False, True):
        with pytest.raises(RunFolderError, match="was not made by hf_seg"):
            prepare_run_dir(thesis, resume=False, overwrite=overwrite)
    assert (thesis / "thesis.tex").read_text() == "years of work" and not (thesis / MARKER).exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="is a file"):
        check_run_dir(tmp_path / "file", resume=False, overwrite=True)
    with pytest.raises(RunFolderError, match="does not exist; start the run without --resume"):
        check_run_dir(tmp_path / "none", resume=True, overwrite=False)
    empty = tmp_path / "empty"  # an empty folder the user made is used, and later emptied but never removed
    empty.mkdir()
    prepare_run_dir(empty, resume=False, overwrite=False)
    prepare_run_dir(empty, resume=False, overwrite=True)
    assert empty.is_dir() and made_by_hf_seg(empty, "run") and not made_by_hf_seg(empty, "upload")
    with pytest.raises(RunFolderError, match="not made by hf_seg"):
        empty_own_folder(empty, "upload", "--folder")


def test_damaged_state_and_history_files_name_the_file(tmp_path):
    run = RunFolder(tmp_path)
    (tmp_path / "last").mkdir()
    (tmp_path / "last" / "trainer_state.json").write_text('{"epoch": "one"}')
    with pytest.raises(RunFolderError, match="trainer_state.json' is not a trainer state"):
        run.trainer_state()
    (tmp_path / "history.jsonl").write_text('{"epoch": 1}\n[1, 2]\n')
    with pytest.raises(RunFolderError, match="history.jsonl' line 2 is not a record with epoch"):
        run.history()
    (tmp_path / "recipe.json").write_text('{"train": {"epochz": 1}}')
    with pytest.raises(RunFolderError, match="recipe.json': unknown recipe key 'train.epochz'"):
        run.recipe()


def test_history_truncation_and_strict_json(tmp_path):
    h = tmp_path / "history.jsonl"
    for e in (1, 2, 3):
        append_history(h, {"epoch": e, "val_mean_iou": math.nan if e == 2 else 0.1 * e})
    assert read_history(h)[1]["val_mean_iou"] is None
    truncate_history(h, 2)
    assert [r["epoch"] for r in read_history(h)] == [1, 2]
    write_json(tmp_path / "m.json", {"iou": [1.0, float("nan")]})
    assert json.loads((tmp_path / "m.json").read_text()) == {"iou": [1.0, None]}


def test_training_finished_reads_the_trainer_state(tmp_path):
    run = RunFolder(tmp_path)
    train = {"epochs": 3, "max_steps": None, "early_stopping_patience": None}
    write_json(tmp_path / "recipe.json", {"train": train})
    assert not run.training_finished()
    (tmp_path / "last").mkdir()
    state = {"epoch": 2, "global_step": 20, "best_miou": 0.3, "best_epoch": 2, "evals_since_best": 0}
    write_json(tmp_path / "last" / "trainer_state.json", state)
    assert not run.training_finished()
    write_json(tmp_path / "recipe.json", {"train": {**train, "max_steps": 20}})
    assert run.training_finished()
    write_json(tmp_path / "recipe.json", {"train": {**train, "early_stopping_patience": 2}})
    write_json(tmp_path / "last" / "trainer_state.json", {**state, "evals_since_best": 2})
    assert run.training_finished()
    write_json(tmp_path / "recipe.json", {"train": train})
    write_json(tmp_path / "last" / "trainer_state.json", {**state, "epoch": 3})
    assert run.training_finished()
