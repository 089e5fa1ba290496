"""Model adapters: input-size logits at odd sizes, training, save/load round trips, Auto classes, pretrained paths, errors."""

import json
import subprocess
import sys

import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import (AutoConfig, AutoModelForSemanticSegmentation, SegformerConfig,
                          SegformerForImageClassification, SegformerForSemanticSegmentation)
from transformers.modeling_outputs import SemanticSegmenterOutput

from hf_seg.labels import ClassInfo
from hf_seg.models import (ARCHITECTURES, InputSizeSegformer, ModelConfigError, SmpForSemanticSegmentation,
                           WeightsNotFoundError, build_model, class_info_from_config, load_model)
from hf_seg.models.smp_adapter import SMP_ARCHITECTURES
from hf_seg.recipe import ModelConfig

CLASSES = ClassInfo(names=("sky", "road", "car"), palette=((1, 2, 3), (4, 5, 6), (7, 8, 9)))
ODD_SIZE = (35, 45)


def batch(size=ODD_SIZE, n=2, seed=0):
    """A fixed random batch: images and int64 labels with a few ignored pixels."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, *size, generator=g)
    labels = torch.randint(0, CLASSES.num_classes, (n, *size), generator=g)
    labels[:, :3, :3] = CLASSES.ignore_index
    return images, labels


class ModelTester:
    """Shared checks; each family is a small subclass naming its recipe."""

    arch: str
    encoder: str
    encoder_depth = None
    options: dict = {}
    model_class: type

    @property
    def auto_class(self) -> type:
        """What AutoModelForSemanticSegmentation returns for the saved folder (hf_seg imported)."""
        return self.model_class

    def build(self):
        torch.manual_seed(0)
        cfg = ModelConfig(arch=self.arch, encoder=self.encoder, encoder_depth=self.encoder_depth, options=self.options)
        return build_model(cfg, CLASSES)

    def train_steps(self, model, steps):
        images, labels = batch()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        model.train()
        losses = []
        for _ in range(steps):
            torch.manual_seed(1)  # the same dropout masks every step: only the weights change the loss
            loss = model(pixel_values=images, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses

    def test_forward_shape_at_odd_size(self):
        model = self.build().eval()
        assert isinstance(model, self.model_class)
        with torch.no_grad():
            out = model(pixel_values=torch.randn(2, 3, *ODD_SIZE))
        assert isinstance(out, SemanticSegmenterOutput)
        assert out.logits.shape == (2, CLASSES.num_classes, *ODD_SIZE)

    def test_config_carries_class_info(self):
        config = self.build().config
        assert config.num_labels == 3 and config.id2label == {0: "sky", 1: "road", 2: "car"}
        assert config.label2id == {"sky": 0, "road": 1, "car": 2}
        assert config.semantic_loss_ignore_index == 255
        assert class_info_from_config(config) == CLASSES

    def test_train_step_lowers_loss(self):
        losses = self.train_steps(self.build(), steps=2)
        assert losses[-1] < losses[0], losses

    def test_save_load_round_trip(self, tmp_path):
        model = self.build()
        self.train_steps(model, steps=1)  # non-initial weights and normalisation statistics
        model.eval()
        images, _ = batch(seed=1)
        with torch.no_grad():
            expected = model(pixel_values=images).logits
        model.save_pretrained(tmp_path)
        assert (tmp_path / "model.safetensors").is_file()
        reloaded = load_model(tmp_path).eval()
        assert type(reloaded) is type(model)
        saved, loaded = model.state_dict(), reloaded.state_dict()
        assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)
        with torch.no_grad():
            # identical weights; CPU kernels may sum in another order for another memory layout (seen with 1 thread)
            torch.testing.assert_close(reloaded(pixel_values=images).logits, expected, rtol=0, atol=1e-6)
        assert class_info_from_config(reloaded.config) == CLASSES

    def test_auto_class_loading(self, tmp_path):
        model = self.build()
        model.save_pretrained(tmp_path)
        assert isinstance(AutoConfig.from_pretrained(tmp_path), type(model.config))
        assert type(AutoModelForSemanticSegmentation.from_pretrained(tmp_path)) is self.auto_class
        assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [self.auto_class.__name__]


class TestUnet(ModelTester):
    arch, encoder, encoder_depth, model_class = "unet", "resnet18", 3, SmpForSemanticSegmentation

    def test_loads_with_plain_smp_without_hf_seg(self, tmp_path):
        """The saved folder is an smp checkpoint: a fresh interpreter that cannot import hf_seg loads it with
        segmentation_models_pytorch.from_pretrained, and its logits equal the adapter's."""
        model = self.build().eval()
        model.save_pretrained(tmp_path)
        images, _ = batch(size=(64, 96), seed=3)
        torch.save(images, tmp_path / "x.pt")
        code = ("import sys, torch\nsys.modules['hf_seg'] = None\nimport segmentation_models_pytorch as smp\n"
                f"m = smp.from_pretrained({str(tmp_path)!r}).eval()\n"
                f"with torch.no_grad(): y = m(torch.load({str(tmp_path / 'x.pt')!r}))\n"
                f"torch.save({{'logits': y, 'class': type(m).__name__}}, {str(tmp_path / 'y.pt')!r})\n")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        plain = torch.load(tmp_path / "y.pt")
        with torch.no_grad():
            ours = model(pixel_values=images).logits
        assert plain["class"] == "Unet"
        torch.testing.assert_close(plain["logits"], ours, atol=1e-5, rtol=1e-5)
        config = json.loads((tmp_path / "config.json").read_text())
        assert config["classes"] == 3 and config["encoder_weights"] is None and config["decoder_channels"] == [64, 32, 16]
        assert tuple(model.input_modalities) == ("image",)  # not transformers' default "text"


