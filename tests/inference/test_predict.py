"""Predict: TTA and sliding window on models with known outputs, real CamVid images, mask formats, bad inputs, CLI."""

import json
import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from hf_seg.labels import CAMVID, ClassInfo
from hf_seg.engine.runtime import InputSizeError, channels_last
from hf_seg.viz import colorize
from hf_seg.models import build_model, class_info_from_config, load_model
from hf_seg.inference.predict import (LoadedModel, PredictInputError, encode_mask, window_starts, list_images,
                                      load_trained, predict_files, predict_probs)
from hf_seg.models.processor import processor_size, save_checkpoint
from hf_seg.recipe import ModelConfig

from conftest import REPO  # noqa: E402
from helpers.cli import cli, error_lines  # noqa: E402
TINY = ClassInfo(names=("a", "b", "c"))
BINARY = ClassInfo(names=("background", "object"), palette=((10, 20, 30), (250, 40, 5)), mask_values=(0, 255))


class PixelModel(torch.nn.Module):
    """Per-pixel colour classifier (1x1 conv): flip-equivariant and independent of context."""

    def __init__(self, classes: int = 3):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, classes, 1)

    def forward(self, pixel_values):
        return SimpleNamespace(logits=self.conv(pixel_values))


class ConstantModel(torch.nn.Module):
    """Always predicts class 2 with logits (0, 1, 3)."""

    def forward(self, pixel_values):
        b, _, h, w = pixel_values.shape
        return SimpleNamespace(logits=torch.tensor([0.0, 1.0, 3.0]).view(1, 3, 1, 1).expand(b, 3, h, w))


class RampModel(torch.nn.Module):
    """Two classes whose logit difference runs from -2 (left edge) to +2 (right edge): not flip-symmetric."""

    def forward(self, pixel_values):
        b, _, h, w = pixel_values.shape
        ramp = torch.linspace(-2, 2, w).expand(b, 1, h, w)
        return SimpleNamespace(logits=torch.cat([torch.zeros_like(ramp), ramp], 1))


def random_image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_tta_keeps_a_flip_symmetric_model_and_averages_an_asymmetric_one():
    image = random_image(24, 40)
    pixel = PixelModel()
    plain, tta = predict_probs(pixel, image), predict_probs(pixel, image, tta=True)
    assert plain.shape == tta.shape == (3, 24, 40)
    assert torch.allclose(plain, tta, atol=1e-6)
    ramp_plain = predict_probs(RampModel(), image)
    assert ramp_plain[1, 0, 0] < 0.2 and ramp_plain[1, 0, -1] > 0.8  # left class 0, right class 1 without TTA
    ramp_tta = predict_probs(RampModel(), image, tta=True)  # sigmoid(t) and sigmoid(-t) average to exactly 0.5
    assert torch.allclose(ramp_tta, torch.full_like(ramp_tta, 0.5), atol=1e-6)


@pytest.mark.parametrize("size,window,overlap", [((50, 70), (16, 24), 0.5), ((50, 70), (32, 32), 0.0),
                                                 ((10, 12), (16, 24), 0.25)])
def test_sliding_window_matches_whole_image_for_a_pointwise_model(size, window, overlap):
    image = random_image(*size)
    pixel = PixelModel()
    whole = predict_probs(pixel, image)
    tiled = predict_probs(pixel, image, window=window, overlap=overlap, tta=True)
    assert tiled.shape == whole.shape == (3, *size)
    assert torch.allclose(tiled, whole, atol=1e-5)
    constant = predict_probs(ConstantModel(), image, window=window, overlap=overlap)
    expected = torch.tensor([0.0, 1.0, 3.0]).softmax(0).view(3, 1, 1).expand(3, *size)
    assert torch.allclose(constant, expected, atol=1e-6)


def test_batched_gaussian_channels_last_windows_agree_with_one_at_a_time():
    image = random_image(50, 70)
    pixel = PixelModel()
    one = predict_probs(pixel, image, window=(16, 24), overlap=0.5, batch_size=1)
    many = predict_probs(channels_last(PixelModel()), image, window=(16, 24), overlap=0.5, batch_size=7, fast=True)
    assert torch.allclose(one, many, atol=1e-5)  # batching and memory format change nothing but speed
    gauss = predict_probs(pixel, image, window=(16, 24), overlap=0.5, batch_size=5, blend="gaussian")
    assert torch.allclose(gauss, one, atol=1e-5)  # a pointwise model: any weighting of identical values is the same
    ramp = predict_probs(RampModel(), random_image(16, 48), window=(16, 24), overlap=0.5, blend="gaussian")
    mean = predict_probs(RampModel(), random_image(16, 48), window=(16, 24), overlap=0.5)
    middle = 24  # covered by two windows' edges and one window's centre: the centre counts more with the Gaussian
    assert abs(float(ramp[1, 0, middle]) - 0.5) < abs(float(mean[1, 0, middle]) - 0.5)
    with pytest.raises(ValueError, match="blend 'box' is unknown"):
        predict_probs(pixel, image, window=(16, 24), blend="box")
    with pytest.raises(ValueError, match="batch size 0 is invalid"):
        predict_probs(pixel, image, window=(16, 24), batch_size=0)


