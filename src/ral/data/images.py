"""Reading image files into square grayscale uint8 arrays, and checking that image files are usable."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from PIL import Image, UnidentifiedImageError

from ral.data._bad_rows import BadRows
from ral.data.errors import MissingFileError, TableError
from ral.data.table import LabelTable

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: How image files are checked: not at all, that each exists, or that each also decodes.
ImageCheck = Literal["none", "exists", "decode"]
CHECK_MODES: tuple[str, ...] = get_args(ImageCheck)
#: Smallest square side images are read at (config, datasets, simulator and benchmarks share it).
MIN_IMAGE_SIZE = 16
#: PIL modes of grayscale images (1-bit, 8-bit, 16-bit, 32-bit integer and float; with alpha).
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
#: Default of ``dataset.max_image_pixels``: PIL's decompression-bomb limit (about 89 million pixels).
MAX_IMAGE_PIXELS: int = Image.MAX_IMAGE_PIXELS or 89_478_485


@contextmanager
def pixel_limit(max_pixels: int | None) -> Iterator[None]:
    """Within the block, images of more than ``max_pixels`` pixels are refused (None: no limit).

    The limit is PIL's own process-wide ``Image.MAX_IMAGE_PIXELS`` (restored on exit), so the
    processes forked inside the block (cache builders, loader workers) inherit it.
    """
    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = before


def open_image(path: str | os.PathLike) -> Image.Image:
    """``Image.open`` (the header only) refusing an image of more pixels than the limit (:func:`pixel_limit`).

    PIL itself only warns above its limit and fails above twice it, with a message naming
    neither the file nor the option; here both cases are one ``ValueError`` naming them.

    Raises:
        ValueError: the image has more pixels than the limit (a decompression bomb?).
        OSError / UnidentifiedImageError: as ``Image.open``.
    """
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # PIL's check off while the header is read: the size is judged below
    try:
        img = Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    width, height = img.size
    if limit and width * height > limit:
        img.close()
        raise ValueError(
            f"image file {path} is {width} x {height} = {width * height:,} pixels, more than the limit of "
            f"{limit:,} (dataset.max_image_pixels; a decompression bomb?)"
        )
    return img


def read_image(path: str | os.PathLike, size: int, *, channels: int = 1) -> np.ndarray:
    """Decode one image file to a uint8 array: (size, size) grayscale, or (size, size, 3) RGB.

    ``channels`` 1: colour images are converted to luminance. 16-bit (and 32-bit integer) images
    are scaled by their bit depth (:func:`bit_depth`): values / (2**bits - 1), never clipped and
    never stretched to the image's own maximum; float images are scaled by their maximum.
    ``channels`` 3: colour images are read as RGB, grayscale ones (scaled as above) give R = G = B.
    The image is resized to a square (no crop), with box/bilinear filtering.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be decoded as an image (the message names the file), or
            ``channels`` is not 1 or 3.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with open_image(path) as img:
            colour = channels == 3 and img.mode not in GRAY_MODES
            img.draft("RGB" if colour else "L", (size, size))  # JPEG: decode at reduced scale, much faster
            img = img.convert("RGB") if colour else _to_gray(img, path)
            if img.size != (size, size):
                img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
            pixels = np.array(img, dtype=np.uint8)  # a writable copy
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot decode image file {path}: {exc}") from exc
    return np.repeat(pixels[..., None], 3, axis=2) if channels == 3 and pixels.ndim == 2 else pixels


def is_colour(path: str | os.PathLike) -> bool:
    """Whether an image file holds colour (read from its header; nothing is decoded).

    Raises:
        ValueError: more pixels than the limit (:func:`open_image`). OSError: as ``Image.open``.
    """
    with open_image(path) as img:
        return img.mode not in GRAY_MODES


