"""Efficiency: FLOPs against a hand count, calflops isolation, benchmark JSON schema for both model families, CLI."""

import json
import runpy
import subprocess
import sys

import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

from hf_seg.labels import ClassInfo
from hf_seg.engine.runtime import InputSizeError
from hf_seg.bench.efficiency import (benchmark_model, benchmark_targets, count_flops, format_table,
                               restored_torch_namespaces, torch_flop_count)
from hf_seg.models import build_model
from hf_seg.recipe import ModelConfig

from conftest import REPO  # noqa: E402

TINY = ClassInfo(names=("a", "b", "c"))


def write_recipe(path, arch, encoder, size=(64, 64), **model):
    """A minimal recipe JSON (CamVid classes, random init) for benchmark targets."""
    path.write_text(json.dumps({"name": f"{arch}_{encoder}", "data": {"source": "camvid", "image_size": list(size)},
                                "model": {"arch": arch, "encoder": encoder, "pretrained": None, **model}}))
    return path


@pytest.mark.parametrize("bias", [False, True])
def test_single_conv_flops_match_hand_count(bias):
    conv = torch.nn.Conv2d(3, 8, kernel_size=3, padding=1, stride=2, bias=bias)
    x = torch.randn(2, 3, 16, 20)
    out_positions = 2 * 8 * 10  # batch 2, stride 2: 8x10 outputs per map
    macs = out_positions * 8 * 3 * 3 * 3  # each output: 3x3 kernel over 3 input channels, 8 output channels
    count = count_flops(conv, x)
    assert count.method == "calflops"
    assert count.macs == macs
    assert count.flops == 2 * macs + (8 * out_positions if bias else 0)  # calflops adds one FLOP per bias add
    assert torch_flop_count(conv, x) == 2 * macs  # torch counts the multiply-accumulates only


def test_calflops_failure_cannot_corrupt_later_counts():
    from calflops import calculate_flops

    good = smp.FPN("resnet18", encoder_weights=None, classes=3, encoder_depth=3).eval()
    x = torch.randn(1, 3, 64, 64)
    before = count_flops(good, x)
    bad = smp.Unet("efficientnet-b0", encoder_weights=None, classes=3).eval()
    original_conv2d = F.conv2d
    patched_by_calflops = [(F, "conv2d"), (F, "relu"), (torch, "matmul"), (torch.Tensor, "matmul"), (torch.Tensor, "add")]
    originals = [getattr(ns, name) for ns, name in patched_by_calflops]

    with restored_torch_namespaces():  # the hazard is real: raw calflops leaves F patched after this failure
        with pytest.raises(Exception):
            calculate_flops(bad, input_shape=(1, 3, 64, 64), print_results=False, output_as_string=False)
        assert F.conv2d is not original_conv2d
    assert [getattr(ns, name) for ns, name in patched_by_calflops] == originals

    fallback = count_flops(bad, x)  # our wrapper: falls back, says so, and restores everything
    assert fallback.method == "torch FlopCounterMode" and "calflops failed" in fallback.note
    assert fallback.flops > 0 and fallback.macs == fallback.flops // 2
    assert [getattr(ns, name) for ns, name in patched_by_calflops] == originals
    after = count_flops(good, x)
    assert (after.macs, after.flops, after.method) == (before.macs, before.flops, "calflops")
    conv = torch.nn.Conv2d(3, 4, 1, bias=False)
    assert count_flops(conv, x).macs == 64 * 64 * 3 * 4


def test_benchmark_schema_for_both_families():
    models = [build_model(ModelConfig(arch="unet", encoder="resnet18", encoder_depth=3), TINY),
              build_model(ModelConfig(arch="segformer", encoder="b0"), TINY)]
    for model in models:
        r = benchmark_model(model, (64, 96), precisions=("fp32", "bf16"), batch_sizes=(1, 2), warmup=1, repeats=3,
                            threads=1)
        json.dumps(r, allow_nan=False)
        assert r["params"]["total"] == sum(p.numel() for p in model.parameters()) == r["params"]["trainable"]
        assert r["image_size"] == [64, 96] and r["threads"] == 1 and r["device"] == "cpu" and r["device_name"]
        assert r["flops_method"] == "calflops" and 2 * r["macs_per_image"] <= r["flops_per_image"]
        assert set(r["speed"]) == {"fp32", "bf16"}
        for runs in r["speed"].values():
            assert [s["batch_size"] for s in runs] == [1, 2]
            for s in runs:
                assert s["repeats"] == 3 and 0 < s["min_s"] <= s["p25_s"] <= s["median_s"] <= s["p75_s"] <= s["max_s"]
                assert s["images_per_s"] == pytest.approx(s["batch_size"] / s["median_s"])
                assert s["latency_ms_per_image"] == pytest.approx(1000 * s["median_s"] / s["batch_size"])
                assert s["peak_memory_mb"] >= s["memory_before_mb"] > 0


def test_benchmark_targets_recipe_and_saved_folder(tmp_path):
    recipe = write_recipe(tmp_path / "seg.json", "segformer", "b0", size=(64, 64))
    saved = tmp_path / "saved"
    build_model(ModelConfig(arch="fpn", encoder="resnet18", encoder_depth=3), TINY).save_pretrained(saved)
    with pytest.raises(ValueError, match="does not record its training size; pass --image-size"):
        benchmark_targets([str(saved)])
    report = benchmark_targets([str(recipe), str(saved)], image_size=(32, 64), batch_sizes=(1,), warmup=0, repeats=1)
    json.dumps(report, allow_nan=False)
    rows = {r["model_name"]: r for r in report["results"]}
    assert set(rows) == {"segformer b0", "fpn resnet18"}
    assert rows["segformer b0"]["source"] == "recipe (random init)" and rows["fpn resnet18"]["source"] == "model folder"
    assert all(r["image_size"] == [32, 64] for r in report["results"])
    assert report["environment"]["cpu_count"] >= 1
    table = format_table(report)
    assert table.count("\n") == 3 and "| segformer b0 | 32x64 |" in table and "GMACs" in table


def test_bad_sizes_and_precisions_are_one_line_errors():
    seg = build_model(ModelConfig(arch="segformer", encoder="b0"), TINY)
    with pytest.raises(InputSizeError, match=r"cannot take input size 2x2 \(HxW\)") as e:
        benchmark_model(seg, (2, 2), batch_sizes=(1,), repeats=1)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="fp16' needs a CUDA device; use bf16"):
        benchmark_model(seg, (64, 64), precisions=("fp16",))


def test_benchmark_script(tmp_path):
    recipe = write_recipe(tmp_path / "unet.json", "unet", "resnet18", encoder_depth=3)
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "scripts/benchmark.py", str(recipe), "--precision", "fp32", "bf16", "--batch-sizes", "1",
           "--warmup", "0", "--repeats", "1", "--threads", "1", "--json", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "| unet resnet18 | 64x64 |" in done.stdout and "calflops" in done.stdout
    saved = json.loads(out.read_text())
    assert [r["speed"]["bf16"][0]["batch_size"] for r in saved["results"]] == [1]


def test_benchmark_script_bad_target_is_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["benchmark.py", str(tmp_path / "nothing_here")])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(REPO / "scripts" / "benchmark.py"), run_name="__main__")
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error: model ") and "does not exist" in err and err.count("\n") == 1
