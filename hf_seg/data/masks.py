"""Turn a stored mask (class ids, 0/255, palette or RGB colours) into hf_seg's canonical uint8 class-id mask.

Also reads class tables (class_dict.csv, label_colors.txt) so a colour palette is typed once, and snaps colours of
lossy (JPEG) colour masks to the nearest palette colour within a tolerance, counting the pixels it snapped.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hf_seg.labels import ClassInfo
from hf_seg.data.errors import DataError

IGNORE_WORDS = ("ignore", "void")
VOID_NAMES = ("void", "ignore", "unlabelled", "unlabeled")  # class-table rows that mark unlabelled pixels


@dataclass(frozen=True)
class MaskMapping:
    """Stored mask value (an int, or an (r, g, b) colour) -> class id or ignore; None = values already are class ids.

    colour_tolerance: a colour not in `colours` takes the class of the nearest mapped colour when it is at most this
    far (Euclidean RGB distance), for JPEG-compressed colour masks; 0 = exact colours only.
    """

    values: dict[int, int] | None = None
    colours: dict[tuple[int, int, int], int] | None = None
    fix: str = "add them to source_options.mask_mapping (map void values to \"ignore\")"  # advice for unknown values
    colour_tolerance: float = 0.0

    @property
    def is_identity(self) -> bool:
        """True when stored values are taken as class ids (no mapping was given)."""
        return self.values is None and self.colours is None

    def stored_values(self, class_info: ClassInfo, seen: dict[int, int]) -> tuple[int, ...]:
        """Each class's stored value (its most frequent one in `seen`, stored value -> pixels), for writing
        predictions in the source's own encoding; () when the stored values are the class ids or a class has none."""
        if self.values is None:
            return ()
        best: dict[int, tuple[int, int]] = {}
        for stored, count in seen.items():
            cls = self.values.get(stored)
            if cls is not None and cls != class_info.ignore_index and count > best.get(cls, (-1, 0))[0]:
                best[cls] = (count, stored)
        out = tuple(best[c][1] for c in range(class_info.num_classes) if c in best)
        return out if len(out) == class_info.num_classes and out != tuple(range(len(out))) else ()

    def class_colours(self, class_info: ClassInfo) -> tuple[tuple[int, int, int], ...]:
        """The source's colour of each class (first one mapped to it); () when masks are not colours or a class has none."""
        if self.colours is None:
            return ()
        first: dict[int, tuple[int, int, int]] = {}
        for colour, cls in self.colours.items():
            if cls != class_info.ignore_index:
                first.setdefault(cls, colour)
        return tuple(first[c] for c in range(class_info.num_classes)) if len(first) == class_info.num_classes else ()


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


def binary_mapping(class_info: ClassInfo, threshold: int | None = None) -> MaskMapping:
    """Two classes from a single-channel mask: 0 -> class 0 and every other value -> class 1 (0/1, 0/255 masks), or,
    with a threshold, values below it -> class 0 and the rest -> class 1 (for lossy masks with values in between)."""
    if class_info.num_classes != 2:
        raise DataError(f"data.source_options.binary needs exactly 2 class_names, got {list(class_info.names)}; "
                        "list [background, foreground] or use mask_mapping for more classes")
    if threshold is None:
        values = {v: int(v > 0) for v in range(65536)}
    else:
        if not isinstance(threshold, int) or isinstance(threshold, bool) or not 1 <= threshold <= 65535:
            raise DataError(f"data.source_options.binary_threshold = {threshold!r} must be an integer 1..65535 "
                            "(values below it are class 0), e.g. 128 for 0/255 JPEG masks")
        values = {v: int(v >= threshold) for v in range(65536)}
    return MaskMapping(values=values, fix="binary masks are single-channel; convert RGB masks to grayscale")


