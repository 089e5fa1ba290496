"""Per-run and study locks: how several runners share one study folder."""

from hf_seg.study.locks import study_lock, take_run


def test_a_run_is_held_by_one_runner_at_a_time(tmp_path):
    lock = take_run(tmp_path, "unet-s0")
    assert lock is not None and take_run(tmp_path, "unet-s0") is None  # a second runner skips it
    assert take_run(tmp_path, "fpn-s0") is not None  # other runs stay free
    lock.release()
    again = take_run(tmp_path, "unet-s0")
    assert again is not None
    again.release()
    with study_lock(tmp_path):  # the study's own lock is waited for, and short
        assert (tmp_path / ".lock").is_file()
