"""Image: any picture a user hands us, decoded once into validated RGB and hashed by its pixels."""

from __future__ import annotations

import base64
import binascii
import io
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ImageError
from .pixelhash import pixel_digest

if TYPE_CHECKING:
    import numpy as np
    import PIL.Image

__all__ = ["DEFAULT_MAX_PIXELS", "Image"]

#: Above this many pixels an input is refused as a likely decompression bomb (about 7,000 x 7,000).
DEFAULT_MAX_PIXELS = 50_000_000
#: Above this many pixels (about 320 x 320) decoding takes a millisecond or more here: see Image.heavy
HEAVY_PIXELS = 100_000


def _describe(source: Any) -> str:
    """A short, secret-free name for an input, used in error messages and reprs."""
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text.startswith("data:"):
            return f"data URL ({text[5:].split(',', 1)[0].split(';', 1)[0] or 'no type'}, {len(text)} chars)"
        if text.startswith(("http://", "https://")):
            return text.split("?", 1)[0]  # a query string may carry a signed token
        return text
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if hasattr(source, "read"):
        return f"<file {getattr(source, 'name', type(source).__name__)}>"
    shape = getattr(source, "shape", None)
    if shape is not None:
        return f"<array {'x'.join(map(str, shape))} {getattr(source, 'dtype', '')}>"
    return f"<{type(source).__name__}>"


def _read_data_url(url: str, name: str) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep:
        raise ImageError(f"cannot read image {name}: a data URL needs a comma before its payload")
    if not header[5:].startswith("image/"):
        raise ImageError(f"cannot read image {name}: data URL type must be image/*, got {header[5:] or 'none'!r}")
    if not header.endswith(";base64"):
        raise ImageError(f"cannot read image {name}: only base64 data URLs are supported (add ;base64)")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError(f"cannot read image {name}: the data URL payload is not valid base64") from None


def _to_rgb(im: PIL.Image.Image, name: str) -> PIL.Image.Image:
    """Convert any Pillow mode to RGB; transparency is composited over white."""
    from PIL import Image as PILImage

    if im.mode == "RGB":
        return im
    if im.mode in ("I", "F", "I;32", "I;32B", "I;32L"):
        raise ImageError(
            f"cannot read image {name}: mode {im.mode} (32-bit) has no standard 0-255 scale; "
            "save it as an 8-bit or 16-bit image first"
        )
    if im.mode.startswith("I;16"):
        import numpy as np

        eight_bit = (np.asarray(im).astype(np.uint16) >> 8).astype(np.uint8)
        return PILImage.fromarray(eight_bit, "L").convert("RGB")
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    try:
        if has_alpha:
            rgba = im.convert("RGBA")
            white = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
            return PILImage.alpha_composite(white, rgba).convert("RGB")
        return im.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageError(f"cannot read image {name}: mode {im.mode} cannot be converted to RGB ({exc})") from None


def _sendable_type(header: PIL.Image.Image) -> str | None:
    """The MIME type under which the encoded bytes might be sent unchanged (EXIF not yet checked)."""
    if header.format not in ("PNG", "JPEG", "WEBP") or header.mode not in ("RGB", "L"):
        return None
    if "transparency" in header.info or getattr(header, "n_frames", 1) > 1:
        return None
    return f"image/{header.format.lower()}"


