"""What every data source yields (samples + class metadata), the options all sources share, and one validated row.

Shared options (data.source_options of the folder, hub and dataset sources):
- class_names: class names in class-id order; or class_table: a class_dict.csv (name,r,g,b) or label_colors.txt
  (r g b name) file, which gives the names, the palette and the colour mask_mapping at once.
- palette: one [r, g, b] per class, for overlays (default: the mask colours, else evenly spaced hues).
- mask_mapping: stored mask value -> class, e.g. {"0": "background", "255": "road"} or {"128,64,128": "road",
  "#000000": "ignore"}; a class is an id, a name or "ignore". Without any mapping, stored values must be class ids
  or 255 (ignore), and 0/255 masks with two classes are refused (255 would silently become ignore).
- binary: true for two-class single-channel masks: 0 -> class 0, any other value -> class 1 (0/1 and 0/255 masks);
  binary_threshold: values below it -> class 0 (lossy masks with values in between).
- reduce_labels: true for the HF convention "0 = unlabelled, k = class k-1".
- colour_tolerance: snap colours of colour masks (JPEG) to the nearest mapped colour within this RGB distance.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import datasets
import numpy as np
from PIL import Image

from hf_seg.labels import ClassInfo
from hf_seg.data.errors import DataError
from hf_seg.data.masks import (MaskMapping, MaskStats, binary_mapping, encode_png, mapped_mask, parse_mask_mapping,
                               read_class_table, reduce_labels_mapping)

ROW_FEATURES = datasets.Features({
    "image": datasets.Image(decode=False),  # {"path", "bytes"}: decoded per batch by data.images, errors naming the file
    "mask": datasets.Image(),  # uint8 class ids; class_info.ignore_index marks unlabelled pixels
    "id": datasets.Value("string"),
    "sequence": datasets.Value("string"),  # the recording the image comes from (= group when there is no time)
    "time": datasets.Value("float64"),  # seconds within the sequence; None when the source has no frame times
    "pixels": datasets.Sequence(datasets.Value("int64")),  # pixels per class id, then ignore pixels last
})
"""A validated row as the on-disk cache stores it, before any split."""

FEATURES = datasets.Features({**ROW_FEATURES, "group": datasets.Value("string")})
"""A row of a split: the cached row plus its group (the unit a split keeps together: a sequence or a time block)."""

OWN_GROUPS = "none given: every image is its own group"
"""Source.grouping when a source has no groups, as the audit and split.json say it."""

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""Image file endings hf_seg reads, in data sources and in predict."""


@dataclass(frozen=True)
class Sample:
    """One image/mask pair before decoding: where its bytes are and where it sits in time and in the official split."""

    id: str
    image: dict | None  # {"path": str | None, "bytes": bytes | None}, as datasets.Image stores an image; None: lazy
    mask: dict | None
    sequence: str
    time: float | None = None
    official: str | None = None  # "train", "validation" or "test" in the source's own split; None if it has none
    row: tuple[str, int] | None = None  # (split, index) of a lazy sample in a datasets-backed source


@dataclass(frozen=True)
class Source:
    """A loaded (not yet decoded) source: its samples, its classes and how its stored masks map to class ids."""

    samples: list[Sample]
    class_info: ClassInfo
    mapping: MaskMapping
    grouping: str = OWN_GROUPS  # where the groups come from (a regex, a table, a column), for the audit
    fingerprint: str = ""  # identifies the source's content for the row cache ("" = never cache)
    read: Callable[[Sample], tuple[dict, dict]] | None = None  # (image, mask) refs of a lazy sample; None: in Sample

    def refs(self, sample: Sample) -> tuple[dict, dict]:
        """The image and mask refs of one sample ({"path", "bytes"}), fetched now for lazy (dataset-backed) sources."""
        return self.read(sample) if self.read is not None else (sample.image, sample.mask)


