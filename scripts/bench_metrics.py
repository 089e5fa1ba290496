"""Benchmark: streaming confusion-matrix metrics vs a by-the-book version of the Hub's mean_iou, on random maps.

The by-the-book version keeps every map until compute() and then takes three histograms per image, as the Hub
module does (without its Arrow cache, which would only make it slower). Values must agree exactly.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import numpy as np

from hf_seg.metrics import METRIC_PATH, ConfusionMatrix, metrics_from_confusion


class ByTheBookMeanIoU:
    """The Hub's mean_iou semantics written plainly: maps kept until compute, per-image area histograms."""

    def __init__(self) -> None:
        self.maps: list[tuple[np.ndarray, np.ndarray]] = []

    def add_batch(self, predictions, references) -> None:
        self.maps.extend((np.array(p), np.array(r)) for p, r in zip(predictions, references))

    def compute(self, num_labels: int, ignore_index: int) -> dict:
        inter, union = np.zeros(num_labels), np.zeros(num_labels)
        area_pred, area_label = np.zeros(num_labels), np.zeros(num_labels)
        bins = dict(bins=num_labels, range=(0, num_labels - 1))
        for pred, label in self.maps:
            keep = label != ignore_index
            pred, label = pred[keep], label[keep]
            i = np.histogram(pred[pred == label], **bins)[0]
            p, lab = np.histogram(pred, **bins)[0], np.histogram(label, **bins)[0]
            inter += i
            union += p + lab - i
            area_pred += p
            area_label += lab
        self.maps = []
        with np.errstate(divide="ignore", invalid="ignore"):
            iou, acc = inter / union, inter / area_label
            return {"mean_iou": np.nanmean(iou), "mean_accuracy": np.nanmean(acc),
                    "overall_accuracy": inter.sum() / area_label.sum(), "per_category_iou": iou, "per_category_accuracy": acc}


def random_maps(n: int, height: int, width: int, num_classes: int, ignore_index: int, seed: int):
    """Uniform random predictions and labels; the label value num_classes becomes ignore_index."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes + 1, (n, height, width), dtype=np.uint8)
    labels[labels == num_classes] = ignore_index
    preds = rng.integers(0, num_classes, (n, height, width), dtype=np.uint8)
    return preds, labels


def _time(fn, repeats: int) -> tuple[float, dict]:
    """Median wall time of fn() over repeats, and its last result."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-maps", type=int, default=233)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--width", type=int, default=480)
    ap.add_argument("--num-classes", type=int, default=11)
    ap.add_argument("--ignore-index", type=int, default=255)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    k, ignore = a.num_classes, a.ignore_index
    preds, labels = random_maps(a.num_maps, a.height, a.width, k, ignore, a.seed)
    batches = [(preds[i:i + a.batch_size], labels[i:i + a.batch_size]) for i in range(0, a.num_maps, a.batch_size)]

    def book():
        metric = ByTheBookMeanIoU()
        for p, lab in batches:
            metric.add_batch(p, lab)
        return metric.compute(k, ignore)

    def streaming():
        cm = ConfusionMatrix(k, ignore)
        for p, lab in batches:
            cm.update(p, lab)
        return metrics_from_confusion(cm.matrix, [str(i) for i in range(k)])

    import evaluate  # after the data, so its import time is not in any timing

    module = evaluate.load(METRIC_PATH, cache_dir=tempfile.mkdtemp(prefix="bench_metrics_"))

    def via_evaluate():
        for p, lab in batches:
            module.add_batch(predictions=p, references=lab)
        return module.compute(num_labels=k, ignore_index=ignore)

    t_book, ref = _time(book, a.repeats)
    t_stream, got = _time(streaming, a.repeats)
    t_eval, got_eval = _time(via_evaluate, a.repeats)
    for name in ("mean_iou", "mean_accuracy", "overall_accuracy", "per_category_iou", "per_category_accuracy"):
        np.testing.assert_array_equal(np.asarray(got[name]), ref[name], err_msg=f"streaming {name}")
        np.testing.assert_array_equal(got_eval[name], ref[name], err_msg=f"evaluate module {name}")
    print(f"{a.num_maps} maps {a.height}x{a.width}, {k} classes + ignore {ignore}, "
          f"batches of {a.batch_size}, median of {a.repeats}")
    print(f"by-the-book (maps kept, per-image histograms): {t_book:.3f} s, holds {preds.nbytes + labels.nbytes:,} bytes of maps")
    print(f"streaming ConfusionMatrix:                     {t_stream:.3f} s, holds {k * k * 8:,} bytes")
    print(f"evaluate.load(METRIC_PATH) add_batch+compute:  {t_eval:.3f} s")
    print(f"speed-up streaming / by-the-book: {t_book / t_stream:.1f}x; evaluate module: {t_book / t_eval:.1f}x; "
          f"values identical")
    return {"book_s": t_book, "streaming_s": t_stream, "evaluate_s": t_eval, "speedup": t_book / t_stream}


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