class Image:
    """One RGB picture, validated, with a hash of its decoded pixels.

    Accepts a path (``str`` or ``Path``), ``bytes``, a binary file object, a PIL image, a
    numpy ``HxWx3`` (or ``HxW``, ``HxWx4``) ``uint8`` array, or a ``data:image/...;base64,`` URL.
    ``http(s)`` URLs are refused unless ``allow_remote=True`` (public addresses only, see
    :mod:`mmbridge.remote`). ``lazy=True`` checks the header now and decodes pixels on first use,
    so a cache can answer from :attr:`source_hash` without decoding.
    """

    __slots__ = (
        "_encoded",
        "_format",
        "_header",
        "_header_size",
        "_hash",
        "_lock",
        "_mime",
        "_orientation",
        "_padded",
        "_pil",
        "_source_hash",
        "max_pixels",
        "name",
    )

    def __init__(
        self,
        source: Any,
        *,
        lazy: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        allow_remote: bool = False,
        remote_max_bytes: int = 20_000_000,
        remote_timeout_s: float = 10.0,
    ) -> None:
        self.name = _describe(source)
        self.max_pixels = max_pixels
        self._pil: PIL.Image.Image | None = None
        self._header: PIL.Image.Image | None = None  # opened, not yet decoded
        self._lock = threading.RLock()  # a lazy image may be decoded from a provider's worker thread
        self._hash: str | None = None
        self._encoded: bytes | None = None
        self._source_hash: str | None = None
        self._mime: str | None = None  # set when the encoded bytes may be sent as they are
        self._orientation: int | None = None  # the EXIF orientation tag, once known
        self._padded = True  # Pillow, not the caller, made the pixels (see mmbridge.pixelhash)
        self._format: str | None = None  # the encoded input's format (JPEG, PNG...), if it had one
        if isinstance(source, Image):
            self._copy_from(source)
            return
        encoded = self._read_encoded(source, allow_remote, remote_max_bytes, remote_timeout_s)
        if encoded is None:
            self._pil = self._from_decoded(source)
            self._header_size = self._pil.size
            return
        self._encoded = encoded
        self._header = self._open(encoded)  # validates format and pixel count now
        self._header_size = self._header.size
        self._mime = _sendable_type(self._header)
        self._format = self._header.format
        if not lazy:
            self._decode()

    # -- construction ---------------------------------------------------------------------------

    def _copy_from(self, other: Image) -> None:
        self.name, self.max_pixels = other.name, other.max_pixels
        self._pil, self._hash, self._header_size = other._pil, other._hash, other._header_size
        self._encoded, self._source_hash = other._encoded, other._source_hash
        self._header = None  # an unloaded Pillow image must not be shared between two owners
        self._mime, self._orientation, self._padded = other._mime, other._orientation, other._padded
        self._format = other._format

    def _read_encoded(self, source: Any, allow_remote: bool, max_bytes: int, timeout_s: float) -> bytes | None:
        """The encoded bytes of the input, or None when it is already a decoded picture."""
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
        elif isinstance(source, str) and source.startswith("data:"):
            data = _read_data_url(source, self.name)
        elif isinstance(source, str) and source.startswith(("http://", "https://")):
            if not allow_remote:
                raise ImageError(
                    f"cannot read image {self.name}: remote URLs are off; "
                    "download the file, or set allow_remote_images = true in mmbridge.toml"
                )
            from .remote import fetch_image_bytes

            data = fetch_image_bytes(source, max_bytes=max_bytes, timeout_s=timeout_s)
        elif isinstance(source, (str, os.PathLike)):
            path = Path(source)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise ImageError(f"cannot read image {self.name}: no such file") from None
            except IsADirectoryError:
                raise ImageError(f"cannot read image {self.name}: it is a directory, not a file") from None
            except OSError as exc:
                raise ImageError(f"cannot read image {self.name}: {exc.strerror or exc}") from None
        elif hasattr(source, "read"):
            data = source.read()
            if not isinstance(data, (bytes, bytearray)):
                raise ImageError(f"cannot read image {self.name}: open the file in binary mode ('rb')")
            data = bytes(data)
        else:
            return None
        if not data:
            raise ImageError(f"cannot read image {self.name}: it is empty (0 bytes)")
        return data

    def _open(self, data: bytes) -> PIL.Image.Image:
        """Open the header: format and size are known after this, pixels are not decoded yet."""
        import PIL.Image as PILImage

        try:
            im = PILImage.open(io.BytesIO(data))
        except PILImage.DecompressionBombError:
            raise ImageError(f"cannot read image {self.name}: too many pixels (decompression bomb)") from None
        except (PILImage.UnidentifiedImageError, OSError, SyntaxError, ValueError):
            head = data[:256]
            textual = all(32 <= b < 127 or b in b"\t\r\n" for b in head)
            kind = "text or SVG" if textual else "unknown binary data"
            raise ImageError(
                f"cannot read image {self.name}: not an image format Pillow can decode (looks like {kind}); "
                "use PNG, JPEG, GIF, WebP, BMP or TIFF"
            ) from None
        self._check_pixels(im.size)
        return im

    def _check_pixels(self, size: tuple[int, int]) -> None:
        w, h = size
        if w <= 0 or h <= 0:
            raise ImageError(f"cannot read image {self.name}: it has no pixels ({w}x{h})")
        if w * h > self.max_pixels:
            raise ImageError(
                f"cannot read image {self.name}: {w}x{h} is over the limit of {self.max_pixels:,} pixels "
                "(a possible decompression bomb); resize it or raise max_pixels"
            )

    def _from_decoded(self, source: Any) -> PIL.Image.Image:
        import PIL.Image as PILImage
        from PIL import ImageOps

        if isinstance(source, PILImage.Image):
            self._check_pixels(source.size)
            im = ImageOps.exif_transpose(source) or source
            self._padded = im.mode != "RGB"  # converted here, or the caller's own RGB pixels
            return _to_rgb(im, self.name)
        if hasattr(source, "__array_interface__") and hasattr(source, "shape"):
            return self._from_array(source)
        raise ImageError(
            f"cannot read image {self.name}: expected a path, bytes, a binary file, a PIL image, "
            "a numpy uint8 array or a data: URL"
        )

    def _from_array(self, array: Any) -> PIL.Image.Image:
        import numpy as np
        import PIL.Image as PILImage

        arr = np.asarray(array)
        if arr.dtype != np.uint8:
            raise ImageError(f"cannot read image {self.name}: dtype must be uint8; use arr.astype(np.uint8)")
        shape = arr.shape
        if arr.ndim == 2:
            mode = "L"
        elif arr.ndim == 3 and shape[2] in (3, 4):
            mode = "RGB" if shape[2] == 3 else "RGBA"
        else:
            raise ImageError(f"cannot read image {self.name}: expected shape HxWx3, HxWx4 or HxW")
        self._check_pixels((shape[1], shape[0]))
        return _to_rgb(PILImage.fromarray(np.ascontiguousarray(arr), mode), self.name)

    def _decode(self) -> PIL.Image.Image:
        if self._pil is not None:
            return self._pil
        with self._lock:
            return self._decode_locked()

    def _decode_locked(self) -> PIL.Image.Image:
        if self._pil is None:
            from PIL import ImageOps

            assert self._encoded is not None
            im, self._header = self._header or self._open(self._encoded), None
            try:
                im.load()  # the first frame of an animation; truncated data fails here
                self._orientation = im.getexif().get(0x0112, 1)
                ImageOps.exif_transpose(im, in_place=True)
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise ImageError(f"cannot read image {self.name}: the file is damaged or truncated ({exc})") from None
            self._pil = _to_rgb(im, self.name)
        return self._pil

    # -- what providers and caches use ----------------------------------------------------------

    @property
    def pil(self) -> PIL.Image.Image:
        """The decoded RGB picture. Shared, not copied: do not modify it."""
        return self._decode()

    def to_numpy(self) -> np.ndarray:
        """The pixels as a new ``HxWx3`` ``uint8`` array."""
        import numpy as np

        return np.asarray(self._decode())

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) after EXIF orientation is applied."""
        return self._decode().size

    @property
    def content_hash(self) -> str:
        """XXH3-128 of the decoded RGB pixels and the size: equal pictures hash equal, whatever the input."""
        if self._hash is None:
            self._hash = pixel_digest(self._decode(), padded=self._padded)
        return self._hash

    @property
    def source_hash(self) -> str | None:
        """XXH3-128 of the encoded input bytes (None for PIL and numpy inputs); needs no decode (a
        512x512 PNG: 9 us, where sha256 took 440 us, most of a cache hit)."""
        if self._source_hash is None and self._encoded is not None:
            import xxhash

            self._source_hash = xxhash.xxh3_128_hexdigest(self._encoded)
        return self._source_hash

    @property
    def known_hash(self) -> str | None:
        """The content hash if it costs nothing now (computed before), else None."""
        return self._hash

    def _exif_orientation(self) -> int:
        """The EXIF orientation of the input, without decoding when the header can tell.

        JPEG and WebP carry EXIF in the header. A PNG may put its eXIf chunk after the pixels, so
        a PNG whose chunks include no eXIf has none; one that does is decoded.
        """
        with self._lock:
            if self._orientation is None:
                header = self._header
                if header is not None and header.format == "PNG" and self._encoded is not None:
                    if not _png_has_exif(self._encoded):
                        self._orientation = 1
                    else:
                        self._decode()
                elif header is not None:
                    try:
                        self._orientation = header.getexif().get(0x0112, 1)
                    except Exception:  # noqa: BLE001 - unreadable metadata: decoding decides
                        self._decode()
                else:
                    self._decode()
            return self._orientation or 1

    @property
    def is_decoded(self) -> bool:
        return self._pil is not None

    @property
    def heavy(self) -> bool:
        """Whether decoding or re-encoding it takes long enough (about a millisecond or more) that an
        event loop should hand the work to a thread; known from the header, without decoding."""
        return self.pixel_count > HEAVY_PIXELS

    @property
    def pixel_count(self) -> int:
        """Width times height, known from the header without decoding."""
        w, h = self._pil.size if self._pil is not None else self._header_size
        return w * h

    def to_data_url(self, *, max_side: int | None = None, format: str | None = None) -> str:
        """A ``data:image/...;base64,`` URL of the picture, shrunk to fit ``max_side`` if given.

        When the input was a PNG, JPEG or WebP file that already fits and decodes to the same RGB
        picture (no alpha, no EXIF rotation, one frame), its bytes are sent as they are: no
        decode, no re-encode, no generation loss. Otherwise it is encoded as ``format``; by
        default JPEG (quality 90) when the input was a JPEG, which is lossy already and as a PNG
        would be five to ten times larger, and PNG for everything else.
        """
        if format is None:
            format = "JPEG" if self._format == "JPEG" else "PNG"
        fits = max_side is None or max(self._header_size) <= max_side
        if self._mime is not None and self._encoded is not None and fits and self._exif_orientation() == 1:
            return f"data:{self._mime};base64,{base64.b64encode(self._encoded).decode('ascii')}"
        im = self._decode()
        if max_side is not None and max(im.size) > max_side:
            im = im.copy()
            im.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        fmt = format.upper()
        im.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        return f"data:image/{fmt.lower()};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"

    # -- value semantics ------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Image):
            return NotImplemented
        return self.content_hash == other.content_hash

    def __hash__(self) -> int:
        return hash(self.content_hash)

    def __repr__(self) -> str:
        w, h = self._pil.size if self._pil is not None else self._header_size
        digest = f", hash={self._hash[:12]}" if self._hash else ""
        return f"Image({self.name!r}, {w}x{h}{digest})"

    @classmethod
    def __get_pydantic_core_schema__(cls, source_type: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            lambda value: value if isinstance(value, Image) else Image(value),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda image: image.content_hash),
        )


def _png_has_exif(data: bytes) -> bool:
    """Whether a PNG has an eXIf chunk, read from the chunk headers (a few, however large the
    picture: a scan of every byte took 0.12 ms for a 256x256 photo-like PNG); damaged chunk
    structure falls back to the scan."""
    pos, end = 8, len(data)
    while pos + 8 <= end:
        kind = data[pos + 4 : pos + 8]
        if kind == b"eXIf":
            return True
        if kind == b"IEND":
            return False
        pos += 12 + int.from_bytes(data[pos : pos + 4], "big")
    return b"eXIf" in data
