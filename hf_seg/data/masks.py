"""Turn a stored mask (class ids, 0/255, palette or RGB colours) into hf_seg's canonical uint8 class-id mask."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from hf_seg.labels import ClassInfo
from hf_seg.data.errors import DataError

IGNORE_WORDS = ("ignore", "void")


@dataclass(frozen=True)
class MaskMapping:
    """Stored mask value (an int, or an (r, g, b) colour) -> class id or ignore; None = values already are class ids."""

    values: dict[int, int] | None = None
    colours: dict[tuple[int, int, int], int] | None = None
    fix: str = "add them to source_options.mask_mapping (map void values to \"ignore\")"  # advice for unknown values


def parse_mask_mapping(raw: dict | None, class_info: ClassInfo,
                       key: str = "source_options.mask_mapping") -> MaskMapping:
    """Read a JSON mapping {"255": "road", "0": 0, "128,64,128": "car", "#000000": "ignore"} into a MaskMapping."""
    if not raw:
        return MaskMapping()
    values: dict[int, int] = {}
    colours: dict[tuple[int, int, int], int] = {}
    for stored, target in raw.items():
        cls = _class_id(target, class_info, f"{key}[{stored!r}]")
        colour = _parse_colour(str(stored))
        if colour is not None:
            colours[colour] = cls
        elif str(stored).strip().isdigit():
            values[int(stored)] = cls
        else:
            raise DataError(f"{key}: key {stored!r} is neither a mask value (\"255\") nor a colour "
                            "(\"R,G,B\" or \"#rrggbb\")")
    if values and colours:
        raise DataError(f"{key} mixes plain values and colours; masks are either single-channel or RGB, map one kind")
    return MaskMapping(values=values or None, colours=colours or None)


def reduce_labels_mapping(class_info: ClassInfo) -> MaskMapping:
    """The HF 'reduce_labels' convention: stored 0 = background -> ignore, stored k -> class k-1."""
    values = {0: class_info.ignore_index, 255: class_info.ignore_index}
    values.update({k: k - 1 for k in range(1, class_info.num_classes + 1)})
    return MaskMapping(values=values)


def _class_id(target, class_info: ClassInfo, key: str) -> int:
    if isinstance(target, str) and target.lower() in IGNORE_WORDS:
        return class_info.ignore_index
    if isinstance(target, str) and target in class_info.label2id:
        return class_info.label2id[target]
    if isinstance(target, int) and not isinstance(target, bool) and (
            0 <= target < class_info.num_classes or target == class_info.ignore_index):
        return target
    raise DataError(f"{key} = {target!r} is not a class; use a class id 0..{class_info.num_classes - 1}, "
                    f"a name from {list(class_info.names)} or \"ignore\"")


def _parse_colour(text: str) -> tuple[int, int, int] | None:
    text = text.strip()
    if text.startswith("#") and len(text) == 7:
        try:
            return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))
        except ValueError:
            return None
    parts = text.split(",")
    if len(parts) == 3 and all(p.strip().isdigit() and int(p) < 256 for p in parts):
        return tuple(int(p) for p in parts)
    return None


def canonical_mask(mask: Image.Image, mapping: MaskMapping, class_info: ClassInfo, where: str) -> np.ndarray:
    """Map a decoded mask to uint8 class ids (ignore = class_info.ignore_index); any unmapped value is an error."""
    if mapping.colours is not None:
        return _map_colours(mask, mapping.colours, class_info, where)
    if mask.mode in ("RGB", "RGBA"):
        raise DataError(f"mask '{where}' is an RGB image; give source_options.mask_mapping "
                        "{\"R,G,B\": class} for its colours")
    arr = np.asarray(mask)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"mask '{where}' has shape {arr.shape}; masks must be single-channel class ids or RGB colours")
    if mapping.values is None:
        valid = list(range(class_info.num_classes)) + [class_info.ignore_index]
        lut = {v: v for v in valid}
        fix = f"values must be class ids 0..{class_info.num_classes - 1} or {class_info.ignore_index} (ignore); " \
              "map other values with source_options.mask_mapping"
    else:
        lut = mapping.values
        fix = mapping.fix
    return _lookup(arr, lut, lambda bad: f"mask '{where}' has values {bad[:10]} outside the classes; {fix}")


def _lookup(codes: np.ndarray, lut: dict[int, int], message) -> np.ndarray:
    """Replace every code by lut[code]; codes missing from lut raise DataError(message(missing codes))."""
    if codes.dtype == np.uint8:  # the common case: a 256-entry table, no sort
        present = np.flatnonzero(np.bincount(codes.ravel(), minlength=256))
        bad = [int(v) for v in present if int(v) not in lut]
        if bad:
            raise DataError(message(bad))
        table = np.zeros(256, dtype=np.uint8)
        for v in present:
            table[v] = lut[int(v)]
        return np.take(table, codes)
    uniq, inverse = np.unique(codes, return_inverse=True)
    bad = [int(v) for v in uniq if int(v) not in lut]
    if bad:
        raise DataError(message(bad))
    table = np.array([lut[int(v)] for v in uniq], dtype=np.uint8)
    return table[inverse.reshape(codes.shape)]


def _map_colours(mask: Image.Image, colours: dict, class_info: ClassInfo, where: str) -> np.ndarray:
    rgb = np.asarray(mask.convert("RGB")).astype(np.int32)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    lut = {(r << 16) | (g << 8) | b: cls for (r, g, b), cls in colours.items()}
    return _lookup(code, lut, lambda bad: f"mask '{where}' has colours "
                   f"{[f'{v >> 16},{(v >> 8) & 255},{v & 255}' for v in bad[:5]]} not in source_options.mask_mapping; "
                   "add them (map void colours to \"ignore\")")


def encode_png(mask: np.ndarray) -> bytes:
    """Fast lossless PNG bytes of a uint8 mask (compression level 1: size barely matters, speed does)."""
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
