"""Model efficiency: parameters, MACs/FLOPs (calflops, isolated; torch FlopCounterMode fallback), speed and memory."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import torch
from calflops import calculate_flops, calculate_pipline
from torch.utils.flop_counter import FlopCounterMode
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from hf_seg.data import declared_classes
from hf_seg.engine.runtime import PRECISIONS, channels_last, check_input_size, check_precision, forward
from hf_seg.errors import HfSegError
from hf_seg.inference.predict import load_trained
from hf_seg.models import SEGFORMER_VARIANTS, build_model
from hf_seg.recipe import Recipe, load_recipe

@dataclass
class FlopCount:
    """Forward-pass cost of one input; 1 MAC (multiply-accumulate) = 2 FLOPs."""

    macs: int
    flops: int
    method: str  # "calflops" or "torch FlopCounterMode"
    note: str = ""  # why the fallback was used, and what it counts


def count_params(model: torch.nn.Module) -> dict[str, int]:
    """Total and trainable parameter counts."""
    return {"total": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}


@contextlib.contextmanager
def restored_torch_namespaces() -> Iterator[None]:
    """Undo any monkey-patching of torch, torch.Tensor and torch.nn.functional done inside the block.

    calflops patches these and leaves them patched when a model's forward raises; later counts then double and
    later forwards can crash. Changed attributes get their old value back; new plain functions are removed.
    """
    namespaces = (torch.nn.functional, torch, torch.Tensor)
    saved = [(ns, dict(vars(ns))) for ns in namespaces]
    try:
        yield
    finally:
        for ns, before in saved:
            for name, value in list(vars(ns).items()):
                if name in before:
                    if before[name] is not value:
                        setattr(ns, name, before[name])
                elif inspect.isfunction(value):
                    delattr(ns, name)


def calflops_count(model: torch.nn.Module, pixel_values: torch.Tensor) -> tuple[int, int]:
    """(MACs, FLOPs) from calflops on a copy of the model, with torch's namespaces restored whatever happens."""
    work = copy.deepcopy(model).eval()  # calflops leaves hooks and attributes on a model when it fails
    call = {"kwargs": {"pixel_values": pixel_values}} if isinstance(model, PreTrainedModel) else {"args": [pixel_values]}
    try:
        with restored_torch_namespaces(), torch.inference_mode():
            flops, macs, _ = calculate_flops(work, print_results=False, print_detailed=False,
                                             output_as_string=False, **call)
    finally:
        for shared in (calculate_pipline.module_flop_count, calculate_pipline.module_mac_count,
                       calculate_pipline.old_functions):
            shared.clear()  # module-level state that a failed call leaves behind
    return int(macs), int(flops)


def torch_flop_count(model: torch.nn.Module, pixel_values: torch.Tensor) -> int:
    """FLOPs from torch's FlopCounterMode (matmul/convolution-type ops only, each MAC counted as 2 FLOPs)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        forward(model, pixel_values)
    return int(counter.get_total_flops())


def count_flops(model: torch.nn.Module, pixel_values: torch.Tensor) -> FlopCount:
    """calflops count, or torch's FlopCounterMode when calflops fails (said so in `note`)."""
    try:
        macs, flops = calflops_count(model, pixel_values)
        return FlopCount(macs=macs, flops=flops, method="calflops",
                         note="FLOPs include bias, norm, activation, pooling and resize ops")
    except Exception as e:  # calflops breaks on some encoders (e.g. smp efficientnet-b0); say so and fall back
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        flops = torch_flop_count(model, pixel_values)
        return FlopCount(macs=flops // 2, flops=flops, method="torch FlopCounterMode",
                         note=f"calflops failed ({type(e).__name__}: {reason}); matmul/conv ops only, MACs = FLOPs/2")


@contextlib.contextmanager
def pinned_threads(threads: Optional[int]) -> Iterator[int]:
    """Pin torch's intra-op CPU thread count for the block and yield the count in effect."""
    before = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads={threads} is invalid; pass a count >= 1")
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def _reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    elif Path("/proc/self/clear_refs").exists():
        Path("/proc/self/clear_refs").write_text("5")  # Linux: resets the process's peak resident set size


