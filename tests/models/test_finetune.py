"""model.pretrained as a trained checkpoint: run folders, save_pretrained and plain smp folders; a fresh head (with a
message) when the classes differ, every other weight carried over, and one-line errors for checkpoints that do not fit."""

import json

import pytest
import segmentation_models_pytorch as smp
import torch

from hf_seg.labels import ClassInfo
from hf_seg.models import ModelConfigError, build_model
from hf_seg.models.finetune import resolve_checkpoint
from hf_seg.recipe import ModelConfig

THREE = ClassInfo(names=("sky", "road", "car"))
FIVE = ClassInfo(names=("a", "b", "c", "d", "e"))
UNET = {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3, "options": {"decoder_channels": [32, 16, 8]}}


def _trained(folder, classes=THREE, **model):
    torch.manual_seed(0)
    source = build_model(ModelConfig(**{**UNET, **model}), classes)
    source.save_pretrained(folder)
    return source


def _same(a: dict, b: dict, skip: str = "~") -> bool:
    return all(torch.equal(a[k], b[k]) for k in a if not k.startswith(skip))


def test_fine_tune_from_a_run_folder_with_other_classes_reinitialises_the_head(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    (run / "recipe.json").write_text("{}")
    source = _trained(run / "best")
    torch.manual_seed(1)
    tuned = build_model(ModelConfig(**UNET, pretrained=str(run)), FIVE)
    assert "it has 3 classes and this data has 5, so the segmentation head is re-initialised" in capsys.readouterr().out
    head = "smp_model.segmentation_head."
    assert _same(source.state_dict(), tuned.state_dict(), skip=head)  # encoder and decoder carried over
    assert tuned.state_dict()[head + "0.weight"].shape[0] == 5
    assert tuned.config.encoder_pretrained is None  # a local path is never recorded in the checkpoint


def test_fine_tune_with_the_same_classes_starts_from_identical_logits(tmp_path, capsys):
    source = _trained(tmp_path / "best").eval()
    tuned = build_model(ModelConfig(**UNET, pretrained=str(tmp_path / "best")), THREE).eval()
    assert capsys.readouterr().out == ""
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(tuned(pixel_values=x).logits, source(pixel_values=x).logits)


def test_a_plain_smp_folder_fine_tunes_too(tmp_path, capsys):
    torch.manual_seed(0)
    plain = smp.Unet("resnet18", encoder_depth=3, decoder_channels=[32, 16, 8], encoder_weights=None, classes=2)
    plain.save_pretrained(tmp_path / "smp")
    assert resolve_checkpoint(str(tmp_path / "smp")).config["_model_class"] == "Unet"
    tuned = build_model(ModelConfig(**UNET, pretrained=str(tmp_path / "smp")), THREE)
    assert "it has 2 classes" in capsys.readouterr().out
    ours = {k.removeprefix("smp_model."): v for k, v in tuned.state_dict().items()}
    assert _same(plain.state_dict(), ours, skip="segmentation_head.")


def test_checkpoints_that_do_not_fit_are_one_line_errors(tmp_path):
    _trained(tmp_path / "best")
    with pytest.raises(ModelConfigError, match="is arch 'unet' with encoder 'resnet18', but the recipe builds 'unet' "
                                               "with 'resnet34'"):
        build_model(ModelConfig(**{**UNET, "encoder": "resnet34"}, pretrained=str(tmp_path / "best")), THREE)
    with pytest.raises(ModelConfigError, match="does not fit the recipe's model"):
        build_model(ModelConfig(**{**UNET, "encoder_depth": 4, "options": {"decoder_channels": [64, 32, 16, 8]}},
                                pretrained=str(tmp_path / "best")), THREE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelConfigError, match="is a folder without config.json and model.safetensors"):
        build_model(ModelConfig(**UNET, pretrained=str(tmp_path / "empty")), THREE)


def test_a_trained_segformer_folder_fine_tunes_with_a_fresh_head(tmp_path, capsys):
    torch.manual_seed(0)
    source = build_model(ModelConfig(arch="segformer", encoder="b0"), THREE)
    source.save_pretrained(tmp_path / "seg")
    assert json.loads((tmp_path / "seg" / "config.json").read_text())["architectures"] == [
        "SegformerForSemanticSegmentation"]
    tuned = build_model(ModelConfig(arch="segformer", encoder=None, pretrained=str(tmp_path / "seg")), FIVE)
    assert "it has 3 classes and this data has 5" in capsys.readouterr().out
    assert _same(source.state_dict(), tuned.state_dict(), skip="decode_head.classifier")
    assert tuned.config.num_labels == 5
