"""Which checkpoint a run resumes: the newest one Trainer finished saving (trainer_state.json written, and whole)."""

import pytest

from hf_geokd.distill.checkpoints import checkpoints, is_complete, last_complete_checkpoint


def checkpoint(folder, step, state='{"global_step": 0}'):
    path = folder / f"checkpoint-{step}"
    path.mkdir()
    if state is not None:
        (path / "trainer_state.json").write_text(state)
    return path


def test_the_newest_complete_checkpoint_by_step_not_by_name(tmp_path):
    assert last_complete_checkpoint(tmp_path / "missing") is None and last_complete_checkpoint(tmp_path) is None
    checkpoint(tmp_path, 9)
    newest = checkpoint(tmp_path, 10)  # "checkpoint-10" < "checkpoint-9" as text
    (tmp_path / "checkpoint-50").write_text("a file, not a checkpoint")
    (tmp_path / "checkpoint-70x").mkdir()
    assert [step for step, _ in checkpoints(tmp_path)] == [9, 10]
    assert last_complete_checkpoint(tmp_path) == str(newest)


@pytest.mark.parametrize("state", [None, '{"global_step": 12, "log_hi'])  # never written, or cut short mid-file
def test_a_checkpoint_cut_short_is_skipped_or_deleted(tmp_path, state):
    complete = checkpoint(tmp_path, 8)
    cut = checkpoint(tmp_path, 12, state)
    assert is_complete(complete) and not is_complete(cut)
    with pytest.warns(UserWarning, match="checkpoint-12 has no whole trainer_state.json: its saving was cut short, "
                                         "so it is skipped"):
        assert last_complete_checkpoint(tmp_path) == str(complete)
    assert cut.is_dir()
    with pytest.warns(UserWarning, match="so it is deleted"):
        assert last_complete_checkpoint(tmp_path, remove_incomplete=True) == str(complete)
    assert not cut.exists() and complete.is_dir()


def test_only_cut_short_checkpoints_resume_from_the_start(tmp_path):
    checkpoint(tmp_path, 4, state=None)
    with pytest.warns(UserWarning, match="or from the start"):
        assert last_complete_checkpoint(tmp_path) is None
