"""Files -> (image, target) pairs: label-table formats, the simulated dataset, splits, groups, caching."""

from ral.data.cache import build_cache, cache_path
from ral.data.classes import (
    APTOS_CLASSES,
    CHEXPERT_CLASSES,
    CXRLT_CLASSES,
    CXRLT_NUM_TRAIN_IMAGES,
    CXRLT_TRAIN_COUNTS,
    ISIC2018_CLASSES,
    ISIC2018_TRAIN_COUNTS,
    NIH_CLASSES,
)
from ral.data.dataset import ImageDataset
from ral.data.formats import FORMATS, detect_format, load_table
from ral.data.images import check_images, read_image
from ral.data.table import LabelTable

__all__ = [
    "APTOS_CLASSES",
    "CHEXPERT_CLASSES",
    "CXRLT_CLASSES",
    "CXRLT_NUM_TRAIN_IMAGES",
    "CXRLT_TRAIN_COUNTS",
    "FORMATS",
    "ISIC2018_CLASSES",
    "ISIC2018_TRAIN_COUNTS",
    "NIH_CLASSES",
    "ImageDataset",
    "LabelTable",
    "build_cache",
    "cache_path",
    "check_images",
    "detect_format",
    "load_table",
    "read_image",
]