def check_options(options: dict, allowed: Sequence[str], source: str) -> None:
    """Reject source_options keys the source does not know, listing the ones it does."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DataError(f"data.source_options.{unknown[0]} is not an option of source '{source}'; "
                        f"valid keys: {', '.join(allowed) or 'none'}")


CLASS_OPTIONS = ("class_names", "class_table", "palette", "mask_mapping", "binary", "binary_threshold",
                 "reduce_labels", "colour_tolerance")
"""source_options keys every non-CamVid source reads through classes_from_options."""
CLASS_TABLE_FILES = ("class_dict.csv", "label_colors.txt")


def classes_from_options(options: dict, source: str, root: Path | None = None,
                         names: Sequence[str] | None = None) -> tuple[ClassInfo, MaskMapping]:
    """ClassInfo and MaskMapping from the shared options; `names`: class names the data itself declares (a ClassLabel
    feature, an id2label file), used when the recipe gives neither class_names nor class_table."""
    table_names, table_colours, table_mapping = None, None, None
    if options.get("class_table") is not None:
        if options.get("class_names") is not None:
            raise DataError("data.source_options: give either class_names or class_table, not both")
        table = Path(str(options["class_table"])).expanduser()
        table_names, table_colours, table_mapping = read_class_table(table if root is None or table.is_absolute()
                                                                     else root / table)
    class_names = options.get("class_names", table_names or names)
    if not isinstance(class_names, (list, tuple)) or not class_names:
        found = [f for f in CLASS_TABLE_FILES if root is not None and (root / f).is_file()]
        hint = f"; data.root has {found[0]}: set \"class_table\": \"{found[0]}\"" if found else ""
        raise DataError(f"data.source_options.class_names is required for source '{source}'; list the class names "
                        f"in class-id order, e.g. [\"background\", \"road\"], or give class_table{hint}")
    try:
        plain = ClassInfo(names=tuple(class_names))
    except ValueError as e:
        raise DataError(f"data.source_options: {e}") from e
    mapping = _mapping(options, plain, table_mapping)
    palette = options.get("palette") or table_colours or mapping.class_colours(plain)
    try:
        return ClassInfo(names=plain.names, palette=tuple(tuple(c) for c in palette or ())), mapping
    except (ValueError, TypeError) as e:
        raise DataError(f"data.source_options.palette: {e}") from e


def _mapping(options: dict, class_info: ClassInfo, table_mapping: dict | None) -> MaskMapping:
    """One of mask_mapping / binary / reduce_labels (or the class table's colours), with the colour tolerance."""
    chosen = [k for k in ("mask_mapping", "binary", "reduce_labels") if options.get(k)]
    if len(chosen) > 1:
        raise DataError(f"data.source_options: give one of mask_mapping, binary and reduce_labels, not "
                        f"{' and '.join(chosen)}")
    if options.get("binary_threshold") is not None and not options.get("binary"):
        raise DataError("data.source_options.binary_threshold needs \"binary\": true")
    tolerance = options.get("colour_tolerance", 0)
    if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool) or not 0 <= tolerance <= 442:
        raise DataError(f"data.source_options.colour_tolerance = {tolerance!r} must be a number 0..442 "
                        "(an RGB distance; 10-30 absorbs JPEG noise)")
    if options.get("binary"):
        mapping = binary_mapping(class_info, options.get("binary_threshold"))
    elif options.get("reduce_labels"):
        mapping = reduce_labels_mapping(class_info)
    else:
        raw = options.get("mask_mapping") or table_mapping
        if raw is not None and not isinstance(raw, dict):
            raise DataError(f"data.source_options.mask_mapping = {json.dumps(raw)} must be an object "
                            "{stored value or \"R,G,B\": class}")
        mapping = parse_mask_mapping(raw, class_info)
    if tolerance and mapping.colours is None:
        raise DataError("data.source_options.colour_tolerance applies to colour masks; map colours with "
                        "mask_mapping {\"R,G,B\": class} or class_table, or remove it")
    return dataclasses.replace(mapping, colour_tolerance=float(tolerance))