class TestFPN(ModelTester):
    arch, encoder, model_class = "FPN", "resnet18", SmpForSemanticSegmentation  # default depth 5
    options = {"decoder_pyramid_channels": 64, "decoder_segmentation_channels": 32}


class TestDeepLabV3Plus(ModelTester):
    arch, encoder, encoder_depth, model_class = "DeepLabV3Plus", "resnet18", 3, SmpForSemanticSegmentation


class TestTimmEncoder(ModelTester):
    arch, encoder, model_class = "upernet", "tu-test_convnext", SmpForSemanticSegmentation
    options = {"decoder_channels": 32}


class TestSegformer(ModelTester):
    arch, encoder, model_class = "segformer", "b0", InputSizeSegformer
    auto_class = SegformerForSemanticSegmentation  # importing hf_seg does not change other people's SegFormers
    options = {"drop_path_rate": 0.0, "classifier_dropout_prob": 0.0}

    def test_loads_with_plain_transformers(self, tmp_path):
        """A saved hf_seg SegFormer is a stock checkpoint: plain transformers gives the same logits at 1/4 size."""
        model = self.build().eval()
        model.save_pretrained(tmp_path)
        assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "segformer"
        plain = SegformerForSemanticSegmentation.from_pretrained(tmp_path).eval()
        images, _ = batch(seed=2)
        with torch.no_grad():
            quarter = plain(pixel_values=images).logits
            ours = model(pixel_values=images).logits
        assert quarter.shape[-2:] == (9, 12)
        assert torch.allclose(F.interpolate(quarter, size=ODD_SIZE, mode="bilinear", align_corners=False), ours)

    def test_b0_has_the_papers_size(self):
        params = sum(p.numel() for p in self.build().parameters())
        assert 3.6e6 < params < 3.8e6  # MiT-b0 + all-MLP head: 3.7 M in the SegFormer paper


SMP_CASES = {arch: ("resnet18", 3, {}, ODD_SIZE) for arch in SMP_ARCHITECTURES}
SMP_CASES["pan"] = ("resnet18", 3, {}, (67, 93))  # its pyramid attention pools the stride-8 map 3 more times
SMP_CASES["dpt"] = ("tu-test_vit", None, {"decoder_intermediate_channels": [8, 16, 32, 32], "decoder_fusion_channels": 16},
                    ODD_SIZE)


@pytest.mark.parametrize("arch", sorted(SMP_CASES))
def test_every_smp_arch_predicts_at_input_size(arch):
    encoder, depth, options, size = SMP_CASES[arch]
    model = build_model(ModelConfig(arch=arch, encoder=encoder, encoder_depth=depth, options=options), CLASSES).eval()
    with torch.no_grad():
        logits = model(pixel_values=torch.randn(1, 3, *size)).logits
    assert logits.shape == (1, CLASSES.num_classes, *size)


