"""Files -> (image, target) pairs: label-table formats, the simulated dataset, splits, groups, caching."""

from ral.data.cache import build_cache, cache_path
from ral.data.classes import (
    APTOS_CLASSES,
    CHEXPERT_CLASSES,
    CLASS_SETS,
    CXRLT2024_TASK1_CLASSES,
    CXRLT2024_TASK2_CLASSES,
    CXRLT_CLASSES,
    CXRLT_NUM_TRAIN_IMAGES,
    CXRLT_TRAIN_COUNTS,
    ISIC2018_CLASSES,
    ISIC2018_TRAIN_COUNTS,
    MIMIC_CLASSES,
    NIH_CLASSES,
    VINDR_CLASSES,
)
from ral.data.errors import MissingFileError, TableError
from ral.data.formats import FORMATS, TABLE_FORMATS, detect_format
from ral.data.groups import frequency_groups
from ral.data.images import check_images, list_images, read_image
from ral.data.load import load_image_list, load_table
from ral.data.options import TableOptions
from ral.data.simulate import preview_grid, simulate_dataset
from ral.data.split import patient_split
from ral.data.stats import format_stats, table_stats, write_stats
from ral.data.table import LabelTable


def __getattr__(name: str):
    # ImageDataset needs torch: imported on first use, so label-only tools start fast.
    if name == "ImageDataset":
        from ral.data.dataset import ImageDataset

        return ImageDataset
    raise AttributeError(f"module 'ral.data' has no attribute {name!r}")


__all__ = [
    "APTOS_CLASSES",
    "CHEXPERT_CLASSES",
    "CLASS_SETS",
    "CXRLT2024_TASK1_CLASSES",
    "CXRLT2024_TASK2_CLASSES",
    "CXRLT_CLASSES",
    "CXRLT_NUM_TRAIN_IMAGES",
    "CXRLT_TRAIN_COUNTS",
    "FORMATS",
    "ISIC2018_CLASSES",
    "ISIC2018_TRAIN_COUNTS",
    "MIMIC_CLASSES",
    "NIH_CLASSES",
    "TABLE_FORMATS",
    "VINDR_CLASSES",
    "ImageDataset",
    "LabelTable",
    "MissingFileError",
    "TableError",
    "TableOptions",
    "build_cache",
    "cache_path",
    "check_images",
    "detect_format",
    "format_stats",
    "frequency_groups",
    "list_images",
    "load_image_list",
    "load_table",
    "patient_split",
    "preview_grid",
    "read_image",
    "simulate_dataset",
    "table_stats",
    "write_stats",
]