def _memory_mb(device: torch.device, peak: bool) -> tuple[Optional[float], str]:
    """(current or peak-since-reset MB, what was measured)."""
    if device.type == "cuda":
        used = torch.cuda.max_memory_allocated(device) if peak else torch.cuda.memory_allocated(device)
        return used / 2**20, "CUDA memory allocated by torch"
    status = Path("/proc/self/status")
    if status.exists():
        key = "VmHWM:" if peak else "VmRSS:"
        for line in status.read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024, "process resident memory (RSS), weights and libraries included"
    return None, "not measured on this OS"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_forward(model: torch.nn.Module, batch_size: int, image_size: tuple[int, int], device: torch.device,
                 precision: str = "fp32", warmup: int = 3, repeats: int = 10, fast: bool = False) -> dict:
    """Median and spread of forward-pass wall time on random input, after warm-up, with peak memory.

    fast: the input in channels_last (for a model converted with runtime.channels_last).
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(f"warmup={warmup}, repeats={repeats} are invalid; use warmup >= 0 and repeats >= 1")
    dtype = PRECISIONS[precision]
    x = channels_last(torch.randn(batch_size, 3, *image_size, device=device), fast)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
    times = []
    before, _ = _memory_mb(device, peak=False)
    _reset_peak_memory(device)
    with torch.inference_mode(), autocast:
        for i in range(warmup + repeats):
            _sync(device)
            start = time.perf_counter()
            forward(model, x)
            _sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    peak, memory_kind = _memory_mb(device, peak=True)
    median = statistics.median(times)
    q = statistics.quantiles(times, n=4, method="inclusive") if len(times) > 1 else [times[0]] * 3
    return {"batch_size": batch_size, "repeats": repeats, "warmup": warmup, "median_s": median,
            "p25_s": q[0], "p75_s": q[2], "min_s": min(times), "max_s": max(times),
            "images_per_s": batch_size / median, "latency_ms_per_image": 1000 * median / batch_size,
            "memory_before_mb": before, "peak_memory_mb": peak, "memory_kind": memory_kind}


def device_name(device: torch.device) -> str:
    """Human-readable name of the CPU or GPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def benchmark_model(model: torch.nn.Module, image_size: tuple[int, int], device: str | torch.device = "cpu",
                    precisions: tuple[str, ...] = ("fp32",), batch_sizes: tuple[int, ...] = (1, 8),
                    warmup: int = 3, repeats: int = 10, threads: Optional[int] = None, fast: bool = True) -> dict:
    """Parameters, MACs/FLOPs at batch 1, and speed/memory per precision and batch size, as one JSON-able dict.

    fast: time the model in channels_last memory format, as hf_seg trains and predicts by default.
    """
    device = torch.device(device)
    for p in precisions:
        check_precision(p, device)
    limits = [("--batch-sizes", list(batch_sizes) or [0], 1), ("--repeats", [repeats], 1), ("--warmup", [warmup], 0),
              ("--threads", [1 if threads is None else threads], 1)]
    for option, values, least in limits:
        bad = next((v for v in values if not isinstance(v, int) or v < least), None)
        if bad is not None:
            raise HfSegError(f"benchmark {option} {bad} is invalid; use {least} or more")
    model = channels_last(model.to(device).eval(), fast)
    h, w = (int(s) for s in image_size)
    with pinned_threads(threads if device.type == "cpu" else None) as n_threads:
        probe = channels_last(torch.randn(1, 3, h, w, device=device), fast)
        check_input_size(model, probe)
        flops = count_flops(model, probe)
        speed = {p: [time_forward(model, b, (h, w), device, p, warmup, repeats, fast) for b in batch_sizes]
                 for p in precisions}
    return {"image_size": [h, w], "params": count_params(model),
            "macs_per_image": flops.macs, "flops_per_image": flops.flops,
            "flops_method": flops.method, "flops_note": flops.note,
            "device": str(device), "device_name": device_name(device),
            "threads": n_threads if device.type == "cpu" else None, "channels_last": fast, "speed": speed}


