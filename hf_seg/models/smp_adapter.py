"""segmentation_models_pytorch architectures wrapped as a transformers PreTrainedModel (save/load/push like any HF model)."""

from __future__ import annotations

import functools
import inspect
import json
from pathlib import Path
from typing import Any, Optional

import segmentation_models_pytorch as smp
import timm
import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SemanticSegmenterOutput

from hf_seg.labels import ClassInfo
from hf_seg.errors import close_matches, one_line
from hf_seg.models.errors import ModelConfigError, WeightsNotFoundError
from hf_seg.models.finetune import Checkpoint, head_message, load_into, resolve_checkpoint
from hf_seg.recipe import ModelConfig

SMP_ARCHITECTURES: dict[str, type] = {
    ("segformer-decoder" if name == "segformer" else name): cls for name, cls in smp.MODEL_ARCHITECTURES_MAPPING.items()
}
"""hf_seg name -> smp class; smp's Segformer is renamed because 'segformer' means the transformers SegFormer."""

_SET_ELSEWHERE = {
    "encoder_name": "model.encoder", "encoder_depth": "model.encoder_depth", "encoder_weights": "model.pretrained",
    "classes": "the dataset's class names",
}
_MIN_GRID = {"pan": 8}  # PAN's pyramid attention halves its deepest feature map 3 more times
_UNSUPPORTED = {
    "activation": "the adapter returns raw logits; losses and metrics apply softmax themselves",
    "aux_params": "the adapter has no classification head; remove it",
}


@strict
class SmpSegmentationConfig(PreTrainedConfig):
    """Everything needed to rebuild an smp model: architecture, encoder, depth, extra options and class metadata."""

    model_type = "hf_seg_smp"
    arch: str = "unet"
    encoder_name: str = "resnet34"
    encoder_depth: int = 5
    encoder_pretrained: Optional[str] = None  # the encoder weights it started from (a record; reloads never download)
    arch_options: Optional[dict] = None  # keyword arguments for the smp class, e.g. {"decoder_channels": [64, 32, 16]}
    semantic_loss_ignore_index: int = 255  # same attribute name as transformers' SegFormer
    palette: Optional[list] = None  # one RGB triple per class, for drawing predictions
    mask_values: Optional[list] = None  # each class's value in the source's own masks; empty/None: class ids


def create_smp_model(config: SmpSegmentationConfig, encoder_weights: Any = None) -> torch.nn.Module:
    """The bare smp model a config describes; weights are only downloaded when encoder_weights is given."""
    return SMP_ARCHITECTURES[config.arch](
        encoder_name=config.encoder_name, encoder_depth=config.encoder_depth, encoder_weights=encoder_weights,
        classes=config.num_labels, **(config.arch_options or {}),
    )


class SmpForSemanticSegmentation(PreTrainedModel):
    """An smp model behind the transformers interface: pixel_values in, SemanticSegmenterOutput with input-size logits out.

    Its saved folder is also an smp checkpoint: weights under smp's own names (transformers adds the smp_model.
    prefix back when loading) and smp's constructor keys in config.json, for segmentation_models_pytorch.from_pretrained.
    """

    config_class = SmpSegmentationConfig
    base_model_prefix = "smp_model"
    main_input_name = "pixel_values"
    input_modalities = ("image",)

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """transformers' save_pretrained with smp's weight names, then smp's keys added to config.json."""
        kwargs.setdefault("state_dict", self.smp_model.state_dict())
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            path = Path(save_directory) / "config.json"
            path.write_text(json.dumps({**json.loads(path.read_text()), **smp_config(self.config)}, indent=2) + "\n")

    def __init__(self, config: SmpSegmentationConfig):
        super().__init__(config)
        self.smp_model = create_smp_model(config)
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        """Keep smp's own initialisation; transformers' generic one would overwrite it."""

    def forward(self, pixel_values: torch.Tensor, labels: Optional[torch.Tensor] = None) -> SemanticSegmenterOutput:
        """Pad to the encoder's stride, predict, crop back; with labels also return cross-entropy (ignore index honoured)."""
        height, width = pixel_values.shape[-2:]
        divisor = input_divisor(self.smp_model)
        pad_h, pad_w = (-height) % divisor, (-width) % divisor
        x = F.pad(pixel_values, (0, pad_w, 0, pad_h)) if pad_h or pad_w else pixel_values
        minimum = _MIN_GRID.get(self.config.arch, 1) * divisor
        if min(x.shape[-2:]) < minimum:
            raise ValueError(f"arch '{self.config.arch}' needs inputs of at least {minimum}x{minimum} pixels, got "
                             f"{height}x{width}; use a larger data.image_size or another architecture")
        logits = self.smp_model(x)
        if logits.shape[-2:] != x.shape[-2:]:  # options such as a smaller 'upsampling' predict at a lower resolution
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        logits = logits[..., :height, :width]
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits, labels, ignore_index=self.config.semantic_loss_ignore_index)
        return SemanticSegmenterOutput(loss=loss, logits=logits)


