"""The learning-rate schedule of a recipe: transformers' warm-up + poly/cosine/constant, optionally decayed over only
part of the steps and held at a floor after that."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR
from transformers import get_scheduler

from hf_seg.recipe import OptimConfig

SCHEDULES = {"poly": "polynomial", "cosine": "cosine", "constant": "constant_with_warmup"}


def decay_steps(opt: OptimConfig, total_steps: int) -> int:
    """The step where the decay ends: `decay_fraction` of the schedule, never inside the warm-up."""
    # rounded first, so that a product such as 50 * 0.14 = 7.000000000000001 is 7 steps, not 8
    return max(opt.warmup_steps + 1, math.ceil(round(total_steps * opt.decay_fraction, 9)))


def build_scheduler(opt: OptimConfig, optimizer: torch.optim.Optimizer, total_steps: int) -> LambdaLR:
    """A LambdaLR over `total_steps`; with the defaults (decay_fraction 1, min_lr_ratio 0) its factors are exactly
    transformers' `get_scheduler`, so recipes written before these options train as they did."""
    end = decay_steps(opt, total_steps)
    # only the probe's factor function is kept; its lr matters: poly's factor decays towards lr_end=1e-7 *absolute*
    probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=opt.lr)
    base = get_scheduler(SCHEDULES[opt.schedule], probe, num_warmup_steps=opt.warmup_steps,
                         num_training_steps=end,
                         scheduler_specific_kwargs={"power": opt.poly_power} if opt.schedule == "poly" else None)
    base_factor, floor = base.lr_lambdas[0], opt.min_lr_ratio

    def factor(step: int) -> float:
        if step < opt.warmup_steps:
            return base_factor(step)
        return floor + (1.0 - floor) * base_factor(min(step, end))

    return LambdaLR(optimizer, factor)
