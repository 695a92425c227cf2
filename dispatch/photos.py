"""Photos: checked from their bytes, cleaned of EXIF (GPS included), stored under server names.

Only JPEG, PNG and WebP are taken, recognised by their magic bytes, sized from their header and
then fully decoded, so a renamed, truncated or oversized file is refused before it costs memory.
The stored copy is written from the pixels alone (turned upright first), which drops every
metadata block; a thumbnail is stored beside it. A JPEG with more pixels than are decoded at
full size is decoded, and so stored, at half its width and height.
"""

from __future__ import annotations

import io
import struct
import uuid
from pathlib import Path

from PIL import Image, ImageOps, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from dispatch.errors import InputError

MAX_PHOTO_BYTES = 10 * 1024 * 1024
# Pixels decoded at full size: at 3-4 bytes a pixel, 25 million hold at most 100 MB, and the
# image is decoded once and never copied whole. A phone's camera saves 12 million pixels
# (4032x3024) or, at most, 24.5 million (5712x4284) unless set to a 32-200 MP mode, and those
# modes write JPEGs, which are decoded at reduced size (below); screenshots are far smaller.
MAX_PIXELS = 25_000_000
# A JPEG may declare up to this many pixels, decoded in libjpeg's draft mode at 1/2 to fit
# under MAX_PIXELS (50 MP phone photos: 8160x6144). Only a baseline JPEG: a progressive one
# buffers every coefficient of the full image, ~3 bytes a pixel, whatever the scale. 1/2 always
# fits: a JPEG's sides are at most 65535, so halved (rounded up) 64 million pixels stay below
# 16.1 million, whatever the shape.
MAX_JPEG_PIXELS = 64_000_000
THUMBNAIL_PX = 320
FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
# Each format's own reader: unlike Image.open it tries no other format, and it reads the header
# without raising or warning DecompressionBomb* before the size is checked here.
READERS = {"JPEG": JpegImagePlugin.JpegImageFile, "PNG": PngImagePlugin.PngImageFile,
           "WEBP": WebPImagePlugin.WebPImageFile}
KEPT_INFO = ("transparency",)  # what of Pillow's info is pixels rather than metadata
# What a broken file makes Pillow's readers and decoders raise.
UNREADABLE = (OSError, SyntaxError, ValueError, IndexError, TypeError, EOFError, struct.error,
              Image.DecompressionBombError)


def sniff(data: bytes) -> str | None:
    """The image format named by the first bytes, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def webp_size(data: bytes) -> tuple[int, int] | None:
    """A WebP's canvas size from its first chunk's header, or None: Pillow's WebP reader
    allocates the canvas as it opens the file, so the size is checked before that."""
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8X" and len(data) >= 30:
        return (int.from_bytes(data[24:27], "little") + 1,
                int.from_bytes(data[27:30], "little") + 1)
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def check_photo(data, max_bytes: int = MAX_PHOTO_BYTES) -> Image.Image:
    """Decode an upload, or raise :class:`InputError` saying why it is not a usable photo.

    The size is taken from the header and checked before any pixel is decoded."""
    if not isinstance(data, bytes | bytearray) or not data:
        raise InputError("the photo is empty", field="photo")
    if len(data) > max_bytes:
        raise InputError(f"the photo has {len(data):,} bytes; at most {max_bytes:,} are taken",
                         field="photo")
    kind = sniff(bytes(data[:16]))
    if kind is None:
        raise InputError("the photo must be a JPEG, PNG or WebP image", field="photo")
    if kind == "WEBP":
        size = webp_size(bytes(data[:30]))
        if size is None:
            raise InputError("the photo is not a readable WEBP image", field="photo")
        _check_size(*size, MAX_PIXELS)
    try:
        image = READERS[kind](io.BytesIO(data))  # the header only
    except UNREADABLE as exc:
        raise InputError(f"the photo is not a readable {kind} image: {exc}",
                         field="photo") from None
    baseline = kind == "JPEG" and not image.info.get("progressive")
    _check_size(*image.size, MAX_JPEG_PIXELS if baseline else MAX_PIXELS)
    if image.width * image.height > MAX_PIXELS:  # a baseline JPEG: decoded at 1/2
        image.draft(None, (image.width // 2, image.height // 2))
    try:
        image.load()
    except UNREADABLE as exc:
        raise InputError(f"the photo is not a readable {kind} image: {exc}",
                         field="photo") from None
    return image


def _check_size(width: int, height: int, most: int) -> None:
    """Refuse a photo declaring more pixels than ``most``, before it is decoded."""
    if width * height > most or not width or not height:
        raise InputError(f"the photo has {width}x{height} pixels; at most {most:,} are taken",
                         field="photo")


def store_photo(image: Image.Image, media: Path) -> str:
    """Write ``image`` without metadata, plus a thumbnail; returns the stored file name.

    ``image`` (from :func:`check_photo`) is used up: it is turned, stripped and shrunk to the
    thumbnail in place, so its pixels are never copied whole."""
    kind = image.format
    ImageOps.exif_transpose(image, in_place=True)
    if kind == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    # Every metadata block (EXIF, XMP, ICC profile, comments, text chunks) is in info, where the
    # writers find it; only the pixels are kept.
    image.info = {key: image.info[key] for key in KEPT_INFO if key in image.info}
    name = uuid.uuid4().hex + FORMATS[kind]
    media.mkdir(parents=True, exist_ok=True)
    image.save(media / name, format=kind)
    image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    image.save(media / thumbnail_name(name), format=kind)
    return name


def thumbnail_name(name: str) -> str:
    stem, _, ext = name.rpartition(".")
    return f"{stem}.thumb.{ext}"
