"""Generates the image corpus for tests/test_images.c (outputs are committed; rerun after changing this):

EXPECTED     bad files: filename <TAB> substring of the error <TAB> VC_ERR_* code
GOOD         decodable files: filename <TAB> w <TAB> h <TAB> raw RGB oracle in expected/ <TAB> max abs diff
ORIENTATION  EXIF-rotated JPEGs: filename <TAB> w <TAB> h <TAB> corner of the red mark <TAB> of the green one

Oracles come from PIL: Image.convert('RGB') after ImageOps.exif_transpose, as a viewer shows the image.
usage: /usr/bin/python3 tests/assets/images/make_bad.py
"""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20240601)


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def encode(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def smooth_rgb(w, h):
    """Smooth content compresses into a few hundred bytes and still has every channel varying."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.stack([255 * x / max(w - 1, 1), 255 * y / max(h - 1, 1), 127 + 120 * np.sin((x + y) / 3)], -1)
    return Image.fromarray(a.clip(0, 255).astype(np.uint8), "RGB")


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def patch_png_size(png, w, h):
    assert png[12:16] == b"IHDR"
    ihdr = struct.pack(">II", w, h) + png[24:29]
    return png[:8] + png_chunk(b"IHDR", ihdr) + png[33:]


def patch_jpeg_sof(jpg, w, h):
    i = jpg.index(b"\xff\xc0")  # baseline SOF0: length(2) precision(1) height(2) width(2)
    return jpg[:i + 5] + struct.pack(">HH", h, w) + jpg[i + 9:]


def exif_app1(orientation, big_endian):
    e = ">" if big_endian else "<"
    tiff = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    tiff += struct.pack(e + "H", 1) + struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff += struct.pack(e + "I", 0)
    body = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def with_app1(jpg, app1):
    assert jpg[:2] == b"\xff\xd8"
    i = 2
    if jpg[2:4] == b"\xff\xe0":  # keep JFIF APP0 first
        i = 4 + struct.unpack(">H", jpg[4:6])[0]
    return jpg[:i] + app1 + jpg[i:]


def many_scan_jpeg(ac_bands):
    """A legal progressive 8x8 grey JPEG (all coefficients zero, so mid-grey) with 14 successive-approximation
    scans for DC and for each of the first ac_bands AC coefficients. One-code Huffman tables make every scan
    a single 0 bit (category 0 / EOB), padded to 0x7F."""
    def seg(marker, body):
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body
    one_code = bytes([1] + [0] * 15) + b"\x00"
    out = b"\xff\xd8" + seg(0xDB, b"\x00" + bytes([1] * 64))
    out += seg(0xC2, struct.pack(">BHHB", 8, 8, 8, 1) + b"\x01\x11\x00")
    out += seg(0xC4, b"\x00" + one_code) + seg(0xC4, b"\x10" + one_code)
    for band in range(ac_bands + 1):
        for al in range(13, -1, -1):
            ah = 0 if al == 13 else al + 1
            out += seg(0xDA, b"\x01\x01\x00" + bytes([band, band, ah << 4 | al])) + b"\x7f"
    return out + b"\xff\xd9"


def pil_rgb(data):
    im = Image.open(io.BytesIO(data))
    im = ImageOps.exif_transpose(im)
    return im.convert("RGB")


def bad_corpus():
    rows = []

    def bad(name, data, substring, code):
        write(name, data)
        rows.append((name, substring, code))

    jpg = encode(smooth_rgb(64, 48), "JPEG", quality=90)
    png = encode(smooth_rgb(64, 48), "PNG")
    bad("empty.jpg", b"", "empty file", "VC_ERR_FORMAT")
    bad("truncated.jpg", jpg[:len(jpg) * 6 // 10], "Premature end of JPEG file", "VC_ERR_FORMAT")
    idat = png.index(b"IDAT")
    bad("truncated.png", png[:idat + 40], "truncated PNG", "VC_ERR_FORMAT")
    bad("bad-zlib.png", png[:idat + 4] + b"\0\0" + png[idat + 6:], "cannot decode PNG", "VC_ERR_FORMAT")
    bad("corrupt.jpg", b"\xff\xd8" + rng.integers(0, 256, 2000, dtype=np.uint8).tobytes(), "corrupt JPEG",
        "VC_ERR_FORMAT")
    # an EOI marker in the middle of the entropy-coded data
    sos = jpg.index(b"\xff\xda")
    mid = (sos + len(jpg)) // 2
    bad("marker-in-scan.jpg", jpg[:mid] + b"\xff\xd9" + jpg[mid + 2:], "Corrupt JPEG data", "VC_ERR_FORMAT")
    bad("not-an-image.jpg", b"This is a text file that claims to be a JPEG by its name.\n", "unsupported image format",
        "VC_ERR_UNSUPPORTED")
    bad("fake.tiff", b"II*\0" + bytes(60), "unsupported image format (TIFF)", "VC_ERR_UNSUPPORTED")
    bad("huge.png", patch_png_size(png, 100000, 100000), "image too large", "VC_ERR_UNSUPPORTED")
    bad("huge.jpg", patch_jpeg_sof(jpg, 20000, 20000), "image too large", "VC_ERR_UNSUPPORTED")
    bad("wide.png", patch_png_size(png, 16385, 1), "image too large", "VC_ERR_UNSUPPORTED")
    # 12000 x 9000 = 108 megapixels: each side is fine, the area is not
    bad("area.jpg", patch_jpeg_sof(jpg, 12000, 9000), "image too large", "VC_ERR_UNSUPPORTED")
    bmp = b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, 54)
    bmp += struct.pack("<IiiHHIIiiII", 40, 1000000, 1000000, 1, 24, 0, 0, 2835, 2835, 0, 0) + bytes(64)
    bad("huge.bmp", bmp, "image too large", "VC_ERR_UNSUPPORTED")
    gif = encode(Image.new("P", (4, 4)), "GIF")
    bad("huge.gif", gif[:6] + struct.pack("<HH", 65535, 65535) + gif[10:], "image too large", "VC_ERR_UNSUPPORTED")
    bad("truncated.gif", encode(smooth_rgb(40, 30).convert("P"), "GIF")[:300], "truncated or corrupt GIF",
        "VC_ERR_FORMAT")
    bad("truncated.bmp", encode(smooth_rgb(12, 10), "BMP")[:200], "truncated BMP", "VC_ERR_FORMAT")
    bad("truncated.ppm", encode(smooth_rgb(12, 10), "PPM")[:200], "truncated PNM", "VC_ERR_FORMAT")
    bad("zero-size.png", patch_png_size(png, 0, 48), "empty 0x48 image", "VC_ERR_FORMAT")
    bad("zero-size.jpg", patch_jpeg_sof(jpg, 64, 0), "corrupt JPEG", "VC_ERR_FORMAT")
    # two-component JPEG: legal, but no colour interpretation exists
    la = encode(Image.new("L", (8, 8), 100), "JPEG")
    sof = la.index(b"\xff\xc0")
    two = la[:sof + 2] + struct.pack(">H", 8 + 2 * 3) + la[sof + 4:sof + 9] + b"\x02" + la[sof + 10:sof + 13]
    two += b"\x02\x11\x00" + la[sof + 13:]
    bad("two-channel.jpg", two, "unsupported JPEG colour space", "VC_ERR_UNSUPPORTED")
    # 14 + 40 * 14 = 574 scans: legal, but past the decoder's limit of 500
    bad("many-scans.jpg", many_scan_jpeg(40), "progressive scans", "VC_ERR_UNSUPPORTED")
    return rows


def good_corpus():
    rows = []
    os.makedirs(os.path.join(HERE, "expected"), exist_ok=True)

    def good(name, data, tol=0):
        write(name, data)
        rgb = pil_rgb(data)
        raw = "expected/" + name + ".rgb"
        write(raw, np.asarray(rgb, dtype=np.uint8).tobytes())
        rows.append((name, str(rgb.width), str(rgb.height), raw, str(tol)))

    base = smooth_rgb(13, 9)
    good("gray.png", encode(base.convert("L"), "PNG"))
    good("gray-alpha.png", encode(Image.merge("LA", (base.convert("L"), base.getchannel("B"))), "PNG"))
    good("palette.png", encode(base.convert("P", palette=Image.ADAPTIVE, colors=7), "PNG"))
    good("palette-trns.png", encode(base.convert("P", palette=Image.ADAPTIVE, colors=7), "PNG", transparency=2))
    good("rgba.png", encode(Image.merge("RGBA", base.split() + (base.getchannel("G"),)), "PNG"))
    # 16-bit RGB PNG (PIL cannot write one): PIL and stb both keep the high byte
    a16 = np.asarray(base, dtype=np.uint16) * 257 + rng.integers(0, 256, (9, 13, 3)).astype(np.uint16)
    raw16 = b"".join(b"\0" + a16[y].astype(">u2").tobytes() for y in range(9))
    png16 = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 13, 9, 16, 2, 0, 0, 0))
    png16 += png_chunk(b"IDAT", zlib.compress(raw16)) + png_chunk(b"IEND", b"")
    good("rgb16.png", png16)
    good("rgb.jpg", encode(smooth_rgb(33, 17), "JPEG", quality=85))
    good("gray.jpg", encode(base.convert("L"), "JPEG", quality=90))
    good("cmyk.jpg", encode(smooth_rgb(16, 12).convert("CMYK"), "JPEG", quality=90))
    good("progressive.jpg", encode(smooth_rgb(33, 17), "JPEG", quality=85, progressive=True))
    good("rgb.bmp", encode(smooth_rgb(12, 10), "BMP"))
    good("palette.bmp", encode(base.convert("P", palette=Image.ADAPTIVE, colors=16), "BMP"))
    good("rgb.tga", encode(base, "TGA"))
    good("rle.tga", encode(base, "TGA", compression="tga_rle"))
    good("gray.pgm", encode(base.convert("L"), "PPM"))
    good("rgb.ppm", encode(base, "PPM"))
    good("single.gif", encode(base.convert("P", palette=Image.ADAPTIVE, colors=8), "GIF"))
    frames = [base.convert("P", palette=Image.ADAPTIVE, colors=8), smooth_rgb(13, 9).transpose(Image.FLIP_LEFT_RIGHT)]
    good("animated.gif", encode(frames[0], "GIF", save_all=True, append_images=[frames[1]], duration=100))
    good("448-scans.jpg", many_scan_jpeg(31))  # the same construction under the limit decodes
    # EXIF whose IFD offset points past the segment: ignored, the image loads unrotated
    bad_exif = bytearray(exif_app1(6, False))
    bad_exif[14:18] = struct.pack("<I", 0xFFFFFF00)
    good("exif-bad-offset.jpg", with_app1(encode(smooth_rgb(20, 10), "JPEG", quality=90), bytes(bad_exif)))
    return rows


def orientation_corpus():
    """48x24 blue picture, red square in the top-left corner and green in the top-right as stored; each file
    tags it with one EXIF orientation. PIL's exif_transpose says where the squares end up."""
    a = np.zeros((24, 48, 3), np.uint8)
    a[...] = (0, 0, 255)
    a[:12, :12] = (255, 0, 0)
    a[:12, -12:] = (0, 255, 0)
    jpg = encode(Image.fromarray(a), "JPEG", quality=95, subsampling=0)
    rows = []
    for o in range(1, 9):
        name = f"exif-orientation-{o}.jpg"
        data = with_app1(jpg, exif_app1(o, big_endian=(o % 2 == 0)))
        write(name, data)
        im = np.asarray(pil_rgb(data)).astype(int)
        h, w = im.shape[:2]
        corners = {"TL": im[2, 2], "TR": im[2, w - 3], "BL": im[h - 3, 2], "BR": im[h - 3, w - 3]}
        red = [k for k, v in corners.items() if v[0] > 200 and v[1] < 60 and v[2] < 60]
        green = [k for k, v in corners.items() if v[1] > 200 and v[0] < 60 and v[2] < 60]
        assert len(red) == 1 and len(green) == 1, (o, corners)
        rows.append((name, str(w), str(h), red[0], green[0]))
    return rows


def table(name, rows):
    with open(os.path.join(HERE, name), "w") as f:
        for r in rows:
            f.write("\t".join(r) + "\n")


if __name__ == "__main__":
    table("EXPECTED", bad_corpus())
    table("GOOD", good_corpus())
    table("ORIENTATION", orientation_corpus())