def normalise_id(text: str) -> str:
    """A user-written image id ("./a/b.png", "a\\b") as hf_seg's ids: the relative path without its extension."""
    text = str(text).strip().replace("\\", "/").removeprefix("./")
    stem, dot, ext = text.rpartition(".")
    return stem if dot and f".{ext.lower()}" in IMAGE_EXTENSIONS else text


def pair_files(image_dir: Path, mask_dir: Path) -> dict[str, tuple[Path, Path]]:
    """Relative stem -> (image, mask) for the image files under two folders; an unpaired file is an error."""
    for folder, key in ((image_dir, "images_dir"), (mask_dir, "masks_dir")):
        if not folder.is_dir():
            raise DataError(f"folder '{folder}' does not exist; check data.root, or name the sub-folder with "
                            f"data.source_options.{key}")
    images, masks = _index(image_dir), _index(mask_dir)
    for stem in sorted(set(images) - set(masks)):
        raise DataError(f"image '{images[stem]}' has no mask '{mask_dir / stem}.<png|tif|...>'; "
                        "add the mask or remove the image")
    for stem in sorted(set(masks) - set(images)):
        raise DataError(f"mask '{masks[stem]}' has no image '{image_dir / stem}.<png|jpg|...>'; "
                        "add the image or remove the mask")
    if not images:
        raise DataError(f"folder '{image_dir}' holds no images ({', '.join(IMAGE_EXTENSIONS)}); check data.root")
    return {stem: (images[stem], masks[stem]) for stem in sorted(images)}


def _index(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
            continue
        stem = path.relative_to(folder).with_suffix("").as_posix()
        if stem in found:
            raise DataError(f"'{found[stem]}' and '{path}' share the name '{stem}'; keep one file per image")
        found[stem] = path
    return found


def _open(ref: dict, kind: str, sample_id: str) -> tuple[Image.Image, str]:
    """Open (not decode) an image or mask from a path or bytes, checking its structure; returns it and its name."""
    where = ref.get("path") or f"{kind} of {sample_id}"
    try:
        with _pil(ref) as im:
            im.verify()  # structure and checksums, without decoding the pixels
        return _pil(ref), where
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{kind} '{where}' cannot be read ({type(e).__name__}: {e}); replace or remove the file") from e


def _pil(ref: dict) -> Image.Image:
    return Image.open(io.BytesIO(ref["bytes"])) if ref.get("bytes") else Image.open(ref["path"])


def validated_row(sample: Sample, source: Source) -> tuple[dict, MaskStats]:
    """Check one pair (readable, same size, mask values known) and return its cache row with the canonical mask."""
    image_ref, mask_ref = source.refs(sample)
    labels, stats = checked_pair(image_ref, mask_ref, sample.id, source.mapping, source.class_info)
    counts = np.bincount(labels.ravel(), minlength=256)
    pixels = counts[:source.class_info.num_classes].tolist() + [int(counts[source.class_info.ignore_index])]
    return {"image": image_ref, "mask": {"bytes": encode_png(labels), "path": None}, "id": sample.id,
            "sequence": sample.sequence, "time": sample.time, "pixels": pixels}, stats


def checked_pair(image_ref: dict, mask_ref: dict, sample_id: str, mapping: MaskMapping,
                 class_info: ClassInfo) -> tuple[np.ndarray, MaskStats]:
    """The class-id mask of one image/mask pair after checking both are readable and the same size."""
    image, image_where = _open(image_ref, "image", sample_id)
    mask, mask_where = _open(mask_ref, "mask", sample_id)
    with image, mask:
        if image.size != mask.size:
            raise DataError(f"mask '{mask_where}' is {mask.size[0]}x{mask.size[1]} but image '{image_where}' is "
                            f"{image.size[0]}x{image.size[1]}; masks must have their image's size")
        try:
            mask.load()
        except OSError as e:
            raise DataError(f"mask '{mask_where}' cannot be decoded ({e}); replace or remove the file") from e
        return mapped_mask(mask, mapping, class_info, mask_where)
