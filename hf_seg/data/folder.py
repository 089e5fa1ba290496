"""Any images/ + masks/ folder pair (matching relative stems; png/jpg/tif/bmp), described by data.source_options.

Options (data.source_options):
- class_names or class_table (one is required), palette, mask_mapping, binary, binary_threshold, reduce_labels,
  colour_tolerance: the classes and how stored mask values map to them (see hf_seg.data.source); a class_table path
  is relative to data.root.
- images_dir / masks_dir: sub-folders of data.root (default "images" / "masks"); searched recursively, and an
  image `images/a/b.jpg` pairs with the mask `masks/a/b.<any image extension>`.
- group_table: a CSV (columns id, group) or JSON ({id: group}) file, relative to data.root, giving every image's
  group (a patient, a scan, a video); ids are image paths relative to images_dir, with or without extension.
- group_regex: regex searched in the image's relative path without extension (e.g. "^(?P<group>[^/]+)/" for one
  folder per recording); the group is its named group "group", else its first group, else the whole match.
  A named group "frame" (with a named "group") together with `fps` gives each image a time, so the split can cut
  recordings into time blocks like CamVid. Default (neither option): every image is its own group.
- fps: frames per second of the "frame" numbers (required when group_regex has a "frame" group).
Official split (data.split.mode = "official"): the first folder of the relative path, one of train/, val/,
validation/, test/ (e.g. images/train/x.png + masks/train/x.png).
"""

from __future__ import annotations

import re
from pathlib import Path

from hf_seg.data.cache import files_fingerprint
from hf_seg.data.errors import DataError
from hf_seg.data.source import CLASS_OPTIONS, OWN_GROUPS, Sample, Source, check_options, classes_from_options, pair_files
from hf_seg.data.split_file import read_group_table

OPTIONS = (*CLASS_OPTIONS, "images_dir", "masks_dir", "group_table", "group_regex", "fps")
OFFICIAL_FOLDERS = {"train": "train", "val": "validation", "validation": "validation", "test": "test"}


def load_folder(root: Path, options: dict) -> Source:
    """Pair every image with its mask and give it a group (and a time, when group_regex finds a frame number)."""
    check_options(options, OPTIONS, "folder")
    if not root.is_dir():
        raise DataError(f"data.root '{root}' does not exist; point it at the folder holding images/ and masks/")
    class_info, mapping = classes_from_options(options, "folder", root)
    if options.get("group_table") is not None and options.get("group_regex") is not None:
        raise DataError("data.source_options: give either group_table or group_regex, not both")
    table = read_group_table(root / str(options["group_table"])) if options.get("group_table") is not None else None
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
        elif table is not None:
            if stem not in table:
                missing = [k for k in pairs if k not in table]
                raise DataError(f"group table '{options['group_table']}' has no group for {len(missing)} image(s), "
                                f"e.g. '{stem}' (image '{image}'); add a row for every image")
            sequence = table[stem]
        top = stem.split("/")[0] if "/" in stem else None
        samples.append(Sample(id=stem, image={"path": str(image), "bytes": None},
                              mask={"path": str(mask), "bytes": None}, sequence=sequence, time=time,
                              official=OFFICIAL_FOLDERS.get(top)))
    if table is not None and len(table) > len(pairs):
        extra = sorted(set(table) - set(pairs))
        print(f"group table '{options['group_table']}': {len(extra)} id(s) match no image, e.g. '{extra[0]}'")
    grouping = (f"group_table {options['group_table']}" if table is not None else
                f"group_regex {pattern.pattern}" if pattern is not None else OWN_GROUPS)
    return Source(samples=samples, class_info=class_info, mapping=mapping, grouping=grouping,
                  fingerprint=files_fingerprint(samples))


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
