"""Photos: checked from their bytes, cleaned of EXIF (GPS included), stored under server names.

Only JPEG, PNG and WebP are taken, recognised by their magic bytes and then fully decoded, so a
renamed or truncated file is refused. The stored copy is re-encoded from the pixels (turned
upright first), which drops every metadata block; a thumbnail is stored beside it.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from dispatch.errors import InputError

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
THUMBNAIL_PX = 320
FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


def sniff(data: bytes) -> str | None:
    """The image format named by the first bytes, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def check_photo(data, max_bytes: int = MAX_PHOTO_BYTES) -> Image.Image:
    """Decode an upload, or raise :class:`InputError` saying why it is not a usable photo."""
    if not isinstance(data, bytes | bytearray) or not data:
        raise InputError("the photo is empty", field="photo")
    if len(data) > max_bytes:
        raise InputError(f"the photo has {len(data):,} bytes; at most {max_bytes:,} are taken",
                         field="photo")
    kind = sniff(bytes(data[:16]))
    if kind is None:
        raise InputError("the photo must be a JPEG, PNG or WebP image", field="photo")
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise InputError(f"the photo has {image.width}x{image.height} pixels; at most "
                             f"{MAX_PIXELS:,} are taken", field="photo")
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"the photo is not a readable {kind} image: {exc}",
                         field="photo") from exc
    if image.format != kind:
        raise InputError(f"the photo starts like {kind} but decodes as {image.format}",
                         field="photo")
    return image


def store_photo(image: Image.Image, media: Path) -> str:
    """Write ``image`` without metadata, plus a thumbnail; returns the stored file name."""
    kind = image.format
    upright = ImageOps.exif_transpose(image)
    if kind == "JPEG" and upright.mode not in ("RGB", "L"):
        upright = upright.convert("RGB")
    name = uuid.uuid4().hex + FORMATS[kind]
    media.mkdir(parents=True, exist_ok=True)
    clean = Image.frombytes(upright.mode, upright.size, upright.tobytes())  # pixels only
    if upright.mode == "P":
        clean.putpalette(upright.getpalette())
    clean.save(media / name, format=kind)
    thumb = clean.copy()
    thumb.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    thumb.save(media / thumbnail_name(name), format=kind)
    return name


def thumbnail_name(name: str) -> str:
    stem, _, ext = name.rpartition(".")
    return f"{stem}.thumb.{ext}"