def environment() -> dict:
    """Software versions and machine load, so timings can be judged later (shared machines drift)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "load_average_1_5_15min": list(load) if load else None,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def describe_model(model: torch.nn.Module) -> str:
    """Short architecture name from the config, e.g. 'unet resnet34' or 'segformer b2'."""
    config = getattr(model, "config", None)
    if config is None:
        return type(model).__name__
    if getattr(config, "model_type", "") == "segformer":
        for name, sizes in SEGFORMER_VARIANTS.items():
            if all(list(getattr(config, k)) == v for k, v in sizes.items() if k != "decoder_hidden_size"):
                return f"segformer {name}"
        return "segformer"
    if hasattr(config, "encoder_name"):
        return f"{config.arch} {config.encoder_name}"
    return config.model_type


def untrained_model(recipe: Recipe) -> PreTrainedModel:
    """The recipe's model with random weights: weights don't change the cost, and pretrained ones may not be
    downloadable here (or kept: committed study runs hold none)."""
    return build_model(dataclasses.replace(recipe.model, pretrained=None), declared_classes(recipe.data))


def load_benchmark_target(target: str, image_size: Optional[tuple[int, int]] = None) -> dict:
    """Model, input size and labels for a run folder, saved model folder, Hub id, or recipe JSON (random init)."""
    path = Path(target)
    if path.suffix == ".json":
        recipe = load_recipe(path)
        model = untrained_model(recipe)
        size, source, label = image_size or tuple(recipe.data.image_size), "recipe (random init)", recipe.name
    else:
        loaded = load_trained(target)
        model, size, source, label = loaded.model, image_size or loaded.image_size, loaded.source, path.name or target
        if size is None:
            raise HfSegError(f"target '{target}' does not record its training size; pass --image-size HEIGHT WIDTH")
    return {"target": str(target), "label": label, "model_name": describe_model(model), "source": source,
            "model": model, "image_size": (int(size[0]), int(size[1]))}


def benchmark_targets(targets: list[str], image_size: Optional[tuple[int, int]] = None, device: str = "cpu",
                      precisions: tuple[str, ...] = ("fp32",), batch_sizes: tuple[int, ...] = (1, 8),
                      warmup: int = 3, repeats: int = 10, threads: Optional[int] = None, fast: bool = True) -> dict:
    """Benchmark every target (all are loaded first, so a bad one fails before any timing); JSON-able report."""
    loaded = [load_benchmark_target(t, image_size) for t in targets]
    results = []
    for item in tqdm(loaded, desc="benchmark", unit="model"):
        model = item.pop("model")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        result = benchmark_model(model, item["image_size"], device, precisions, batch_sizes, warmup, repeats, threads,
                                 fast)
        results.append({**item, **result, "load_average_1min_before": load})
    return {"environment": environment(), "results": results}


def format_table(report: dict) -> str:
    """A Markdown table: one row per target and precision, MACs and FLOPs labelled, speed as median (IQR).

    Memory: the peak during the largest batch, and how much of it the timed run added on top of what was resident.
    """
    batch_sizes = [s["batch_size"] for s in next(iter(report["results"][0]["speed"].values()))]
    head = ["model", "input HxW", "params (M)", "GMACs", "GFLOPs", "FLOPs by", "precision"]
    for b in batch_sizes:
        head += [f"bs{b} img/s median (IQR)", f"bs{b} ms/img"]
    head += [f"peak MB (bs{batch_sizes[-1]})", "of which run", "threads"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report["results"]:
        for precision, runs in r["speed"].items():
            cells = [r["model_name"], "x".join(map(str, r["image_size"])), f"{r['params']['total'] / 1e6:.1f}",
                     f"{r['macs_per_image'] / 1e9:.2f}", f"{r['flops_per_image'] / 1e9:.2f}", r["flops_method"], precision]
            for s in runs:
                iqr = s["batch_size"] / s["p25_s"] - s["batch_size"] / s["p75_s"]
                cells += [f"{s['images_per_s']:.2f} ({iqr:.2f})", f"{s['latency_ms_per_image']:.1f}"]
            peak, before = runs[-1]["peak_memory_mb"], runs[-1]["memory_before_mb"]
            cells += ["n/a", "n/a"] if peak is None else [f"{peak:.0f}", f"+{peak - before:.0f}"]
            cells.append(str(r["threads"] or "-"))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def encoder_flops(model, pixel_values) -> dict:
    """FLOPs in the model's encoder (what a classifier of that backbone runs) and in total, both by FlopCounterMode."""
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        forward(model.eval(), pixel_values)
    counts = counter.get_flop_counts()
    # smp models name their backbone 'encoder'; transformers models keep it under base_model_prefix ('segformer')
    encoders = ([name for name in counts if name.split(".")[-1] == "encoder"]
                or [name for name in counts if name.split(".")[-1] == getattr(model, "base_model_prefix", None)])
    if not encoders:
        raise HfSegError(f"model {type(model).__name__} has no submodule named 'encoder' or "
                         f"'{getattr(model, 'base_model_prefix', None)}'; cannot tell its encoder's FLOPs")
    encoder = int(sum(counts[min(encoders, key=lambda n: n.count("."))].values()))
    total = int(counter.get_total_flops())
    return {"encoder": encoder, "total": total, "encoder_share": encoder / total,
            "method": "torch FlopCounterMode (matmul/conv ops)"}