def test_scaled_sliding_window_returns_original_size():
    image = random_image(50, 70)
    probs = predict_probs(ConstantModel(), image, window=(16, 16), overlap=0.5, scale=0.5)
    expected = torch.tensor([0.0, 1.0, 3.0]).softmax(0).view(3, 1, 1).expand(3, 50, 70)
    assert probs.shape == (3, 50, 70) and torch.allclose(probs, expected, atol=1e-6)
    pixel = PixelModel()  # a pointwise model at half scale equals the whole image at half size, resized back
    half = predict_probs(pixel, image, input_size=(25, 35))
    assert torch.allclose(predict_probs(pixel, image, window=(16, 16), scale=0.5), half, atol=1e-5)
    with pytest.raises(ValueError, match="scale=0 is invalid"):
        predict_probs(pixel, image, window=(16, 16), scale=0)


def test_window_starts_cover_the_image():
    assert window_starts(50, 16, 8) == [0, 8, 16, 24, 32, 34]
    assert window_starts(32, 32, 32) == [0]
    assert window_starts(10, 16, 8) == [0]


def test_resize_mode_returns_original_size():
    probs = predict_probs(ConstantModel(), random_image(37, 53), input_size=(16, 32))
    assert probs.shape == (3, 37, 53) and bool((probs.argmax(0) == 2).all())


def test_colorize_uses_palette_and_blacks_out_ignore():
    mask = np.array([[0, 1], [2, 255]], dtype=np.uint8)
    rgb = colorize(mask, TINY.palette)
    assert rgb[0, 1].tolist() == list(TINY.palette[1]) and rgb[1, 1].tolist() == [0, 0, 0]


def test_predict_camvid_images_writes_original_size_masks(camvid_root, tmp_path):
    model = build_model(ModelConfig(arch="unet", encoder="resnet18", encoder_depth=3), CAMVID)
    loaded = LoadedModel(model=model.eval(), class_info=CAMVID, image_size=(64, 96), source="test")
    images = sorted((camvid_root / "test").glob("*.png"))[:2]
    for kwargs in ({"input_size": (64, 96), "tta": True}, {"window": (192, 256), "overlap": 0.25}):
        out = tmp_path / ("window" if "window" in kwargs else "resize")
        used = images if "tta" in kwargs else images[:1]
        report = predict_files(loaded, used, out, progress=False, **kwargs)
        assert report.failures == [] and len(report.written) == len(used)
        for item, image in zip(report.written, used):
            original = Image.open(image)
            mask = Image.open(item["mask"])
            assert mask.mode == "L" and mask.size == original.size == (480, 360)
            assert np.asarray(mask).max() < CAMVID.num_classes
            overlay = Image.open(item["overlay"])
            assert overlay.size[1] == 360 and overlay.size[0] > 480  # legend panel to the right


def test_palette_and_stored_masks_encode_the_predicted_ids(tmp_path):
    image = tmp_path / "image.png"
    Image.fromarray(random_image(20, 30)).save(image)
    loaded = LoadedModel(model=PixelModel(classes=2), class_info=BINARY, image_size=None, source="test")
    written = {}
    for mask_format in ("ids", "palette", "stored"):
        report = predict_files(loaded, [image], tmp_path / mask_format, progress=False, mask_format=mask_format)
        assert report.failures == [] and len(report.written) == 1
        written[mask_format] = report.written[0]
    ids = np.asarray(Image.open(written["ids"]["mask"]))
    assert set(np.unique(ids)) == {0, 1}  # both classes predicted, so every value below is exercised
    palette = Image.open(written["palette"]["mask"])
    assert palette.mode == "RGB" and np.array_equal(np.asarray(palette), np.asarray(BINARY.palette)[ids])
    stored = Image.open(written["stored"]["mask"])
    assert stored.mode == "L" and set(np.unique(np.asarray(stored))) == {0, 255}
    assert np.array_equal(np.asarray(stored), np.where(ids == 1, 255, 0))
    overlays = {Path(w["overlay"]).read_bytes() for w in written.values()}
    assert len(overlays) == 1  # the overlay does not depend on the mask format