def smp_config(config: SmpSegmentationConfig) -> dict:
    """The keys segmentation_models_pytorch.from_pretrained rebuilds the model from; {} for timm ('tu-') encoders,
    which would hand the other config keys to timm (so those folders load through transformers only)."""
    if config.encoder_name.startswith("tu-"):
        return {}
    return {"_model_class": SMP_ARCHITECTURES[config.arch].__name__, "encoder_name": config.encoder_name,
            "encoder_depth": config.encoder_depth, "encoder_weights": None, "in_channels": 3,
            "classes": config.num_labels, **(config.arch_options or {})}


def input_divisor(smp_model: torch.nn.Module) -> int:
    """What height and width must be a multiple of for this smp model (1 when any size works)."""
    if not smp_model.requires_divisible_input_shape:
        return 1
    stride = smp_model.encoder.output_stride
    return 2 * stride if isinstance(smp_model, smp.DPT) else stride  # DPT's decoder adds a level at twice the ViT stride


@functools.cache
def encoder_names() -> tuple[str, ...]:
    """Every encoder name smp accepts: its own encoders and 'tu-' + any timm model."""
    return tuple(smp.encoders.get_encoder_names()) + tuple(f"tu-{m}" for m in timm.list_models())


def check_encoder(name: Optional[str]) -> str:
    """The encoder name if smp can build it, else a one-line error with close matches."""
    if not name:
        raise ModelConfigError("model.encoder is null; smp architectures need an encoder, e.g. \"resnet34\"")
    if name.startswith("tu-") and timm.is_model(timm.models.split_model_name_tag(name[3:])[0]):
        return name
    if name in smp.encoders.encoders:
        return name
    raise ModelConfigError(
        f"model.encoder = '{name}' is not an smp or timm encoder ({close_matches(name, encoder_names())}); "
        "use an smp name such as \"resnet34\" or \"tu-\" + a timm model name such as \"tu-convnext_tiny\""
    )


def check_options(arch: str, encoder: str, options: dict) -> dict:
    """Reject options the recipe sets elsewhere, that break the adapter, or that the architecture doesn't take."""
    params = inspect.signature(SMP_ARCHITECTURES[arch].__init__).parameters
    accepted = [p for p in params if p not in ("self", "kwargs", *_SET_ELSEWHERE, *_UNSUPPORTED)]
    for key in options:
        if key in _SET_ELSEWHERE:
            raise ModelConfigError(f"model.options.{key} is set by {_SET_ELSEWHERE[key]}; remove it from model.options")
        if key in _UNSUPPORTED:
            raise ModelConfigError(f"model.options.{key} is not supported: {_UNSUPPORTED[key]}")
        if key not in accepted and not encoder.startswith("tu-"):  # smp hands unknown keys to timm encoders only
            raise ModelConfigError(
                f"model.options.{key} is not an option of arch '{arch}' ({close_matches(key, accepted)}); "
                f"valid options: {', '.join(accepted)}"
            )
    return dict(options)


def default_options(arch: str, depth: int, options: dict) -> dict:
    """Fill in defaults smp ties to depth 5 or to one input size, so any depth and size give input-size logits."""
    params = inspect.signature(SMP_ARCHITECTURES[arch].__init__).parameters
    adjusted = dict(options)
    default_channels = params["decoder_channels"].default if "decoder_channels" in params else None
    if isinstance(default_channels, (tuple, list)) and "decoder_channels" not in options:
        adjusted["decoder_channels"] = list(default_channels[-depth:])  # one decoder block per encoder stage
    if arch == "fpn" and "upsampling" not in options:
        adjusted["upsampling"] = 2 ** max(depth - 3, 0)  # FPN's finest pyramid level sits at stride 2**(depth-3)
    if arch == "pspnet" and "upsampling" not in options:
        adjusted["upsampling"] = 2**depth  # PSPNet predicts at the encoder's final stride
    if arch == "dpt" and "dynamic_img_size" not in options:
        adjusted["dynamic_img_size"] = True  # timm ViTs otherwise accept only their pretraining image size
    return adjusted


