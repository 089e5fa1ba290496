"""One entry point for every architecture: build_model from a recipe, load_model from a folder or the Hub."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from safetensors import SafetensorError
from transformers import AutoConfig, AutoModelForSemanticSegmentation, PreTrainedConfig, PreTrainedModel, SegformerConfig
from transformers.models.auto.modeling_auto import MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES

from hf_seg.labels import ClassInfo
from hf_seg.errors import close_matches, one_line
from hf_seg.models.errors import ModelConfigError, WeightsNotFoundError
from hf_seg.models.segformer import SEGFORMER_VARIANTS, InputSizeSegformer, build_segformer
from hf_seg.models.smp_adapter import SMP_ARCHITECTURES, SmpForSemanticSegmentation, SmpSegmentationConfig, build_smp
from hf_seg.recipe import ModelConfig

ARCHITECTURES: dict[str, Callable[[ModelConfig, ClassInfo], PreTrainedModel]] = {
    "segformer": build_segformer,
    **{name: functools.partial(build_smp, name) for name in SMP_ARCHITECTURES},
}
"""Recipe name (model.arch, lower case) -> builder."""

# smp folders load through the Auto classes once hf_seg is imported. SegFormer folders are plain transformers
# checkpoints; the Auto classes keep returning transformers' own class for them (and for everyone else's SegFormers),
# and load_model gives hf_seg's input-size subclass.
AutoConfig.register(SmpSegmentationConfig.model_type, SmpSegmentationConfig, exist_ok=True)
AutoModelForSemanticSegmentation.register(SmpSegmentationConfig, SmpForSemanticSegmentation, exist_ok=True)
# pipeline("image-segmentation") checks the model's class name against this name table (not the registrations).
# The adapter's own model type is in no other transformers table, so the Auto mappings never try to import it.
MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES.setdefault(SmpSegmentationConfig.model_type,
                                                         SmpForSemanticSegmentation.__name__)


def build_model(cfg: ModelConfig, class_info: ClassInfo) -> PreTrainedModel:
    """The model a recipe describes, with id2label, ignore index, palette and stored mask values in its config."""
    arch = str(cfg.arch).lower()
    if arch not in ARCHITECTURES:
        raise ModelConfigError(f"model.arch = '{cfg.arch}' is unknown ({close_matches(arch, ARCHITECTURES)}); "
                               f"valid: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](cfg, class_info)


def load_model(path_or_hub_id: str | Path) -> PreTrainedModel:
    """A model saved with save_pretrained (either family), from a local folder or the Hub; a SegFormer comes back as
    InputSizeSegformer (logits at the input size, like every hf_seg model)."""
    try:
        config = AutoConfig.from_pretrained(str(path_or_hub_id))
        if isinstance(config, SegformerConfig):
            return InputSizeSegformer.from_pretrained(str(path_or_hub_id), config=config)
        return AutoModelForSemanticSegmentation.from_pretrained(str(path_or_hub_id), config=config)
    except OSError as e:
        raise WeightsNotFoundError(
            f"model '{path_or_hub_id}' could not be loaded ({one_line(e)}); pass a folder written by save_pretrained "
            "or a Hub model id (online)"
        ) from e
    except (SafetensorError, ValueError, KeyError, RuntimeError) as e:  # damaged weights or config
        raise WeightsNotFoundError(
            f"model '{path_or_hub_id}' is damaged: its weights or config cannot be read ({type(e).__name__}: "
            f"{one_line(e)[:200]}); restore the folder (or retrain), or pass another model"
        ) from e


def class_info_from_config(config: PreTrainedConfig) -> ClassInfo:
    """Class names, ignore index, palette and stored mask values in a model's config (either family, any age)."""
    names = tuple(config.id2label[i] for i in range(len(config.id2label)))
    palette = tuple(tuple(c) for c in (getattr(config, "palette", None) or ()))
    return ClassInfo(names=names, ignore_index=config.semantic_loss_ignore_index, palette=palette,
                     mask_values=tuple(getattr(config, "mask_values", None) or ()))


__all__ = [
    "ARCHITECTURES", "SEGFORMER_VARIANTS", "InputSizeSegformer", "ModelConfigError", "SmpForSemanticSegmentation",
    "SmpSegmentationConfig", "WeightsNotFoundError", "build_model", "class_info_from_config", "load_model",
]
