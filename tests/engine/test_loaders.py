"""The training loaders: persistent workers see each new epoch, and an epoch's batches are the same with any number
of workers (augmentations are seeded per sample from seed, epoch and image id)."""

from __future__ import annotations

import json

import torch

from hf_seg.data import build_datasets
from hf_seg.engine.runtime import data_workers
from hf_seg.engine.trainer import make_loaders
from hf_seg.recipe import recipe_from_dict

from helpers.cli import tiny_recipe


def epoch_batches(recipe, epoch: int, loaders) -> list[torch.Tensor]:
    torch.manual_seed(epoch * 7919)  # other draws from the global RNG must not matter
    torch.rand(epoch)
    loaders.begin_epoch(epoch)
    return [b["pixel_values"] for b in loaders.train]


def test_batches_do_not_depend_on_the_number_of_workers_and_change_every_epoch(tiny_camvid):
    raw = tiny_recipe(tiny_camvid)
    raw["data"]["augment"] = ["hflip", "random_resized_crop", "color_jitter"]
    results = {}
    for workers in (0, 2):
        raw["data"]["num_workers"] = workers
        recipe = recipe_from_dict(json.loads(json.dumps(raw)))
        dsd, class_info = build_datasets(recipe.data)
        loaders = make_loaders(recipe, dsd, class_info)
        assert loaders.train.num_workers == workers and loaders.train.persistent_workers == (workers > 0)
        results[workers] = [epoch_batches(recipe, e, loaders) for e in (1, 2, 1)]
    for workers in (0, 2):
        first, second, again = results[workers]
        assert all(torch.equal(a, b) for a, b in zip(first, again)), workers  # an epoch is reproducible on its own
        assert not all(torch.equal(a, b) for a, b in zip(first, second))  # the workers saw the new epoch
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[2][1]))  # 0 or 2 workers: same batches


def test_auto_workers_leave_the_compute_cores_alone(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert data_workers(None, "cpu") == 0 and data_workers(3, "cpu") == 3
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert data_workers(None, "cpu") == 4 and data_workers(None, "cuda") == 4