def encoder_weights_argument(encoder: str, pretrained: Optional[str]) -> Any:
    """Translate model.pretrained into smp's encoder_weights, rejecting names the encoder doesn't offer."""
    if pretrained is None:
        return None
    if encoder.startswith("tu-"):
        if pretrained not in ("imagenet", "timm"):
            raise ModelConfigError(
                f"model.pretrained = '{pretrained}' for timm encoder '{encoder}': use \"timm\" (timm's default weights; "
                "pick a tag in the name, e.g. \"tu-convnext_tiny.fb_in22k\") or null to train from scratch"
            )
        return True
    available = list(smp.encoders.encoders[encoder]["pretrained_settings"])
    if pretrained not in available:
        raise ModelConfigError(
            f"model.pretrained = '{pretrained}' is not available for encoder '{encoder}'; "
            f"choose one of {', '.join(available) or '(none)'} or null to train from scratch"
        )
    return pretrained


def load_pretrained_encoder(model: SmpForSemanticSegmentation, weights: Any) -> None:
    """Download the encoder weights into the model; offline or missing weights raise, never a silent random init."""
    config = model.config
    try:
        donor = create_smp_model(config, encoder_weights=weights)
    except OSError as e:
        raise WeightsNotFoundError(
            f"pretrained weights '{config.encoder_pretrained}' for encoder '{config.encoder_name}' could not be loaded "
            f"({one_line(e)}); go online (unset HF_HUB_OFFLINE) or set model.pretrained to null to train from scratch"
        ) from e
    model.smp_model.encoder.load_state_dict(donor.encoder.state_dict())


def build_smp(arch: str, cfg: ModelConfig, class_info: ClassInfo) -> SmpForSemanticSegmentation:
    """Build the smp architecture `arch` from a model recipe, with class metadata in its config."""
    encoder = check_encoder(cfg.encoder)
    options = check_options(arch, encoder, cfg.options)
    checkpoint = resolve_checkpoint(cfg.pretrained)
    if checkpoint is not None:
        check_same_model(checkpoint, arch, encoder)
    weights = None if checkpoint else encoder_weights_argument(encoder, cfg.pretrained)
    depth = cfg.encoder_depth
    if depth is None:
        depth = inspect.signature(SMP_ARCHITECTURES[arch].__init__).parameters["encoder_depth"].default
    config = SmpSegmentationConfig(
        arch=arch, encoder_name=encoder, encoder_depth=depth,
        encoder_pretrained=checkpoint.hub_id if checkpoint else cfg.pretrained,
        arch_options=default_options(arch, depth, options), num_labels=class_info.num_classes,
        id2label=class_info.id2label, label2id=class_info.label2id,
        semantic_loss_ignore_index=class_info.ignore_index, palette=[list(c) for c in class_info.palette],
        mask_values=list(class_info.mask_values),
    )
    try:
        model = SmpForSemanticSegmentation(config)
    except (ValueError, KeyError, TypeError, AssertionError) as e:
        raise ModelConfigError(
            f"smp cannot build arch '{arch}' with encoder '{encoder}', encoder_depth {depth}, options {options}: "
            f"{one_line(e)}; change model.encoder, model.encoder_depth or model.options"
        ) from e
    if checkpoint is not None:
        message = head_message(checkpoint.config, checkpoint.name, class_info)
        if message:
            print(message)
        load_into(model, checkpoint, head_prefix="segmentation_head.", prefix="smp_model.")
    elif weights is not None:
        load_pretrained_encoder(model, weights)
    return model


def check_same_model(checkpoint: Checkpoint, arch: str, encoder: str) -> None:
    """A checkpoint to fine-tune must be the recipe's architecture and encoder (an hf_seg or a plain smp folder)."""
    config = checkpoint.config
    names = {cls.__name__: name for name, cls in SMP_ARCHITECTURES.items()}
    theirs = config.get("arch") if config.get("model_type") == SmpSegmentationConfig.model_type else \
        names.get(config.get("_model_class"))
    if theirs is None:
        raise ModelConfigError(f"model.pretrained = '{checkpoint.name}' is a '{config.get('model_type')}' "
                               f"checkpoint, not an smp or hf_seg smp model; fine-tune it with its own arch")
    if (theirs, config.get("encoder_name")) != (arch, encoder):
        raise ModelConfigError(f"model.pretrained = '{checkpoint.name}' is arch '{theirs}' with encoder "
                               f"'{config.get('encoder_name')}', but the recipe builds '{arch}' with '{encoder}'; set "
                               "model.arch and model.encoder to the checkpoint's")
