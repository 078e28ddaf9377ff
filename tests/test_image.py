"""Image: every accepted input, hashing by pixels, and the corpus of bad inputs."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from mmbridge import Image, ImageError

from .conftest import encode, make_picture


def test_same_pixels_hash_the_same_whatever_the_input(tmp_path: Path, picture: PILImage.Image) -> None:
    png = encode(picture, "PNG")
    path = tmp_path / "p.png"
    path.write_bytes(png)
    data_url = "data:image/png;base64," + base64.b64encode(png).decode()
    inputs = [str(path), path, png, io.BytesIO(png), picture, np.asarray(picture), data_url, encode(picture, "BMP")]
    hashes = {Image(x).content_hash for x in inputs}
    assert len(hashes) == 1
    assert Image(path).size == (48, 32)


def test_jpeg_file_and_its_decoded_array_hash_the_same(tmp_path: Path, picture: PILImage.Image) -> None:
    path = tmp_path / "p.jpg"
    picture.save(path, quality=80)
    decoded = np.asarray(PILImage.open(path).convert("RGB"))
    assert Image(path).content_hash == Image(decoded).content_hash
    assert Image(path).content_hash != Image(picture).content_hash  # JPEG changed the pixels


def test_padding_bytes_a_caller_left_in_an_rgb_image_do_not_change_the_hash(picture: PILImage.Image) -> None:
    # Pillow stores RGB as 4 bytes a pixel; one built from raw RGBX bytes keeps whatever the 4th was
    rgbx = np.concatenate([np.asarray(picture), np.full((*np.asarray(picture).shape[:2], 1), 7, np.uint8)], axis=2)
    odd = PILImage.frombytes("RGB", picture.size, rgbx.tobytes(), "raw", "RGBX")
    assert odd.tobytes("raw", "RGBX") != picture.tobytes("raw", "RGBX")  # the padding really differs
    assert Image(odd).content_hash == Image(encode(picture, "PNG")).content_hash


def test_the_in_place_hash_and_the_copying_fallback_agree(
    monkeypatch: pytest.MonkeyPatch, picture: PILImage.Image
) -> None:
    import xxhash

    from mmbridge import pixelhash

    inputs = [encode(picture, "PNG"), encode(picture, "JPEG"), picture, encode(picture.convert("P"), "PNG")]
    assert pixelhash._hash_in_place(xxhash.xxh3_128(), Image(inputs[0]).pil)  # the zero-copy path is taken
    in_place = [Image(x).content_hash for x in inputs]
    monkeypatch.setattr(pixelhash, "_hash_in_place", lambda digest, im: False)  # as for a multi-block picture
    assert [Image(x).content_hash for x in inputs] == in_place


def test_different_pictures_hash_differently() -> None:
    assert Image(make_picture(seed=1)).content_hash != Image(make_picture(seed=2)).content_hash
    # the size is part of the hash: the same bytes laid out differently are another picture
    flat = np.zeros((4, 6, 3), np.uint8)
    assert Image(flat).content_hash != Image(flat.reshape(6, 4, 3)).content_hash


def test_exif_orientation_is_applied(picture: PILImage.Image) -> None:
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    rotated = Image(encode(picture, "JPEG", exif=exif.tobytes(), quality=95))
    assert rotated.size == (32, 48)
    upright = Image(encode(picture.transpose(PILImage.Transpose.ROTATE_270), "JPEG", quality=95))
    assert np.abs(rotated.to_numpy().astype(int) - upright.to_numpy().astype(int)).mean() < 3


def test_alpha_is_composited_over_white() -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red stays red
    rgba[0, 1] = (0, 0, 255, 0)  # fully transparent becomes white
    out = Image(encode(PILImage.fromarray(rgba, "RGBA"), "PNG")).to_numpy()
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[0, 1]) == (255, 255, 255)
    assert Image(rgba).content_hash == Image(encode(PILImage.fromarray(rgba, "RGBA"), "PNG")).content_hash


def test_palette_gray_and_16_bit_become_rgb() -> None:
    gray = Image(encode(PILImage.new("L", (3, 3), 100), "PNG"))
    assert tuple(gray.to_numpy()[0, 0]) == (100, 100, 100)
    palette = Image(encode(make_picture().convert("P"), "GIF"))
    assert palette.pil.mode == "RGB"
    deep = PILImage.fromarray(np.full((2, 2), 0xC800, np.uint16))
    assert tuple(Image(encode(deep, "PNG")).to_numpy()[0, 0]) == (0xC8, 0xC8, 0xC8)


def test_first_frame_of_an_animation() -> None:
    frames = [PILImage.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    out = Image(buf.getvalue()).to_numpy()
    assert out[0, 0, 0] > 200 and out[0, 0, 2] < 50


def test_lazy_image_defers_decoding_but_checks_the_header(png_path: Path) -> None:
    lazy = Image(png_path, lazy=True)
    assert not lazy.is_decoded
    assert lazy.source_hash is not None and not lazy.is_decoded
    assert lazy.content_hash == Image(png_path).content_hash and lazy.is_decoded
    with pytest.raises(ImageError, match="not an image"):
        Image(b"hello world", lazy=True)


def test_truncated_lazy_image_fails_with_image_error_on_use(picture: PILImage.Image) -> None:
    lazy = Image(encode(picture, "PNG")[:200], lazy=True)
    with pytest.raises(ImageError, match="damaged or truncated"):
        _ = lazy.content_hash


def test_data_url_round_trip_and_resize(picture: PILImage.Image) -> None:
    url = Image(picture).to_data_url(max_side=24)
    assert url.startswith("data:image/png;base64,")
    assert Image(url).size == (24, 16)
    assert Image(Image(picture).to_data_url()).content_hash == Image(picture).content_hash


def test_repr_is_short_and_value_semantics(png_path: Path) -> None:
    a, b = Image(png_path), Image(png_path.read_bytes())
    assert a == b and hash(a) == hash(b)
    assert "48x32" in repr(a) and str(png_path) in repr(a)


def _bomb_png(tmp_path: Path) -> Path:
    path = tmp_path / "bomb.png"
    PILImage.new("1", (9000, 9000)).save(path)  # 81 Mpx, a few kB on disk
    return path


def _tiff(mode: str, value: float) -> bytes:
    return encode(PILImage.new(mode, (4, 4), value), "TIFF")


BAD = {
    "zero bytes": (lambda t: b"", "empty"),
    "random bytes": (lambda t: bytes(range(256)) * 4, "not an image"),
    "text file": (lambda t: _write(t, "notes.txt", b"just some text\n"), "not an image"),
    "svg": (lambda t: _write(t, "x.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>'), "SVG"),
    "json": (lambda t: b'{"image": "no"}', "not an image"),
    "truncated png": (lambda t: encode(make_picture(), "PNG")[:150], "truncated"),
    "truncated jpeg": (lambda t: encode(make_picture(400, 400), "JPEG")[:900], "truncated"),
    "bomb": (_bomb_png, "over the limit"),
    "float tiff": (lambda t: _tiff("F", 0.5), "mode F"),
    "int32 tiff": (lambda t: _tiff("I", 70000), "mode I"),
    "missing file": (lambda t: t / "missing.png", "no such file"),
    "directory": (lambda t: t, "directory"),
    "float array": (lambda t: np.zeros((4, 4, 3), np.float32), "uint8"),
    "wrong shape": (lambda t: np.zeros((4, 4, 2), np.uint8), "shape"),
    "empty array": (lambda t: np.zeros((0, 4, 3), np.uint8), "no pixels"),
    "data url not base64": (lambda t: "data:image/png;base64,@@@", "base64"),
    "data url wrong type": (lambda t: "data:text/plain;base64,aGk=", "image/"),
    "remote url": (lambda t: "https://example.com/cat.png?token=s3cret", "remote URLs are off"),
    "text-mode file": (lambda t: io.StringIO("abc"), "binary mode"),
    "unsupported type": (lambda t: 42, "expected a path"),
}


def _write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_raises_image_error_naming_it(case: str, tmp_path: Path) -> None:
    make, expected = BAD[case]
    source = make(tmp_path)
    with pytest.raises(ImageError) as info:
        Image(source)
    message = str(info.value)
    assert expected.lower() in message.lower()
    assert "\n" not in message
    assert "s3cret" not in message  # query strings may carry tokens
    if isinstance(source, Path):
        assert str(source) in message


def test_data_url_sends_fitting_files_unchanged_and_re_encodes_the_rest(picture: PILImage.Image) -> None:
    jpeg = encode(picture, "JPEG", quality=90)
    url = Image(jpeg, lazy=True).to_data_url(max_side=64)
    assert url == "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    assert Image(jpeg).to_data_url(max_side=16).startswith("data:image/jpeg;base64,")  # resized, still a JPEG
    assert Image(encode(picture, "PNG")).to_data_url(max_side=16).startswith("data:image/png;base64,")
    exif = PILImage.Exif()
    exif[0x0112] = 6
    rotated = encode(picture, "JPEG", exif=exif.tobytes())
    assert Image(Image(rotated).to_data_url()).size == (32, 48)  # rotation applied before sending
    rgba = encode(picture.convert("RGBA"), "PNG")
    assert Image(rgba).to_data_url() != "data:image/png;base64," + base64.b64encode(rgba).decode()


@pytest.mark.parametrize("where", ["before the pixels", "after the pixels"])
def test_a_png_exif_orientation_is_found_wherever_its_chunk_lies(picture: PILImage.Image, where: str) -> None:
    import base64
    import struct
    import zlib

    plain = encode(picture, "PNG")
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    body = exif.tobytes()
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    at = plain.index(b"IDAT") - 4 if where == "before the pixels" else plain.index(b"IEND") - 4
    tagged = Image(plain[:at] + chunk + plain[at:])
    assert tagged.size == (picture.height, picture.width)  # turned as EXIF says
    assert base64.b64decode(tagged.to_data_url().split(",")[1]) != plain[:at] + chunk + plain[at:]
    untouched = Image(plain)
    assert base64.b64decode(untouched.to_data_url().split(",")[1]) == plain  # no eXIf: sent as it is
