"""Any images/ + masks/ folder pair (matching relative stems; png/jpg/tif/bmp), described by data.source_options.

Options (data.source_options):
- class_names (required): class names in class-id order.
- palette: one [r, g, b] per class, for overlays (default: evenly spaced hues).
- images_dir / masks_dir: sub-folders of data.root (default "images" / "masks"); searched recursively, and an
  image `images/a/b.jpg` pairs with the mask `masks/a/b.<any image extension>`.
- mask_mapping: stored mask value -> class, e.g. {"0": "background", "255": "road"} for 0/255 masks or
  {"128,64,128": "road", "#000000": "ignore"} for RGB colour masks; a class is an id, a name or "ignore".
  Without it, mask values must already be class ids or 255 (ignore). Every stored value must be mapped.
- reduce_labels: true for the HF convention "0 = unlabelled, k = class k-1" (instead of mask_mapping).
- group_regex: regex searched in the image's relative path without extension (e.g. "^(?P<group>[^/]+)/" for one
  folder per recording); the group is its named group "group", else its first group, else the whole match.
  A named group "frame" (with a named "group") together with `fps` gives each image a time, so the split can cut
  recordings into time blocks like CamVid. Default: every image is its own group.
- fps: frames per second of the "frame" numbers (required when group_regex has a "frame" group).
Official split (data.split.mode = "official"): the first folder of the relative path, one of train/, val/,
validation/, test/ (e.g. images/train/x.png + masks/train/x.png).
"""

from __future__ import annotations

import re
from pathlib import Path

from hf_seg.data.errors import DataError
from hf_seg.data.source import Sample, Source, check_options, class_info_from_options, mapping_from_options, pair_files

OPTIONS = ("class_names", "palette", "images_dir", "masks_dir", "mask_mapping", "reduce_labels", "group_regex", "fps")
OFFICIAL_FOLDERS = {"train": "train", "val": "validation", "validation": "validation", "test": "test"}


def load_folder(root: Path, options: dict) -> Source:
    """Pair every image with its mask and give it a group (and a time, when group_regex finds a frame number)."""
    check_options(options, OPTIONS, "folder")
    if not root.is_dir():
        raise DataError(f"data.root '{root}' does not exist; point it at the folder holding images/ and masks/")
    class_info = class_info_from_options(options, "folder")
    mapping = mapping_from_options(options, class_info)
    pattern = _compile(options.get("group_regex"))
    fps = options.get("fps")
    if pattern is not None and "frame" in pattern.groupindex and not (isinstance(fps, (int, float)) and fps > 0):
        raise DataError(f"data.source_options.fps = {fps!r}; group_regex has a 'frame' group, so give the "
                        "frame rate as a positive number, e.g. 30")
    pairs = pair_files(root / options.get("images_dir", "images"), root / options.get("masks_dir", "masks"))
    samples = []
    for stem, (image, mask) in pairs.items():
        sequence, time = stem, None
        if pattern is not None:
            match = pattern.search(stem)
            if not match:
                raise DataError(f"data.source_options.group_regex {pattern.pattern!r} does not match '{stem}' "
                                f"(image '{image}'); make it match every image's relative path")
            sequence = _group_of(match)
            if "frame" in pattern.groupindex:
                time = int(match["frame"]) / fps
        top = stem.split("/")[0] if "/" in stem else None
        samples.append(Sample(id=stem, image={"path": str(image), "bytes": None},
                              mask={"path": str(mask), "bytes": None}, sequence=sequence, time=time,
                              official=OFFICIAL_FOLDERS.get(top)))
    return Source(samples=samples, class_info=class_info, mapping=mapping)


def _compile(regex) -> re.Pattern | None:
    if regex is None:
        return None
    try:
        pattern = re.compile(str(regex))
    except re.error as e:
        raise DataError(f"data.source_options.group_regex {regex!r} is not a valid regex ({e})") from e
    if "frame" in pattern.groupindex and "group" not in pattern.groupindex:
        raise DataError(f"data.source_options.group_regex {regex!r} has a 'frame' group but no 'group' group; "
                        "name the recording part (?P<group>...)")
    return pattern


def _group_of(match: re.Match) -> str:
    if "group" in match.re.groupindex:
        return match["group"]
    return match.group(1) if match.re.groups else match.group(0)
