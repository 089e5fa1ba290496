"""CamVid in the SegNet layout: train/ val/ test/ + *annot/ masks, 11 classes, void 11 -> ignore, 30 fps sequences."""

from __future__ import annotations

import re
from pathlib import Path

from hf_seg.labels import CAMVID
from hf_seg.data.cache import files_fingerprint
from hf_seg.data.errors import DataError
from hf_seg.data.masks import MaskMapping
from hf_seg.data.source import Sample, Source, check_options, pair_files

FPS = 30.0  # frame numbers in the file names count video frames at 30 fps (labelled frames are 30 apart = 1 s)
VOID = 11
FOLDERS = {"train": ("train", "trainannot"), "validation": ("val", "valannot"), "test": ("test", "testannot")}
NAME = re.compile(r"^(?P<sequence>.+)_f?(?P<frame>\d+)$")  # 0016E5_07959, 0006R0_f00930, Seq05VD_f00000


def load_camvid(root: Path, options: dict) -> Source:
    """All 701 CamVid pairs with sequence, frame time and official split; no options."""
    check_options(options, (), "camvid")
    if not root.is_dir():
        raise DataError(f"data.root '{root}' does not exist; run `hf-seg download camvid` "
                        "or point data.root at a CamVid folder in the SegNet layout")
    samples = []
    for split, (image_dir, mask_dir) in FOLDERS.items():
        for stem, (image, mask) in pair_files(root / image_dir, root / mask_dir).items():
            match = NAME.match(stem)
            if not match:
                raise DataError(f"CamVid file '{image}' is not named <sequence>_<frame>.png; "
                                "keep the SegNet file names (they carry the sequence and time)")
            samples.append(Sample(id=stem, image={"path": str(image), "bytes": None},
                                  mask={"path": str(mask), "bytes": None}, sequence=match["sequence"],
                                  time=int(match["frame"]) / FPS, official=split))
    values = {v: v for v in range(CAMVID.num_classes)} | {VOID: CAMVID.ignore_index}
    fix = (f"CamVid masks hold class ids 0..{CAMVID.num_classes - 1} and {VOID} (void); replace the file with its "
           "SegNet CamVid mask, or train on other data with the folder source")
    return Source(samples=samples, class_info=CAMVID, mapping=MaskMapping(values=values, fix=fix),
                  grouping=f"sequence names and frame times ({FPS:g} fps)", fingerprint=files_fingerprint(samples))
