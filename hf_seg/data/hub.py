"""A Hugging Face Hub dataset with image and mask columns (needs the network; tests monkeypatch load_dataset).

Options (data.source_options):
- dataset_id (required), config_name, revision: passed to datasets.load_dataset. data.root is not used.
- image_column (default "image"), mask_column (default "label"): Image features.
- class_names (required), palette, mask_mapping, reduce_labels: as for the folder source.
- group_column: a column naming each row's group (a recording, a patient); default: every row is its own group.
- id_column: a column with unique row ids; default "<hub split>/<row index>".
Official split (data.split.mode = "official"): the dataset's own train / validation (or val) / test splits.
"""

from __future__ import annotations

import datasets

from hf_seg.data.errors import DataError
from hf_seg.data.source import Sample, Source, check_options, class_info_from_options, mapping_from_options

OPTIONS = ("dataset_id", "config_name", "revision", "image_column", "mask_column", "group_column", "id_column",
           "class_names", "palette", "mask_mapping", "reduce_labels")
OFFICIAL_SPLITS = {"train": "train", "validation": "validation", "val": "validation", "valid": "validation",
                   "test": "test"}


def load_hub(options: dict) -> Source:
    """Download (or reuse the cache of) a Hub dataset and list its rows as samples, without decoding them."""
    check_options(options, OPTIONS, "hub")
    dataset_id = options.get("dataset_id")
    if not dataset_id:
        raise DataError("data.source_options.dataset_id is required for source 'hub'; e.g. \"user/my-seg-dataset\"")
    class_info = class_info_from_options(options, "hub")
    mapping = mapping_from_options(options, class_info)
    try:
        dsd = datasets.load_dataset(dataset_id, options.get("config_name"), revision=options.get("revision"))
    except Exception as e:  # network, auth, missing repo: all end here, with the cause kept
        first_line = str(e).splitlines()[0] if str(e) else ""
        raise DataError(f"hub dataset '{dataset_id}' could not be loaded ({type(e).__name__}: {first_line}); "
                        "check the id and the network (HF_HUB_OFFLINE=1 forbids downloads)") from e
    image_col, mask_col = options.get("image_column", "image"), options.get("mask_column", "label")
    group_col, id_col = options.get("group_column"), options.get("id_column")
    samples = []
    for split, ds in dsd.items():
        for col in filter(None, (image_col, mask_col, group_col, id_col)):
            if col not in ds.column_names:
                raise DataError(f"hub dataset '{dataset_id}' split '{split}' has no column '{col}' "
                                f"(columns: {', '.join(ds.column_names)}); set the matching *_column option")
        for col in (image_col, mask_col):
            if not isinstance(ds.features[col], datasets.Image):
                raise DataError(f"hub dataset '{dataset_id}' column '{col}' is {type(ds.features[col]).__name__}, "
                                "not an Image feature; point image_column/mask_column at image columns")
        raw = ds.cast_column(image_col, datasets.Image(decode=False))
        raw = raw.cast_column(mask_col, datasets.Image(decode=False))
        images, masks = raw[image_col], raw[mask_col]
        ids = [str(v) for v in raw[id_col]] if id_col else [f"{split}/{i}" for i in range(len(raw))]
        groups = [str(v) for v in raw[group_col]] if group_col else ids
        samples += [Sample(id=i, image=im, mask=m, sequence=g, official=OFFICIAL_SPLITS.get(split))
                    for i, im, m, g in zip(ids, images, masks, groups)]
    return Source(samples=samples, class_info=class_info, mapping=mapping)