def read_class_table(path: Path) -> tuple[list[str], list[tuple[int, int, int]], dict]:
    """class_dict.csv (name,r,g,b with a header) or label_colors.txt ("r g b name" lines) -> class names, their
    colours and a colour mask_mapping; rows named void/ignore/unlabelled map their colour to ignore, not to a class."""
    if not path.is_file():
        raise DataError(f"data.source_options.class_table '{path}' does not exist; give a class_dict.csv "
                        "(name,r,g,b) or label_colors.txt (r g b name) path, relative to data.root")
    rows: list[tuple[str, tuple[int, int, int]]] = []
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        reader = csv.reader(io.StringIO(text))
        header = [h.strip().lower() for h in next(reader, [])]
        if header[:4] not in (["name", "r", "g", "b"], ["class_name", "r", "g", "b"]):
            raise DataError(f"class table '{path}' starts with {header}; expected the header name,r,g,b")
        lines = [(i + 2, [c.strip() for c in row]) for i, row in enumerate(reader) if any(c.strip() for c in row)]
        parsed = [(n, row[0], row[1:4]) for n, row in lines]
    else:
        lines = [(i + 1, line.split()) for i, line in enumerate(text.splitlines()) if line.strip()]
        parsed = [(n, " ".join(parts[3:]), parts[:3]) for n, parts in lines]
    for line_no, name, rgb in parsed:
        if not name or len(rgb) != 3 or not all(c.isdigit() and int(c) < 256 for c in rgb):
            raise DataError(f"class table '{path}' line {line_no} is not a name with an r g b colour (0-255 each)")
        rows.append((name, tuple(int(c) for c in rgb)))
    names = [n for n, _ in rows if n.lower() not in VOID_NAMES]
    colours = [c for n, c in rows if n.lower() not in VOID_NAMES]
    mapping = {",".join(map(str, c)): ("ignore" if n.lower() in VOID_NAMES else n) for n, c in rows}
    if len(names) < 2:
        raise DataError(f"class table '{path}' lists {len(names)} class(es) besides void; a segmentation needs >= 2")
    return names, colours, mapping


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
    return mapped_mask(mask, mapping, class_info, where)[0]


@dataclass(frozen=True)
class MaskStats:
    """What one mask held: pixels per stored value (single-channel masks) and pixels snapped to a palette colour."""

    stored: dict[int, int]
    snapped: int = 0


def mapped_mask(mask: Image.Image, mapping: MaskMapping, class_info: ClassInfo,
                where: str) -> tuple[np.ndarray, MaskStats]:
    """canonical_mask, plus the mask's stored values and how many pixels had a colour snapped (tolerance only)."""
    if mapping.colours is not None:
        labels, snapped = _map_colours(mask, mapping, where)
        return labels, MaskStats(stored={}, snapped=snapped)
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
    labels = _lookup(arr, lut, lambda bad: f"mask '{where}' has values {bad[:10]} outside the classes; {fix}")
    return labels, MaskStats(stored=_histogram(arr))


def _histogram(arr: np.ndarray) -> dict[int, int]:
    if arr.dtype == np.uint8:
        counts = np.bincount(arr.ravel(), minlength=256)
        return {int(v): int(counts[v]) for v in np.flatnonzero(counts)}
    values, counts = np.unique(arr, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


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


def _map_colours(mask: Image.Image, mapping: MaskMapping, where: str) -> tuple[np.ndarray, int]:
    rgb = np.asarray(mask.convert("RGB")).astype(np.int32)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    lut = {(r << 16) | (g << 8) | b: cls for (r, g, b), cls in mapping.colours.items()}
    uniq, inverse, counts = np.unique(code, return_inverse=True, return_counts=True)
    unknown = np.array([int(v) not in lut for v in uniq])
    snapped = 0
    if unknown.any() and mapping.colour_tolerance > 0:
        known = np.array(sorted(lut))
        known_rgb = np.stack([known >> 16, (known >> 8) & 255, known & 255], 1)
        bad = uniq[unknown]
        bad_rgb = np.stack([bad >> 16, (bad >> 8) & 255, bad & 255], 1)
        dist = np.sqrt(((bad_rgb[:, None, :] - known_rgb[None]) ** 2).sum(-1))
        nearest, near = dist.argmin(1), dist.min(1) <= mapping.colour_tolerance
        for v, k in zip(bad[near], known[nearest[near]]):
            lut[int(v)] = lut[int(k)]
        snapped = int(counts[unknown][near].sum())
    message = (lambda bad: f"mask '{where}' has colours {[f'{v >> 16},{(v >> 8) & 255},{v & 255}' for v in bad[:5]]} "
               f"not in source_options.mask_mapping{_tolerance_note(mapping)}; add them (map void colours to "
               "\"ignore\") or raise source_options.colour_tolerance")
    table = _lookup(uniq, lut, message)
    return table[inverse.reshape(code.shape)], snapped


def _tolerance_note(mapping: MaskMapping) -> str:
    return f" (nor within colour_tolerance {mapping.colour_tolerance:g})" if mapping.colour_tolerance else ""


def encode_png(mask: np.ndarray) -> bytes:
    """Fast lossless PNG bytes of a uint8 mask (compression level 1: size barely matters, speed does)."""
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
