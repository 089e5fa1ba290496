"""Class names, ignore index, palette and stored mask values: the metadata travelling with every dataset and model."""

from __future__ import annotations

import colorsys
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, field

IGNORE_INDEX = 255
"""The one ignore value used in every stored mask, loss and metric in hf_seg."""

MAX_MASK_VALUE = 65535
"""The largest stored mask value: single-channel masks are 8- or 16-bit."""


def default_palette(num_classes: int) -> tuple[tuple[int, int, int], ...]:
    """Evenly spaced, saturated hues so neighbouring class ids stay distinguishable."""
    colours = []
    for i in range(num_classes):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.75, 0.95 - 0.25 * (i % 2))
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return tuple(colours)


@dataclass(frozen=True)
class ClassInfo:
    """Names of the classes (index = class id), the ignore value, an RGB palette and the source's stored mask values.

    mask_values: the value each class has in the source's own single-channel masks (e.g. (0, 255) for 0/255 masks);
    empty when the stored values are the class ids or the masks are colours (then the palette holds the colours).
    """

    names: tuple[str, ...]
    ignore_index: int = IGNORE_INDEX
    palette: tuple[tuple[int, int, int], ...] = field(default=())
    mask_values: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        object.__setattr__(self, "names", names)
        if len(names) < 2:
            raise ValueError(f"class names: need at least 2 classes, got {list(names)}; list every class in 'class_names'")
        if len(set(names)) != len(names):
            raise ValueError(f"class names: duplicates in {list(names)}; give each class a unique name")
        if 0 <= self.ignore_index < len(names):
            raise ValueError(
                f"ignore_index={self.ignore_index} collides with class id of '{names[self.ignore_index]}'; "
                f"use a value >= {len(names)} (hf_seg uses {IGNORE_INDEX})"
            )
        palette = tuple(tuple(int(c) for c in rgb) for rgb in self.palette) or default_palette(len(names))
        if len(palette) != len(names):
            raise ValueError(f"palette has {len(palette)} colours for {len(names)} classes; give one RGB triple per class")
        object.__setattr__(self, "palette", palette)
        object.__setattr__(self, "mask_values", check_mask_values(self.mask_values, len(names)))

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    def to_dict(self) -> dict:
        return {"names": list(self.names), "ignore_index": self.ignore_index,
                "palette": [list(c) for c in self.palette], "mask_values": list(self.mask_values)}

    @classmethod
    def from_dict(cls, d: dict) -> "ClassInfo":
        return cls(names=tuple(d["names"]), ignore_index=int(d.get("ignore_index", IGNORE_INDEX)),
                   palette=tuple(tuple(c) for c in d.get("palette", ())),
                   mask_values=tuple(d.get("mask_values") or ()))


def check_mask_values(values: Iterable[int], num_classes: int) -> tuple[int, ...]:
    """Empty, or one distinct 8/16-bit value per class, so every class id maps back to exactly one stored value."""
    values = tuple(int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else v for v in values or ())
    if not values:
        return ()
    if len(values) != num_classes:
        raise ValueError(f"mask_values has {len(values)} values for {num_classes} classes; give one stored value per "
                         "class, or none when the masks store class ids")
    bad = [v for v in values if type(v) is not int or not 0 <= v <= MAX_MASK_VALUE]
    if bad:
        raise ValueError(f"mask_values {list(values)}: {bad[0]!r} is not an integer in 0..{MAX_MASK_VALUE}; give each "
                         "class the value its masks store")
    if len(set(values)) != len(values):
        raise ValueError(f"mask_values {list(values)} has duplicates; give each class a distinct stored value")
    return values


CAMVID = ClassInfo(
    names=("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist"),
    palette=((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
             (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)),
)
"""CamVid's 11 classes in the SegNet packaging; its void value 11 is remapped to IGNORE_INDEX on load."""
