"""hf_seg.data: sources -> group-split DatasetDict, leak audit, class statistics and joint image/mask augmentation."""

from hf_seg.data.audit import audit_split, format_audit, nearest_neighbours
from hf_seg.data.augment import STRATEGIES, make_transform, set_transform
from hf_seg.data.build import SOURCES, build_datasets, classes_known, declared_classes
from hf_seg.data.class_stats import class_frequencies, class_weights
from hf_seg.data.errors import DataError
from hf_seg.data.split_file import read_split, save_split

__all__ = ["DataError", "SOURCES", "STRATEGIES", "audit_split", "build_datasets", "classes_known", "declared_classes",
           "class_frequencies",
           "class_weights", "format_audit", "make_transform", "nearest_neighbours", "read_split", "save_split",
           "set_transform"]
