"""What every data source yields (samples + class metadata), shared option checks, and samples -> validated Dataset."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import datasets
from PIL import Image

from hf_seg.labels import ClassInfo
from hf_seg.data.errors import DataError
from hf_seg.data.masks import MaskMapping, canonical_mask, encode_png, parse_mask_mapping, reduce_labels_mapping

FEATURES = datasets.Features({
    "image": datasets.Image(decode=False),  # {"path", "bytes"}: decoded per batch by data.images, errors naming the file
    "mask": datasets.Image(),  # uint8 class ids; class_info.ignore_index marks unlabelled pixels
    "group": datasets.Value("string"),  # the unit a split keeps together (a sequence or a time block of one)
    "id": datasets.Value("string"),
    "sequence": datasets.Value("string"),  # the recording the image comes from (= group when there is no time)
    "time": datasets.Value("float64"),  # seconds within the sequence; None when the source has no frame times
})

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""Image file endings hf_seg reads, in data sources and in predict."""


@dataclass(frozen=True)
class Sample:
    """One image/mask pair before decoding: where its bytes are and where it sits in time and in the official split."""

    id: str
    image: dict  # {"path": str | None, "bytes": bytes | None}, as datasets.Image stores an image
    mask: dict
    sequence: str
    time: float | None = None
    official: str | None = None  # "train", "validation" or "test" in the source's own split; None if it has none


@dataclass(frozen=True)
class Source:
    """A loaded (not yet decoded) source: its samples, its classes and how its stored masks map to class ids."""

    samples: list[Sample]
    class_info: ClassInfo
    mapping: MaskMapping


def check_options(options: dict, allowed: Sequence[str], source: str) -> None:
    """Reject source_options keys the source does not know, listing the ones it does."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DataError(f"data.source_options.{unknown[0]} is not an option of source '{source}'; "
                        f"valid keys: {', '.join(allowed) or 'none'}")


def class_info_from_options(options: dict, source: str) -> ClassInfo:
    """ClassInfo from source_options.class_names (+ optional palette); both come from the recipe."""
    names = options.get("class_names")
    if not isinstance(names, list) or not names:
        raise DataError(f"data.source_options.class_names is required for source '{source}'; "
                        "list the class names in class-id order, e.g. [\"background\", \"road\"]")
    try:
        return ClassInfo(names=tuple(names), palette=tuple(tuple(c) for c in options.get("palette", ())))
    except (ValueError, TypeError) as e:
        raise DataError(f"data.source_options: {e}") from e


def mapping_from_options(options: dict, class_info: ClassInfo) -> MaskMapping:
    """source_options.mask_mapping or source_options.reduce_labels (not both) -> MaskMapping."""
    if options.get("mask_mapping") and options.get("reduce_labels"):
        raise DataError("data.source_options: give either mask_mapping or reduce_labels, not both")
    if options.get("reduce_labels"):
        return reduce_labels_mapping(class_info)
    raw = options.get("mask_mapping")
    if raw is not None and not isinstance(raw, dict):
        raise DataError(f"data.source_options.mask_mapping = {json.dumps(raw)} must be an object "
                        "{stored value or \"R,G,B\": class}")
    return parse_mask_mapping(raw, class_info)


def pair_files(image_dir: Path, mask_dir: Path) -> dict[str, tuple[Path, Path]]:
    """Relative stem -> (image, mask) for the image files under two folders; an unpaired file is an error."""
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise DataError(f"folder '{folder}' does not exist; check data.root and the source's layout")
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


def validated_row(sample: Sample, group: str, source: Source) -> dict:
    """Check one pair (readable, same size, mask values known) and return its dataset row with the canonical mask."""
    image, image_where = _open(sample.image, "image", sample.id)
    mask, mask_where = _open(sample.mask, "mask", sample.id)
    with image, mask:
        if image.size != mask.size:
            raise DataError(f"mask '{mask_where}' is {mask.size[0]}x{mask.size[1]} but image '{image_where}' is "
                            f"{image.size[0]}x{image.size[1]}; masks must have their image's size")
        try:
            mask.load()
        except OSError as e:
            raise DataError(f"mask '{mask_where}' cannot be decoded ({e}); replace or remove the file") from e
        labels = canonical_mask(mask, source.mapping, source.class_info, mask_where)
    return {"image": sample.image, "mask": {"bytes": encode_png(labels), "path": None}, "group": group,
            "id": sample.id, "sequence": sample.sequence, "time": sample.time}


def to_dataset(rows: list[dict], provenance: dict) -> datasets.Dataset:
    """Rows -> an Arrow-backed Dataset; the split's provenance rides in info.description for save_split."""
    columns = {name: [r[name] for r in rows] for name in FEATURES}
    info = datasets.DatasetInfo(description=json.dumps({"hf_seg_split": provenance}), features=FEATURES)
    return datasets.Dataset.from_dict(columns, features=FEATURES, info=info)