def test_stored_values_above_255_are_written_as_16_bit():
    wide = ClassInfo(names=("a", "b", "c"), mask_values=(7, 1000, 65535))
    mask = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    stored = encode_mask(mask, wide, "stored")
    assert stored.mode == "I;16" and np.asarray(stored).tolist() == [[7, 1000], [65535, 1000]]
    ids = encode_mask(mask, wide, "ids")
    assert ids.mode == "L" and np.asarray(ids).tolist() == mask.tolist()


def test_stored_without_mask_values_fails_before_writing(tmp_path):
    image = tmp_path / "image.png"
    Image.fromarray(random_image(20, 30)).save(image)
    loaded = LoadedModel(model=ConstantModel(), class_info=TINY, image_size=None, source="test")
    with pytest.raises(PredictInputError, match="--mask-format stored: .* no stored mask values .* --mask-format ids"):
        predict_files(loaded, [image], tmp_path / "out", progress=False, mask_format="stored")
    with pytest.raises(PredictInputError, match="mask format 'colours' is unknown; use one of ids, palette, stored"):
        predict_files(loaded, [image], tmp_path / "out", progress=False, mask_format="colours")
    assert not (tmp_path / "out").exists()
    saved = tmp_path / "model"
    build_model(ModelConfig(arch="unet", encoder="resnet18", encoder_depth=3), TINY).save_pretrained(saved)
    code, err = cli("predict", str(saved), str(image), "--out", str(tmp_path / "cli"), "--mask-format", "stored")
    errors = error_lines(err)
    assert code == 2 and len(errors) == 1 and "--mask-format stored" in errors[0] and "Traceback" not in err, err
    assert not (tmp_path / "cli").exists()


def test_stored_cli_on_a_saved_model_with_mask_values(tmp_path):
    saved = tmp_path / "model"
    build_model(ModelConfig(arch="unet", encoder="resnet18", encoder_depth=3), BINARY).save_pretrained(saved)
    image = tmp_path / "image.png"
    Image.fromarray(random_image(20, 30)).save(image)
    code, err = cli("predict", str(saved), str(image), "--out", str(tmp_path / "out"), "--mask-format", "stored")
    assert code == 0, err
    stored = Image.open(tmp_path / "out" / "masks" / "image.png")
    assert stored.mode == "L" and stored.size == (30, 20) and set(np.unique(np.asarray(stored))) <= {0, 255}


def test_mask_values_round_trip_through_dicts_and_saved_configs(tmp_path):
    assert ClassInfo.from_dict(BINARY.to_dict()) == BINARY and BINARY.to_dict()["mask_values"] == [0, 255]
    old = {k: v for k, v in BINARY.to_dict().items() if k != "mask_values"}  # files written before mask_values
    assert ClassInfo.from_dict(old).mask_values == ClassInfo.from_dict({**old, "mask_values": None}).mask_values == ()
    assert ClassInfo(names=("a", "b"), mask_values=(np.uint16(3), np.int64(9))).mask_values == (3, 9)
    for cfg in (ModelConfig(arch="unet", encoder="resnet18", encoder_depth=3),
                ModelConfig(arch="segformer", encoder="b0")):
        folder = tmp_path / cfg.arch
        build_model(cfg, BINARY).save_pretrained(folder)
        assert class_info_from_config(load_model(folder).config) == BINARY
        config = json.loads((folder / "config.json").read_text())
        assert config["mask_values"] == [0, 255]
        del config["mask_values"]  # a checkpoint saved before mask_values existed still loads, with none
        (folder / "config.json").write_text(json.dumps(config))
        assert class_info_from_config(load_model(folder).config).mask_values == ()


@pytest.mark.parametrize("values,message", [((0,), "has 1 values for 2 classes"), ((0, 0), "has duplicates"),
                                            ((0, 65536), "65536 is not an integer in 0..65535"),
                                            ((-1, 3), "-1 is not an integer"), ((0, 1.5), "1.5 is not an integer"),
                                            ((0, True), "True is not an integer"), ("ab", "'a' is not an integer")])
def test_invalid_mask_values_are_one_line_errors(values, message):
    with pytest.raises(ValueError, match=message) as error:
        ClassInfo(names=("a", "b"), mask_values=values)
    assert "\n" not in str(error.value) and "mask_values" in str(error.value)


