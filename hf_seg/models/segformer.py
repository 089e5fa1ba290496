"""transformers' SegFormer with logits at the input resolution, buildable offline from a variant name (b0..b5)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from transformers import PreTrainedConfig, SegformerConfig, SegformerForSemanticSegmentation
from transformers.modeling_outputs import SemanticSegmenterOutput

from hf_seg.labels import ClassInfo
from hf_seg.errors import close_matches, one_line
from hf_seg.models.errors import ModelConfigError, WeightsNotFoundError
from hf_seg.models.finetune import head_message, resolve_checkpoint
from hf_seg.recipe import ModelConfig

_WIDE = [64, 128, 320, 512]
SEGFORMER_VARIANTS: dict[str, dict] = {
    "b0": {"hidden_sizes": [32, 64, 160, 256], "depths": [2, 2, 2, 2], "decoder_hidden_size": 256},
    "b1": {"hidden_sizes": _WIDE, "depths": [2, 2, 2, 2], "decoder_hidden_size": 256},
    "b2": {"hidden_sizes": _WIDE, "depths": [3, 4, 6, 3], "decoder_hidden_size": 768},
    "b3": {"hidden_sizes": _WIDE, "depths": [3, 4, 18, 3], "decoder_hidden_size": 768},
    "b4": {"hidden_sizes": _WIDE, "depths": [3, 8, 27, 3], "decoder_hidden_size": 768},
    "b5": {"hidden_sizes": _WIDE, "depths": [3, 6, 40, 3], "decoder_hidden_size": 768},
}
"""The MiT encoder sizes of the SegFormer paper (the nvidia/mit-bX checkpoints); the other settings are shared."""


class InputSizeSegformer(SegformerForSemanticSegmentation):
    """SegFormer whose logits are bilinearly upsampled from 1/4 to the input size, like every hf_seg model's.

    Its weights and config are plain SegFormer's, and the saved config names SegformerForSemanticSegmentation, so the
    folder is an ordinary transformers checkpoint (with 1/4-size logits there, as transformers' SegFormer has).
    """

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """transformers' save_pretrained, recording the transformers class (not this one) in architectures."""
        super().save_pretrained(save_directory, *args, **kwargs)
        self.config.architectures = [SegformerForSemanticSegmentation.__name__]
        if kwargs.get("is_main_process", True):
            path = Path(save_directory) / "config.json"
            path.write_text(json.dumps({**json.loads(path.read_text()), "architectures": self.config.architectures},
                                       indent=2) + "\n")

    def forward(self, pixel_values: torch.Tensor, labels: Optional[torch.Tensor] = None, **kwargs) -> SemanticSegmenterOutput:
        """SegFormer's forward (its loss already upsamples), then logits resized to pixel_values' height and width."""
        out = super().forward(pixel_values, labels=labels, **kwargs)
        out.logits = F.interpolate(out.logits, size=pixel_values.shape[-2:], mode="bilinear", align_corners=False)
        return out


def check_variant(name: Optional[str]) -> str:
    """Normalise 'b2' / 'mit-b2' / 'B2' to 'b2', else a one-line error listing the variants."""
    key = str(name).lower().removeprefix("mit-")
    if key not in SEGFORMER_VARIANTS:
        raise ModelConfigError(
            f"model.encoder = {name!r} is not a SegFormer variant ({close_matches(key, SEGFORMER_VARIANTS)}); "
            f"use one of {', '.join(SEGFORMER_VARIANTS)}"
        )
    return key


def check_options(options: dict) -> dict:
    """Options must be SegformerConfig fields (e.g. drop_path_rate, classifier_dropout_prob)."""
    fields = [f.name for f in dataclasses.fields(SegformerConfig) if f.name not in PreTrainedConfig.__dataclass_fields__]
    for key in options:
        if key in SEGFORMER_VARIANTS["b0"] or key not in fields:
            hint = "sizes are set by the variant in model.encoder" if key in fields else close_matches(key, fields)
            raise ModelConfigError(f"model.options.{key} is not a SegFormer option ({hint}); valid options: "
                                   f"{', '.join(f for f in fields if f not in SEGFORMER_VARIANTS['b0'])}")
    return dict(options)


def _pretrained_config(pretrained: str) -> dict:
    """The checkpoint's raw config, so size and family can be checked before any weights are fetched."""
    try:
        config, _ = PreTrainedConfig.get_config_dict(pretrained)
    except OSError as e:
        raise WeightsNotFoundError(
            f"pretrained SegFormer '{pretrained}' could not be loaded ({one_line(e)}); go online (unset HF_HUB_OFFLINE), "
            "pass a local folder, or set model.pretrained to null to train from scratch"
        ) from e
    if config.get("model_type") != "segformer":
        raise ModelConfigError(f"model.pretrained = '{pretrained}' is a '{config.get('model_type')}' checkpoint, not a "
                               "SegFormer; use e.g. \"nvidia/mit-b2\" or null to train from scratch")
    return config


def build_segformer(cfg: ModelConfig, class_info: ClassInfo) -> InputSizeSegformer:
    """A SegFormer from a variant (random init, offline) or from Hub/local weights with a fresh head for our classes."""
    if cfg.encoder_depth is not None:
        raise ModelConfigError(f"model.encoder_depth = {cfg.encoder_depth} does not apply to arch 'segformer'; "
                               "set it to null and pick the size with model.encoder (b0..b5)")
    options = check_options(cfg.options)
    labels = {"id2label": class_info.id2label, "label2id": class_info.label2id,
              "semantic_loss_ignore_index": class_info.ignore_index, "palette": [list(c) for c in class_info.palette],
              "mask_values": list(class_info.mask_values)}
    if cfg.pretrained is None:
        if cfg.encoder is None:
            raise ModelConfigError("model.encoder is null for a SegFormer trained from scratch; set it to b0..b5")
        return InputSizeSegformer(SegformerConfig(**SEGFORMER_VARIANTS[check_variant(cfg.encoder)], **options, **labels))
    pretrained = cfg.pretrained
    if Path(pretrained).expanduser().is_dir():  # a run folder (its best/) or a save_pretrained folder
        pretrained = resolve_checkpoint(pretrained).folder
    found = _pretrained_config(pretrained)
    message = head_message(found, cfg.pretrained, class_info)
    if message:
        print(message)
    config = SegformerConfig.from_dict({**found, **options, **labels})
    if cfg.encoder is not None:
        sizes = SEGFORMER_VARIANTS[check_variant(cfg.encoder)]
        if any(list(getattr(config, k)) != v for k, v in sizes.items() if k != "decoder_hidden_size"):
            raise ModelConfigError(
                f"model.encoder = '{cfg.encoder}' does not match model.pretrained = '{cfg.pretrained}' "
                f"(hidden_sizes {list(config.hidden_sizes)}, depths {list(config.depths)}); set model.encoder to null "
                "to take the checkpoint's size"
            )
    try:
        return InputSizeSegformer.from_pretrained(pretrained, config=config, ignore_mismatched_sizes=True)
    except OSError as e:
        raise WeightsNotFoundError(
            f"pretrained SegFormer weights '{cfg.pretrained}' could not be loaded ({one_line(e)}); go online "
            "(unset HF_HUB_OFFLINE), pass a local folder, or set model.pretrained to null to train from scratch"
        ) from e