def _to_gray(img: Image.Image, path: Path) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.clip(np.asarray(img, dtype=np.int64), 0, None)  # signed 32-bit images: negatives read as 0
        bits = bit_depth(values, png_significant_bits(path))
        return Image.fromarray(np.round(values * (255.0 / (2**bits - 1))).astype(np.uint8), mode="L")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        top = float(arr.max()) or 1.0
        return Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8), mode="L")
    return img if img.mode == "L" else img.convert("L")


def bit_depth(values: np.ndarray, significant_bits: int | None = None) -> int:
    """Bit depth to scale a high-bit-depth image by: ``significant_bits`` (the PNG's sBIT) when the values
    fit in it, else the smallest depth >= 8 bits that holds the largest value (4095 -> 12, 4096 -> 13).

    Args:
        values: the image's non-negative integer pixels, any shape.
        significant_bits: the stored bit depth recorded in the file, if any.
    """
    top = int(values.max()) if values.size else 0
    if significant_bits and top < 2**significant_bits:
        return int(significant_bits)
    return max(8, top.bit_length())


def png_significant_bits(path: str | os.PathLike) -> int | None:
    """The gray significant bits of a PNG's ``sBIT`` chunk (its stored bit depth); None for other files or no sBIT."""
    with open(path, "rb") as fh:
        if fh.read(8) != b"\x89PNG\r\n\x1a\n":
            return None
        while len(head := fh.read(8)) == 8:
            length, kind = struct.unpack(">I4s", head)
            if kind in (b"IDAT", b"IEND"):  # sBIT comes before the image data
                return None
            if kind == b"sBIT":
                data = fh.read(length)
                return (data[0] or None) if data else None
            fh.seek(length + 4, os.SEEK_CUR)  # data and CRC
    return None


def list_images(folder: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """The image files under ``folder`` (recursively, sorted) and the other files found there.

    Hidden files and folders (starting with ".") are left out of both lists.
    """
    folder = Path(folder)
    images, others = [], []
    for file in sorted(folder.rglob("*")):
        rel = file.relative_to(folder)
        if file.is_file() and not any(part.startswith(".") for part in rel.parts):
            (images if file.suffix.lower() in IMAGE_EXTENSIONS else others).append(file)
    return images, others


def check_images(table: LabelTable, mode: ImageCheck = "exists", *, skip_bad: bool = False) -> LabelTable:
    """Check the image files of ``table`` and return it (or, with ``skip_bad``, the usable rows).

    Args:
        table: the label table, N rows.
        mode: "none" (no check), "exists" (every file exists; one ``stat`` per file) or
            "decode" (every file also opens and decodes; slow on large sets).
        skip_bad: drop rows with missing/corrupt images with a warning and a count instead of
            raising.

    Raises:
        MissingFileError (a FileNotFoundError): an image file is missing (naming the file and the row).
        TableError (a ValueError): a file cannot be decoded. ValueError: ``mode`` is unknown.
    """
    if mode not in CHECK_MODES:
        raise ValueError(f"check_images must be one of {CHECK_MODES}, got {mode!r}")
    if mode == "none" or len(table) == 0:
        return table
    source = table.source or table.root
    bad = BadRows(source, len(table), csv=False)
    paths = [table.image_path(i) for i in range(len(table))]
    missing = np.array([not os.path.isfile(p) for p in paths], dtype=bool)
    bad.add(
        missing,
        lambda i: f"row {i} (id {table.ids[i]!r}): image file not found: {paths[i]}",
        values=paths,
        error=MissingFileError,
    )
    if mode == "decode":
        corrupt = np.zeros(len(table), dtype=bool)
        reasons: dict[int, str] = {}
        for i in np.flatnonzero(~missing):
            try:
                with open_image(paths[i]) as img:
                    img.load()
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
                corrupt[i] = True
                reasons[int(i)] = str(exc)
        bad.add(
            corrupt,
            lambda i: f"row {i} (id {table.ids[i]!r}): cannot decode image file {paths[i]}: {reasons[i]}",
            values=paths,
            error=TableError,
        )
    keep = bad.resolve(skip_bad)
    return table if keep.size == len(table) else table.subset(keep)
