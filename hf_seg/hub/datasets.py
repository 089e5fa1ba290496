"""What a model card says about the training data: a DatasetCard per source, CamVid's with its citation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from hf_seg.recipe import Recipe


@dataclass(frozen=True)
class DatasetCard:
    """What a model card says about a training dataset: name, Hub id, licence, citation and caveats."""

    name: str
    hub_id: Optional[str]
    about: str
    license: str = "other"
    license_name: Optional[str] = None
    citation: str = ""
    limitations: tuple[str, ...] = ()


CAMVID_CITATION = """@article{brostow2009semantic,
  title   = {Semantic object classes in video: A high-definition ground truth database},
  author  = {Brostow, Gabriel J. and Fauqueur, Julien and Cipolla, Roberto},
  journal = {Pattern Recognition Letters},
  volume  = {30},
  number  = {2},
  pages   = {88--97},
  year    = {2009}
}"""

CAMVID = DatasetCard(
    name="CamVid",
    hub_id="camvid",
    about=("[CamVid](http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/) (Brostow et al., 2009) in the SegNet "
           "packaging: 701 densely labelled 480×360 frames from four driving videos recorded in Cambridge, UK "
           "(sequences 0001TP, 0006R0, 0016E5 and Seq05VD; 0001TP at dusk), 11 classes plus void (ignored)."),
    license_name="camvid-research-only",
    citation=CAMVID_CITATION,
    limitations=(
        "Trained on four video sequences of one city (Cambridge, UK), one camera, daylight and one dusk sequence: "
        "expect lower accuracy on other cities, cameras, weather, night scenes and image sizes.",
        "Pedestrian, Bicyclist, SignSymbol, Pole and Fence cover only a few percent of the pixels; their IoU is low "
        "and noisy, so read the per-class table, not only the mean.",
        "Frames of one video are strongly correlated; a small number of independent scenes lies behind each split.",
        "CamVid states no licence: use these weights for research only.",
    ),
)


GENERAL_LIMITATIONS = (
    "Not for safety-critical use, such as controlling a vehicle: no robustness, calibration or failure analysis "
    "was done.",
)


def dataset_card(recipe: Recipe) -> DatasetCard:
    """The dataset description for the recipe's data source."""
    source = recipe.data.source
    if source == "camvid":
        return CAMVID
    if source == "hub" and is_hub_id(str(recipe.data.source_options.get("dataset_id"))):
        dataset_id = recipe.data.source_options["dataset_id"]
        return DatasetCard(name=dataset_id, hub_id=dataset_id,
                           about=f"The Hub dataset [{dataset_id}](https://huggingface.co/datasets/{dataset_id}).")
    if source in ("hub", "dataset"):  # local files, a save_to_disk folder or a datasets object: words, never a path
        kind = "a datasets object built in Python" if source == "dataset" else "local dataset files"
        return DatasetCard(name="own dataset", hub_id=None, about=f"A dataset that is not on the Hub ({kind}).")
    name = Path(recipe.data.root).name
    return DatasetCard(name=name, hub_id=None, about=f"A local image/mask folder dataset ('{name}'), not on the Hub.")


def is_hub_id(text: str) -> bool:
    """'user/name' that is not a local path: what a card's `datasets:` and `base_model:` may hold."""
    return text.count("/") == 1 and not Path(text).expanduser().exists() and not text.startswith((".", "/", "~"))
