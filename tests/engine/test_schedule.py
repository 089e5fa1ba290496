"""The learning-rate schedule: transformers' factors unchanged by default, a decay over part of the steps and a floor."""

import pytest
import torch
from transformers import get_scheduler

from hf_seg.engine.schedule import SCHEDULES, build_scheduler, decay_steps
from hf_seg.recipe import OptimConfig


def _lrs(scheduler, optimizer, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def _optimizer(lr: float = 2e-3) -> torch.optim.Optimizer:
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=lr)


@pytest.mark.parametrize("schedule", ["poly", "cosine", "constant"])
def test_defaults_give_transformers_learning_rates_exactly(schedule):
    opt = OptimConfig(lr=2e-3, schedule=schedule, warmup_steps=7)
    ours = _optimizer()
    theirs = _optimizer()
    reference = get_scheduler(SCHEDULES[schedule], theirs, num_warmup_steps=7, num_training_steps=100,
                              scheduler_specific_kwargs={"power": 0.9} if schedule == "poly" else None)
    assert _lrs(build_scheduler(opt, ours, 100), ours, 100) == _lrs(reference, theirs, 100)


@pytest.mark.parametrize("schedule", ["poly", "cosine"])
def test_the_decay_ends_at_its_fraction_and_holds_the_floor(schedule):
    opt = OptimConfig(lr=2e-3, schedule=schedule, warmup_steps=10, decay_fraction=0.75, min_lr_ratio=0.05)
    optimizer = _optimizer()
    lrs = _lrs(build_scheduler(opt, optimizer, 200), optimizer, 200)
    end = decay_steps(opt, 200)
    assert end == 150
    assert lrs[0] == 0.0 and lrs[10] == pytest.approx(2e-3)  # the warm-up starts from zero, not from the floor
    assert all(a > b for a, b in zip(lrs[10:end], lrs[11:end + 1]))  # decays until the end of the decay
    assert lrs[end:] == pytest.approx([1e-4] * (200 - end), rel=1e-3)  # then holds 5% of the peak


def test_a_checkpoint_written_before_these_options_resumes_on_the_same_learning_rates():
    """Runs saved their scheduler state when transformers' own LambdaLR (a functools.partial) drove it."""
    theirs = _optimizer()
    old = get_scheduler("cosine", theirs, num_warmup_steps=5, num_training_steps=60)
    _lrs(old, theirs, 20)
    ours = _optimizer()
    resumed = build_scheduler(OptimConfig(lr=2e-3, schedule="cosine", warmup_steps=5), ours, 60)
    resumed.load_state_dict(old.state_dict())
    ours.load_state_dict(theirs.state_dict())
    assert _lrs(resumed, ours, 40) == _lrs(old, theirs, 40)


def test_the_decay_never_ends_inside_the_warm_up_and_is_not_rounded_up_by_float_error():
    assert decay_steps(OptimConfig(warmup_steps=50, decay_fraction=0.1), 100) == 51
    assert decay_steps(OptimConfig(decay_fraction=0.14), 50) == 7  # 50 * 0.14 = 7.000000000000001