def test_adapter_keeps_smps_initialisation():
    """transformers' generic init (normal 0.02 everywhere) must not replace smp's kaiming/xavier init."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="unet", encoder="resnet18", encoder_depth=3), CLASSES)
    torch.manual_seed(0)
    bare = smp.Unet("resnet18", encoder_depth=3, encoder_weights=None, classes=3, decoder_channels=[64, 32, 16])
    ours, theirs = model.smp_model.state_dict(), bare.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_too_small_inputs_for_pan_are_named():
    model = build_model(ModelConfig(arch="pan", encoder="resnet18"), CLASSES)  # depth 5: output stride 16
    with pytest.raises(ValueError, match="'pan' needs inputs of at least 128x128 pixels, got 64x100"):
        model(pixel_values=torch.randn(1, 3, 64, 100))


def test_every_architecture_is_in_the_builder_dict():
    expected = {"segformer", "segformer-decoder"} | set(smp.MODEL_ARCHITECTURES_MAPPING) - {"segformer"}
    assert set(ARCHITECTURES) == expected


def test_smp_pretrained_encoder_is_downloaded_and_loaded(tmp_path, monkeypatch):
    """The online path with the Hub replaced by a local file: the encoder gets exactly the downloaded weights."""
    torch.manual_seed(123)
    reference = smp.encoders.get_encoder("resnet18").state_dict()
    save_file(reference, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text("{}")
    requested = []

    def fake_download(repo_id, filename, revision=None):
        requested.append(repo_id)
        return str(tmp_path / filename)

    monkeypatch.setattr(smp.encoders, "hf_hub_download", fake_download)
    model = build_model(ModelConfig(arch="unet", encoder="resnet18", pretrained="imagenet"), CLASSES)
    assert requested and set(requested) == {"smp-hub/resnet18.imagenet"}
    assert model.config.encoder_pretrained == "imagenet"
    loaded = model.smp_model.encoder.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in reference.items())


def test_segformer_pretrained_from_local_checkpoint(tmp_path):
    """nvidia/mit-bX style weights (an image classifier) give the encoder; the head is new, for our classes."""
    torch.manual_seed(7)
    backbone = SegformerForImageClassification(SegformerConfig(num_labels=5))
    backbone.save_pretrained(tmp_path)
    model = build_model(ModelConfig(arch="segformer", encoder="b0", pretrained=str(tmp_path)), CLASSES)
    assert isinstance(model, InputSizeSegformer) and model.config.num_labels == 3
    theirs = backbone.segformer.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in model.segformer.state_dict().items())
    assert model.config.id2label == CLASSES.id2label


def one_line_error(error_type, cfg):
    with pytest.raises(error_type) as info:
        build_model(cfg, CLASSES)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_offline_weights_fail_with_a_clear_error():
    smp_msg = one_line_error(WeightsNotFoundError, ModelConfig(arch="unet", encoder="resnet18", pretrained="imagenet"))
    assert "'imagenet'" in smp_msg and "resnet18" in smp_msg and "set model.pretrained to null" in smp_msg
    seg_msg = one_line_error(WeightsNotFoundError, ModelConfig(arch="segformer", encoder=None,
                                                               pretrained="hf-seg-tests/no-such-model"))
    assert "hf-seg-tests/no-such-model" in seg_msg and "set model.pretrained to null" in seg_msg


@pytest.mark.parametrize("cfg, expected", [
    (ModelConfig(arch="unett"), "close matches: unet"),
    (ModelConfig(arch="unet", encoder="resnet35"), "resnet34"),
    (ModelConfig(arch="unet", encoder="tu-convnext_tinyy"), "tu-convnext_tiny"),
    (ModelConfig(arch="segformer", encoder="b7"), "b0, b1"),
    (ModelConfig(arch="segformer", encoder="b0", encoder_depth=3), "model.encoder_depth = 3 does not apply"),
    (ModelConfig(arch="unet", encoder="resnet18", options={"decoder_chanels": [8]}), "close matches: decoder_channels"),
    (ModelConfig(arch="unet", encoder="resnet18", options={"activation": "softmax"}), "raw logits"),
    (ModelConfig(arch="unet", encoder="resnet18", options={"encoder_depth": 3}), "model.encoder_depth"),
    (ModelConfig(arch="segformer", encoder="b0", options={"hidden_sizes": [8, 8, 8, 8]}), "set by the variant"),
    (ModelConfig(arch="unet", encoder="resnet18", pretrained="imagenet21k"), "choose one of imagenet, ssl, swsl"),
    (ModelConfig(arch="dpt", encoder="resnet18"), "smp cannot build arch 'dpt'"),
    (ModelConfig(arch="fpn", encoder="resnet18", encoder_depth=2), "encoder_depth 2"),
])
def test_bad_model_recipes_fail_with_one_line_errors(cfg, expected):
    assert expected in one_line_error(ModelConfigError, cfg)


def test_segformer_variant_must_match_the_pretrained_checkpoint(tmp_path):
    SegformerForImageClassification(SegformerConfig(num_labels=2)).save_pretrained(tmp_path)
    message = one_line_error(ModelConfigError, ModelConfig(arch="segformer", encoder="b2", pretrained=str(tmp_path)))
    assert "does not match" in message


def test_load_model_names_a_missing_folder(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="no_model_here"):
        load_model(tmp_path / "no_model_here")