def test_bad_inputs_are_listed_and_the_rest_processed(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(random_image(20, 30)).save(good)
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    empty = tmp_path / "empty"
    empty.mkdir()
    loaded = LoadedModel(model=ConstantModel(), class_info=TINY, image_size=None, source="test")
    report = predict_files(loaded, [broken, empty, good, tmp_path / "missing.jpg"], tmp_path / "out", progress=False)
    assert [w["image"] for w in report.written] == [str(good)]
    reasons = dict(report.failures)
    assert set(reasons) == {str(broken), str(empty), str(tmp_path / "missing.jpg")}
    assert "cannot be decoded" in reasons[str(broken)] and "folder has no images" in reasons[str(empty)]
    assert all("\n" not in r for r in reasons.values())
    assert np.asarray(Image.open(report.written[0]["mask"])).tolist() == np.full((20, 30), 2).tolist()
    images, failures = list_images([tmp_path])
    assert images == [broken, good] and failures == []
    dots = tmp_path / "..png"  # a name whose stem is '.': written as image.png, the batch goes on
    Image.fromarray(random_image(20, 30)).save(dots, format="PNG")
    report = predict_files(loaded, [dots, good], tmp_path / "dots", progress=False)
    assert [Path(w["mask"]).name for w in report.written] == ["image.png", "good.png"] and not report.failures
    nothing = predict_files(loaded, [broken], tmp_path / "none", progress=False)
    assert nothing.failures and not (tmp_path / "none").exists()  # every input failed: no empty folders left


def test_unusable_model_and_input_size_are_one_line_errors(tmp_path, monkeypatch):
    not_model = tmp_path / "folder"
    not_model.mkdir()
    with pytest.raises(PredictInputError, match="neither a run folder .* nor a saved model folder"):
        load_trained(not_model)
    with pytest.raises(PredictInputError, match="does not exist"):
        load_trained(tmp_path / "nope")
    with pytest.raises(PredictInputError, match="not a local folder .* could not be loaded as a Hub id"):
        load_trained("someone/not-on-this-machine")  # HF_HUB_OFFLINE=1 in tests
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PredictInputError, match="'runs/nothing' does not exist"):  # a mistyped path, not a Hub id
        load_trained("runs/nothing")
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.json").write_text("{}")
    with pytest.raises(PredictInputError, match="has no best/ checkpoint"):
        load_trained(run)
    seg = build_model(ModelConfig(arch="segformer", encoder="b0"), TINY)
    loaded = LoadedModel(model=seg, class_info=TINY, image_size=None, source="test")
    with pytest.raises(InputSizeError, match="cannot take input size 2x2"):
        predict_files(loaded, [tmp_path], tmp_path / "out", input_size=(2, 2), progress=False)


def test_a_saved_model_folder_predicts_at_its_image_processors_size(tmp_path):
    """A best/ folder copied out of its run (or a Hub id) has no recipe: its preprocessor_config.json gives the size,
    so predict resizes as pipeline("image-segmentation") does."""
    saved = tmp_path / "copied_best"
    save_checkpoint(build_model(ModelConfig(arch="unet", encoder="resnet18", encoder_depth=3,
                                            options={"decoder_channels": [16, 8, 8]}), CAMVID), saved, (48, 64))
    assert processor_size(saved) == (48, 64) and load_trained(saved).image_size == (48, 64)
    (saved / "preprocessor_config.json").unlink()
    assert processor_size(saved) is None and load_trained(saved).image_size is None  # then: native size


def test_predict_script_on_saved_model(camvid_root, tmp_path):
    saved = tmp_path / "model"
    build_model(ModelConfig(arch="segformer", encoder="b0"), CAMVID).save_pretrained(saved)
    assert load_trained(saved).class_info == CAMVID  # names and palette travel in the config
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\x00" * 10)
    image = sorted((camvid_root / "val").glob("*.png"))[0]
    cmd = [sys.executable, "scripts/predict.py", str(saved), str(image), str(broken), "--out", str(tmp_path / "out"),
           "--input-size", "64", "96", "--tta"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "wrote 1 masks" in done.stdout and f"error: {broken}: image '{broken}' cannot be decoded" in done.stderr
    assert Image.open(tmp_path / "out" / "masks" / image.name).size == (480, 360)


def test_predict_script_bad_model_is_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["predict.py", str(tmp_path), str(tmp_path), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(REPO / "scripts" / "predict.py"), run_name="__main__")
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error: ") and "neither a run folder" in err and err.count("\n") == 1
