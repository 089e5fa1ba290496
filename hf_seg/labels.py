"""Class names, ignore index and colour palette: the metadata that travels with every dataset and model."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

IGNORE_INDEX = 255
"""The one ignore value used in every stored mask, loss and metric in hf_seg."""


def default_palette(num_classes: int) -> tuple[tuple[int, int, int], ...]:
    """Evenly spaced, saturated hues so neighbouring class ids stay distinguishable."""
    colours = []
    for i in range(num_classes):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.75, 0.95 - 0.25 * (i % 2))
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return tuple(colours)


@dataclass(frozen=True)
class ClassInfo:
    """Names of the classes (index = class id), the ignore value and an RGB palette."""

    names: tuple[str, ...]
    ignore_index: int = IGNORE_INDEX
    palette: tuple[tuple[int, int, int], ...] = field(default=())

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
        return {"names": list(self.names), "ignore_index": self.ignore_index, "palette": [list(c) for c in self.palette]}

    @classmethod
    def from_dict(cls, d: dict) -> "ClassInfo":
        return cls(names=tuple(d["names"]), ignore_index=int(d.get("ignore_index", IGNORE_INDEX)),
                   palette=tuple(tuple(c) for c in d.get("palette", ())))


CAMVID = ClassInfo(
    names=("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist"),
    palette=((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
             (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)),
)
"""CamVid's 11 classes in the SegNet packaging; its void value 11 is remapped to IGNORE_INDEX on load."""
