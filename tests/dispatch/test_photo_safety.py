"""Photos that cost memory out of all proportion to their bytes: sized from the header and
refused before decoding, or decoded at reduced size; normal photos still store, stripped."""

import io
import struct
import tracemalloc
import zlib

import pytest
from PIL import Image

from dispatch.errors import InputError
from dispatch.photos import MAX_JPEG_PIXELS, MAX_PIXELS, check_photo
from dispatch.services import Actor
from tests.dispatch.helpers import photo, report

WORKER = Actor("李网格员", "gridworker")
HUGE = [(20000, 10000), (10000, 10000)]  # past Pillow's bomb error, and past its bomb warning


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(width: int, height: int, rows: int = 1) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` RGB pixels, with ``rows`` rows of
    black pixel data: a few hundred bytes, or ~130 KB for all 6320 rows of a 6320-wide one."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    squeeze, line = zlib.compressobj(9), bytes(1 + 3 * width)
    body = b"".join(squeeze.compress(line) for _ in range(rows)) + squeeze.flush()
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body)
            + _chunk(b"IEND", b""))


def _webp_canvas(width: int, height: int) -> bytes:
    """The first bytes of an extended WebP declaring a ``width`` x ``height`` canvas."""
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (width - 1).to_bytes(3, "little") + (
        height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


def _jpeg(size, **options) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def _pillow_bytes_allocated(call) -> int:
    """Bytes of image memory Pillow allocates while ``call()`` runs (an InputError is let be)."""
    before = Image.core.get_stats()["allocated_blocks"]
    try:
        call()
    except InputError:
        pass
    return (Image.core.get_stats()["allocated_blocks"] - before) * Image.core.get_block_size()


def test_a_small_png_with_many_pixels_is_refused_before_it_is_decoded(service, demo):
    data = huge_png(6320, 6320, rows=6320)  # 40 million pixels of one colour
    assert len(data) < 200_000
    tracemalloc.start()
    try:
        allocated = _pillow_bytes_allocated(lambda: check_photo(data))
        python_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert allocated == 0 and python_peak < 1_000_000
    with pytest.raises(InputError, match="6320x6320 pixels; at most 25,000,000") as info:
        service.submit_report(report(demo), photo=data)
    assert info.value.field == "photo"
    assert not service.media.exists() or not list(service.media.iterdir())


@pytest.mark.parametrize("size", HUGE, ids=["bomb-error", "bomb-warning"])
def test_a_tiny_png_declaring_huge_dimensions_is_an_input_error(service, demo, size):
    data = huge_png(*size)
    with pytest.raises(InputError, match=f"{size[0]}x{size[1]} pixels") as info:
        service.submit_report(report(demo), photo=data)
    assert info.value.field == "photo"
    order_id = service.submit_report(report(demo))["work_order_id"]
    service.act(order_id, "accept", WORKER)
    service.act(order_id, "start", WORKER)
    with pytest.raises(InputError, match="pixels") as info:
        service.act(order_id, "resolve", WORKER, feedback="修好了", photo=data)
    assert info.value.field == "photo"
    assert service.order(order_id)["state"] == "in_progress"


def test_a_webp_declaring_a_huge_canvas_is_refused_before_it_is_opened():
    data = _webp_canvas(16000, 16000)
    assert _pillow_bytes_allocated(lambda: check_photo(data)) == 0
    with pytest.raises(InputError, match="16000x16000 pixels") as info:
        check_photo(data)
    assert info.value.field == "photo"


def test_a_large_baseline_jpeg_is_decoded_and_stored_at_half_size(service, demo):
    data = _jpeg((6000, 4500))  # 27 million pixels, as a 32-50 MP phone mode writes
    assert 6000 * 4500 > MAX_PIXELS
    allocated = _pillow_bytes_allocated(lambda: check_photo(data))
    assert allocated < 40_000_000  # the full size would take 108 MB
    answer = service.submit_report(report(demo), photo=data)
    stored = service.order(answer["work_order_id"])["reports"][0]["photo"]
    with Image.open(service.media / stored) as saved:
        assert saved.size == (3000, 2250)
    with Image.open(service.media / stored.replace(".jpg", ".thumb.jpg")) as thumb:
        assert thumb.size == (320, 240)


def test_half_size_fits_every_jpeg_within_the_limits():
    """check_photo decodes a large JPEG at 1/2 only: whatever its shape, a JPEG of at most
    MAX_JPEG_PIXELS (each side at most 65535, 16 bits in its header) halved, rounded up, holds at
    most (w + 1)(h + 1) / 4 <= (MAX_JPEG_PIXELS + 2 * 65535 + 1) / 4 pixels."""
    assert (MAX_JPEG_PIXELS + 2 * 65535 + 1) / 4 <= MAX_PIXELS


def test_a_large_progressive_jpeg_is_refused_before_it_is_decoded():
    data = _jpeg((6000, 4500), progressive=True)  # would buffer the full image's coefficients
    assert _pillow_bytes_allocated(lambda: check_photo(data)) == 0
    with pytest.raises(InputError, match="6000x4500 pixels; at most 25,000,000"):
        check_photo(data)


@pytest.mark.parametrize("kind", ["JPEG", "PNG", "WEBP"])
def test_normal_photos_still_store_upright_and_without_metadata(service, demo, kind):
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned; stored turned upright
    exif[0x010F] = "PhoneMaker"
    extra = {"comment": b"secret note"} if kind == "JPEG" else {}
    buffer = io.BytesIO()
    image.save(buffer, kind, exif=exif, icc_profile=b"\0" * 128 if kind == "WEBP" else None,
               **extra)
    answer = service.submit_report(report(demo), photo=buffer.getvalue())
    stored = service.order(answer["work_order_id"])["reports"][0]["photo"]
    with Image.open(service.media / stored) as saved:
        assert saved.format == kind and saved.size == (48, 64)
        assert not saved.getexif() and not {"exif", "icc_profile", "comment"} & set(saved.info)
    answer = service.submit_report(report(demo, 120), photo=photo(kind))
    assert service.order(answer["work_order_id"])["reports"][0]["photo"]
