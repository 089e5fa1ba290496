"""Streaming confusion matrix, scores, the local evaluate module, and agreement with the Hub's mean_iou semantics."""

import importlib.util
import json
import math

import evaluate
import numpy as np
import pytest
import torch
from PIL import Image

from hf_seg.metrics import METRIC_PATH, ConfusionMatrix, format_metrics_table, metrics_from_confusion, to_jsonable
from hf_seg.metrics import confusion

from conftest import REPO  # noqa: E402
HUB_KEYS = ("mean_iou", "mean_accuracy", "overall_accuracy", "per_category_iou", "per_category_accuracy")


def _load_bench():
    """The benchmark script holds the by-the-book Hub implementation the metrics are checked against."""
    spec = importlib.util.spec_from_file_location("bench_metrics", REPO / "scripts" / "bench_metrics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


def _book(preds, labels, num_labels, ignore_index=255):
    ref = bench.ByTheBookMeanIoU()
    ref.add_batch(preds, labels)
    return ref.compute(num_labels, ignore_index)


@pytest.fixture
def metric(tmp_path):
    return evaluate.load(METRIC_PATH, cache_dir=str(tmp_path / "evaluate"))


# A 2x3 example counted by hand: 5 labelled pixels, class 3 absent from both maps.
LABEL = np.array([[0, 0, 1], [1, 2, 255]], dtype=np.uint8)
PRED = np.array([[0, 1, 1], [2, 2, 0]], dtype=np.uint8)
MATRIX = [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]


def test_hand_computed_matrix_and_scores():
    cm = ConfusionMatrix(4, 255)
    cm.update(PRED, LABEL)
    assert cm.matrix.tolist() == MATRIX
    m = metrics_from_confusion(cm.matrix, ["a", "b", "c", "d"])
    np.testing.assert_allclose(m["per_category_iou"][:3], [1 / 2, 1 / 3, 1 / 2])
    np.testing.assert_allclose(m["per_category_accuracy"][:3], [1 / 2, 1 / 2, 1])
    np.testing.assert_allclose(m["per_category_dice"][:3], [2 / 3, 1 / 2, 2 / 3])
    assert all(math.isnan(m[k][3]) for k in ("per_category_iou", "per_category_accuracy", "per_category_dice"))
    assert m["mean_iou"] == pytest.approx(4 / 9)
    assert m["mean_accuracy"] == pytest.approx(2 / 3)
    assert m["mean_dice"] == pytest.approx(11 / 18)
    assert m["overall_accuracy"] == pytest.approx(3 / 5)
    assert m["confusion_matrix"] == MATRIX and m["class_names"] == ["a", "b", "c", "d"]


def test_batches_torch_numpy_shapes_merge_reset():
    one = ConfusionMatrix(4)
    one.update(torch.from_numpy(PRED).long(), torch.from_numpy(LABEL))  # torch, int64 predictions
    one.update(np.stack([PRED, PRED]), np.stack([LABEL, LABEL]))  # a batch (N, H, W)
    one.update(PRED.ravel().astype(np.int32), LABEL.ravel())  # flat
    assert one.matrix.tolist() == (4 * np.array(MATRIX)).tolist()
    other = ConfusionMatrix(4)
    other.update(PRED, LABEL)
    one.merge(other)
    assert one.matrix.sum() == 5 * 5
    one.reset()
    assert one.matrix.sum() == 0
    with pytest.raises(ValueError, match="cannot merge a 5-class"):
        one.merge(ConfusionMatrix(5))


def test_generic_path_and_chunks_agree_with_uint8_path(monkeypatch):
    rng = np.random.default_rng(0)
    label = rng.integers(0, 6, (3, 17, 23))
    pred = rng.integers(0, 5, (3, 17, 23))
    label[label == 5] = 255
    fast = ConfusionMatrix(5)
    fast.update(pred, label)
    wide = ConfusionMatrix(5, ignore_index=300)  # values > 255: the bincount path
    wide.update(pred, np.where(label == 255, 300, label))
    monkeypatch.setattr(confusion, "EXACT_FLOAT32_CHUNK", 7)  # many cv2 chunks
    chunked = ConfusionMatrix(5)
    chunked.update(pred, label)
    expected = np.zeros((5, 5), dtype=np.int64)
    keep = label != 255
    np.add.at(expected, (label[keep], pred[keep]), 1)
    for cm in (fast, wide, chunked):
        assert cm.matrix.tolist() == expected.tolist()


@pytest.mark.parametrize("label_value,pred_value,message", [
    (7, 0, r"label value\(s\) \[7\] out of range"),
    (0, 9, r"prediction value\(s\) \[9\] out of range at labelled pixels"),
    (-1, 0, "label value -1 is negative"),
])
def test_out_of_range_values_are_errors(label_value, pred_value, message):
    label, pred = LABEL.astype(np.int64), PRED.astype(np.int64)
    label[0, 0], pred[0, 0] = label_value, pred_value
    with pytest.raises(ValueError, match=message):
        ConfusionMatrix(4).update(pred, label)


def test_bad_inputs_are_errors():
    cm = ConfusionMatrix(4)
    with pytest.raises(ValueError, match="not an integer type"):
        cm.update(PRED.astype(np.float32), LABEL)
    with pytest.raises(ValueError, match=r"prediction shape \(3, 2\) differs"):
        cm.update(PRED.reshape(3, 2), LABEL)
    with pytest.raises(ValueError, match="ignore_index=2 must be >= num_classes=4"):
        ConfusionMatrix(4, ignore_index=2)


def test_prediction_out_of_range_on_ignored_pixels_is_dropped():
    pred = PRED.copy()
    pred[1, 2] = 255  # the pixel whose label is ignored
    cm = ConfusionMatrix(4)
    cm.update(pred, LABEL)
    assert cm.matrix.tolist() == MATRIX


def test_agrees_with_hub_semantics_on_random_maps(metric):
    rng = np.random.default_rng(1)
    preds, labels = [], []
    for h, w in [(31, 40), (17, 9), (64, 48), (5, 5)]:  # different sizes, as the Hub module allows
        label = rng.integers(0, 6, (h, w), dtype=np.uint8)
        label[label == 5] = 255  # ignore; class 5 is only predicted, class 6 occurs nowhere (NaN)
        pred = rng.integers(0, 6, (h, w), dtype=np.uint8)
        pred[label == 4] = 4  # class 4 predicted right wherever it occurs
        preds.append(pred)
        labels.append(label)
    ref = _book(preds, labels, num_labels=7)
    cm = ConfusionMatrix(7)
    for p, lab in zip(preds, labels):
        cm.update(p, lab)
    got = metrics_from_confusion(cm.matrix, [str(i) for i in range(7)])
    metric.add_batch(predictions=preds[:2], references=labels[:2])
    metric.add(prediction=preds[2], reference=labels[2])
    via_module = metric.compute(predictions=preds[3:], references=labels[3:], num_labels=7, ignore_index=255)
    assert ref["per_category_iou"][5] == 0 and np.isnan(ref["per_category_accuracy"][5])
    assert np.isnan(ref["per_category_iou"][6])
    for key in HUB_KEYS:
        np.testing.assert_array_equal(np.asarray(got[key]), ref[key], err_msg=key)
        np.testing.assert_array_equal(via_module[key], ref[key], err_msg=key)
    assert via_module["confusion_matrix"].tolist() == cm.matrix.tolist()
    np.testing.assert_array_equal(via_module["per_category_dice"], got["per_category_dice"])
    assert via_module["mean_dice"] == got["mean_dice"]


def test_evaluate_module_options_and_state(metric):
    rng = np.random.default_rng(2)
    label = rng.integers(0, 4, (2, 10, 12), dtype=np.uint8)  # 0 = "background" to drop with reduce_labels
    label[:, 0] = 255  # already ignored: must stay ignored after the reduction
    pred = rng.integers(0, 3, (2, 10, 12), dtype=np.uint8)
    out = metric.compute(predictions=pred, references=label, num_labels=3, ignore_index=255, reduce_labels=True)
    reduced = label.copy()  # the Hub's steps, literally
    reduced[reduced == 0] = 255
    reduced = reduced - 1
    reduced[reduced == 254] = 255
    ref = _book(list(pred), list(reduced), num_labels=3)
    for key in HUB_KEYS:
        np.testing.assert_array_equal(out[key], ref[key], err_msg=key)
    out = metric.compute(predictions=pred, references=label, num_labels=4, ignore_index=255, label_map={3: 255})
    ref = _book(list(pred), list(np.where(label == 3, 255, label)), num_labels=4)
    np.testing.assert_array_equal(out["per_category_iou"], ref["per_category_iou"])
    assert np.isnan(out["per_category_iou"][3])
    out = metric.compute(predictions=pred, references=label, num_labels=5, ignore_index=255, nan_to_num=-1.0)
    assert out["per_category_iou"][4] == -1.0 and out["per_category_dice"][4] == -1.0
    with pytest.raises(ValueError, match="found no pixels"):  # compute() emptied the running table
        metric.compute(num_labels=5, ignore_index=255)


def test_evaluate_module_rejects_out_of_range_labels(metric):
    metric.add_batch(predictions=[PRED], references=[LABEL])
    with pytest.raises(ValueError, match=r"label value\(s\) \[2\] out of range"):
        metric.compute(num_labels=2, ignore_index=255)
    with pytest.raises(ValueError, match="needs num_labels= and ignore_index="):
        metric.compute(predictions=[PRED], references=[LABEL])
    with pytest.raises(ValueError, match="pass num_labels"):
        metric.add_batch(predictions=[PRED], references=[LABEL], num_labels=4)


def test_camvid_masks_through_module_with_label_map(metric, camvid_root):
    """Real CamVid masks (void = 11) against a shifted copy as the prediction; void mapped to ignore via label_map."""
    names = sorted(p.name for p in (camvid_root / "testannot").iterdir())[:3]
    labels = [np.array(Image.open(camvid_root / "testannot" / n)) for n in names]
    preds = [np.roll(np.where(lab == 11, 0, lab), 5, axis=1) for lab in labels]
    out = metric.compute(predictions=preds, references=labels, num_labels=11, ignore_index=255, label_map={11: 255})
    ref = _book(preds, [np.where(lab == 11, 255, lab) for lab in labels], num_labels=11)
    for key in HUB_KEYS:
        np.testing.assert_array_equal(out[key], ref[key], err_msg=key)
    assert 0.3 < out["overall_accuracy"] < 1.0  # a 5-pixel shift keeps most pixels right, not all


def test_to_jsonable_and_table():
    cm = ConfusionMatrix(4)
    cm.update(PRED, LABEL)
    m = metrics_from_confusion(cm.matrix, ["sky", "road", "car", "bike"])
    j = to_jsonable(m)
    assert j["per_category_iou"][3] is None and j["per_category_iou"][0] == 0.5
    assert json.loads(json.dumps(j, allow_nan=False)) == j
    table = format_metrics_table(m)
    lines = table.splitlines()
    assert lines[0] == "| class | IoU | Dice | accuracy |"
    assert "| road | 33.3 | 50.0 | 50.0 |" in lines
    assert "| bike | – | – | – |" in lines
    assert "| **mean** | **44.4** | **61.1** | **66.7** |" in lines
    assert lines[-1] == "| pixel accuracy | | | 60.0 |"
    assert format_metrics_table(j) == table  # the JSON form renders the same


def test_bench_script_runs_small(capsys):
    result = bench.main(["--num-maps", "5", "--height", "12", "--width", "16", "--batch-size", "2", "--repeats", "1"])
    assert result["book_s"] > 0 and result["streaming_s"] > 0 and result["speedup"] > 0
    assert "values identical" in capsys.readouterr().out


def test_evaluate_module_forgets_a_failed_compute(metric):
    """A compute() that raises leaves nothing behind: the next correct call scores only its own maps."""
    wrong = np.zeros((4, 4), dtype=np.uint8)
    right = np.arange(16, dtype=np.uint8).reshape(4, 4) % 2
    with pytest.raises(ValueError, match="needs num_labels= and ignore_index="):
        metric.compute(predictions=[1 - right], references=[right])  # a miss, given without num_labels
    metric.add_batch(predictions=[wrong], references=[right])
    with pytest.raises(ValueError, match=r"label value\(s\) \[1\] out of range"):
        metric.compute(num_labels=1, ignore_index=255)  # fails after the counts were made
    out = metric.compute(predictions=[right], references=[right], num_labels=2, ignore_index=255)
    assert out["mean_iou"] == 1.0 and out["confusion_matrix"].tolist() == [[8, 0], [0, 8]]


@pytest.mark.parametrize("ignore_index", [0, -100, 3])
def test_evaluate_module_takes_any_ignore_index_as_mean_iou_does(metric, ignore_index):
    rng = np.random.default_rng(3)
    labels = [rng.integers(0, 3, (9, 11)).astype(np.int64) for _ in range(3)]
    labels[0][:2] = ignore_index  # -100 (the transformers loss convention) really occurs in the maps
    preds = [rng.integers(0, 3, (9, 11)) for _ in range(3)]
    out = metric.compute(predictions=preds, references=labels, num_labels=3, ignore_index=ignore_index)
    ref = _book(preds, labels, num_labels=3, ignore_index=ignore_index)
    for key in HUB_KEYS:
        np.testing.assert_array_equal(out[key], ref[key], err_msg=key)
    if ignore_index == 0:  # class 0 is never a label, so its accuracy is NaN and its IoU 0 (it is still predicted)
        assert np.isnan(out["per_category_accuracy"][0]) and out["per_category_iou"][0] == 0


def test_evaluate_module_runs_without_hf_seg(tmp_path):
    """Copied on its own (as into a Space), the module loads and computes in an interpreter that cannot import hf_seg."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    folder = tmp_path / "mean_iou_dice"
    folder.mkdir()
    for name in ("mean_iou_dice.py", "README.md"):
        shutil.copy(Path(METRIC_PATH) / name, folder / name)
    code = ("import sys\nsys.modules['hf_seg'] = None\nimport evaluate, numpy as np\n"
            f"m = evaluate.load({str(folder)!r}, cache_dir={str(tmp_path / 'cache')!r})\n"
            "out = m.compute(predictions=[np.array([[0, 1], [1, 1]])], references=[np.array([[0, 1], [0, 255]])],"
            " num_labels=2, ignore_index=255)\n"
            "print(round(float(out['mean_iou']), 4), out['confusion_matrix'].tolist())\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "0.5 [[1, 1], [0, 1]]"
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "ignore_index" in card and "mean_iou" in card
