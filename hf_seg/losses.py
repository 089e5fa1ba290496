"""Losses for class imbalance: cross-entropy, softmax focal, soft Dice and weighted sums of them, chosen by name.

torch's cross_entropy already does class weights, ignore index and label smoothing. smp's FocalLoss is a per-class
sigmoid focal loss (gamma 0 is not CE) and its DiceLoss averages over all classes, absent ones counting as 0, so focal
and Dice are written here: softmax focal (gamma 0 == weighted CE) and Dice averaged over the classes present.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from hf_seg.labels import ClassInfo
from hf_seg.recipe import LossConfig, RecipeError


class LossConfigError(RecipeError):
    """A loss recipe value or the class weights cannot make a loss; the message says the fix."""


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int,
                  class_weights: Optional[torch.Tensor] = None, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean pixel cross-entropy over non-ignored pixels; with class weights, normalised by their sum (torch's rule)."""
    return F.cross_entropy(logits.float(), labels, weight=class_weights, ignore_index=ignore_index,
                           label_smoothing=label_smoothing)


def focal(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int,
          class_weights: Optional[torch.Tensor] = None, gamma: float = 2.0) -> torch.Tensor:
    """Softmax focal loss -w_y (1 - p_y)^gamma log p_y, normalised like weighted CE so gamma=0 gives exactly CE."""
    valid = labels != ignore_index
    target = torch.where(valid, labels, 0).unsqueeze(1)
    log_pt = F.log_softmax(logits.float(), dim=1).gather(1, target).squeeze(1)
    weight = valid.float() if class_weights is None else class_weights.float()[target.squeeze(1)] * valid
    loss = -((1.0 - log_pt.exp()) ** gamma) * log_pt * weight
    return loss.sum() / weight.sum()


def soft_dice(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int, smooth: float = 1.0) -> torch.Tensor:
    """1 - (2|P∩Y| + s) / (|P| + |Y| + s) per class over the batch, averaged over the classes present in the labels."""
    num_classes = logits.shape[1]
    valid = (labels != ignore_index).unsqueeze(1)
    probs = F.softmax(logits.float(), dim=1) * valid
    one_hot = F.one_hot(torch.where(valid.squeeze(1), labels, 0), num_classes).permute(0, 3, 1, 2) * valid
    dims = (0, 2, 3)
    intersection = (probs * one_hot).sum(dims)
    cardinality = probs.sum(dims) + one_hot.sum(dims)
    dice = (2.0 * intersection + smooth) / (cardinality + smooth).clamp_min(1e-7)
    present = one_hot.sum(dims) > 0
    return (1.0 - dice)[present].mean()


LOSSES: dict[str, Callable[..., torch.Tensor]] = {"ce": cross_entropy, "focal": focal, "dice": soft_dice}
"""Single loss name -> function(logits, labels, ignore_index, ...); names joined by '_' (e.g. 'ce_dice') are summed."""


class SegmentationLoss(nn.Module):
    """A weighted sum of named losses on (B, C, H, W) logits and (B, H, W) int64 labels, with input checks."""

    def __init__(self, terms: dict[str, Callable[..., torch.Tensor]], weights: dict[str, float], class_info: ClassInfo,
                 class_weights: Optional[torch.Tensor] = None):
        super().__init__()
        self.terms = terms
        self.weights = weights
        self.num_classes = class_info.num_classes
        self.ignore_index = class_info.ignore_index
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The weighted sum; 0 (with a zero gradient) when every pixel is ignored."""
        if logits.ndim != 4 or logits.shape[1] != self.num_classes or labels.shape != (logits.shape[0], *logits.shape[2:]):
            raise ValueError(f"loss got logits {tuple(logits.shape)} and labels {tuple(labels.shape)}; expected "
                             f"(B, {self.num_classes}, H, W) and (B, H, W) at the same H, W (upsample logits first)")
        valid = labels != self.ignore_index
        if not valid.any():
            return logits.sum() * 0.0
        bad = labels[valid & ((labels < 0) | (labels >= self.num_classes))]
        if bad.numel():
            raise ValueError(f"labels contain value {int(bad[0])}, not a class id 0..{self.num_classes - 1} "
                             f"nor the ignore value {self.ignore_index}; fix the mask mapping of the dataset")
        total = logits.new_zeros((), dtype=torch.float32)
        for name, term in self.terms.items():
            kwargs = {"class_weights": self.class_weights} if name in ("ce", "focal") else {}
            total = total + self.weights[name] * term(logits, labels, self.ignore_index, **kwargs)
        return total


def _check_class_weights(class_weights: Optional[torch.Tensor], class_info: ClassInfo) -> Optional[torch.Tensor]:
    if class_weights is None:
        return None
    weights = torch.as_tensor(class_weights, dtype=torch.float32).flatten()
    if weights.numel() != class_info.num_classes:
        raise LossConfigError(f"class_weights has {weights.numel()} values for {class_info.num_classes} classes "
                              f"({', '.join(class_info.names)}); give one weight per class")
    if not torch.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise LossConfigError(f"class_weights {weights.tolist()} must be finite, >= 0 and not all 0")
    return weights


def build_loss(cfg: LossConfig, class_info: ClassInfo, class_weights: Optional[torch.Tensor] = None) -> SegmentationLoss:
    """The loss a recipe names ('ce', 'focal', 'dice', 'ce_dice', ...); class weights apply to ce and focal."""
    names = str(cfg.name).lower().split("_")
    unknown = [n for n in names if n not in LOSSES]
    if unknown or len(set(names)) != len(names):
        raise LossConfigError(f"loss.name = '{cfg.name}' is not a loss; use one of {', '.join(LOSSES)} "
                              "or several joined by '_', e.g. \"ce_dice\"")
    weights = {n: 1.0 for n in names} if not cfg.weights else {k: float(v) for k, v in cfg.weights.items()}
    if set(weights) != set(names) or any(w < 0 for w in weights.values()):
        raise LossConfigError(f"loss.weights = {cfg.weights} must give a weight >= 0 to each of {', '.join(names)} "
                              "and nothing else, or be {} for weight 1 each")
    if not 0.0 <= cfg.label_smoothing < 1.0 or cfg.gamma < 0 or cfg.dice_smooth < 0:
        raise LossConfigError(f"loss.label_smoothing = {cfg.label_smoothing}, loss.gamma = {cfg.gamma}, "
                              f"loss.dice_smooth = {cfg.dice_smooth}: use 0 <= label_smoothing < 1, gamma >= 0, "
                              "dice_smooth >= 0")
    options = {"ce": {"label_smoothing": cfg.label_smoothing}, "focal": {"gamma": cfg.gamma},
               "dice": {"smooth": cfg.dice_smooth}}
    terms = {n: functools.partial(LOSSES[n], **options[n]) for n in names}
    return SegmentationLoss(terms, weights, class_info, _check_class_weights(class_weights, class_info))
