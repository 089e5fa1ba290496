"""A small study file for the study tests: U-Net on the shipped CPU recipe, one group, overridable key by key."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.cli import BASE_RECIPE


def write_study(tmp_path: Path, **changes) -> Path:
    """study.json in `tmp_path` (output in tmp_path/out), with `changes` replacing its top-level keys."""
    study = {"name": "t", "base_recipe": str(BASE_RECIPE), "output_dir": str(tmp_path / "out"), "seeds": [0],
             "groups": {"g": {"a": {}}}, **changes}
    path = tmp_path / "study.json"
    path.write_text(json.dumps(study))
    return path
