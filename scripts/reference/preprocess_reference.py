#!/usr/bin/python3
"""torchvision 0.14 + Pillow 9.4 preprocessing of a set of image files, for the preprocessing parity tests.

    /usr/bin/python3 scripts/reference/preprocess_reference.py OUT_DIR [EXTRA_IMAGE ...]

Writes image files of many kinds to OUT_DIR/images/ (odd, non-square sizes; gradients plus noise, never constant):

- PNG written by Pillow: RGB, RGBA, L, LA, P with and without transparency, 1-bit, 16-bit gray ("I;16"), with an
  iCCP profile;
- PNG written by hand below (Pillow cannot write them): gray 1/2/4-bit, 16-bit RGB, 16-bit RGBA, 16-bit gray+alpha,
  Adam7-interlaced RGB / palette / gray, a gAMA chunk, palette of 2/4/16 colours at bit depth 1/2/4;
- JPEG: quality 75 and 95, 4:2:0 / 4:2:2 / 4:4:4, progressive, grayscale, an embedded ICC profile, CMYK;
- BMP (24-bit, 32-bit, 8-bit palette, 8-bit gray, 1-bit) and GIF (palette, with transparency, gray).

For each image, as torchvision sees it (``Image.open(f).convert("RGB")``), it writes to OUT_DIR/arrays/:

- ``NAME.decoded.u8``: the decoded uint8 HWC array;
- ``NAME.resize-N.u8``: after ``transforms.Resize(N)`` (Pillow bilinear on uint8), for several N, up and down;
- ``NAME.crop-C.u8``: after ``transforms.CenterCrop(C)`` of the decoded image (zero padding when C is larger);
- ``NAME.tensor-R-C.f32``: float32 CHW after ``Resize(R), CenterCrop(C), ToTensor(), Normalize(mean, std)``;
- ``NAME.rrc-I.u8``: ``F.resized_crop(img, top, left, h, w, [S, S])`` for fixed boxes (RandomResizedCrop's pixels).

EXTRA_IMAGEs (files written by the caller, e.g. JPEG subsamplings only the JDK's writer can make) are copied to
OUT_DIR/images/ and treated the same way, with the kind "extra: NAME".

OUT_DIR/manifest.json lists them all with their shapes; the Java tests compare their own results with these.
"""
import json
import os
import struct
import sys
import warnings
import zlib

import numpy as np
import torch
import torchvision
from PIL import Image, ImageCms
from torchvision import transforms
from torchvision.transforms import functional as F

warnings.filterwarnings("ignore", "Palette images with Transparency")
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
RESIZES = [7, 32, 100, 256]
CROPS = [16, 40]
TENSORS = [(32, 32), (37, 33), (256, 224)]

out = sys.argv[1]
os.makedirs(os.path.join(out, "images"), exist_ok=True)
os.makedirs(os.path.join(out, "arrays"), exist_ok=True)


def pattern(w, h, c, seed):
    """Floats in [0, 1], shape (h, w, c): tilted sinusoids, a ramp and noise; different per channel."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for _ in range(c):
        fx, fy, ph = rng.uniform(0.02, 0.3), rng.uniform(0.02, 0.3), rng.uniform(0, 6.28)
        ramp = xx / max(w - 1, 1) - yy / max(h - 1, 1)
        chans.append(0.5 + 0.35 * np.sin(fx * xx + fy * yy + ph) + 0.2 * ramp)
    a = np.stack(chans, -1) + rng.normal(0, 0.07, (h, w, c))
    return np.clip(a, 0, 1)


def levels(a, bits):
    return np.round(a * (2 ** bits - 1)).astype(np.int64)


def u8(w, h, c, seed):
    return levels(pattern(w, h, c, seed), 8).astype(np.uint8)


# ---- a minimal PNG writer, for what Pillow cannot write (low/high bit depths, interlacing, gAMA) ----

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _row_bytes(row, bits):
    flat = row.reshape(-1)
    if bits == 16:
        return flat.astype(">u2").tobytes()
    if bits == 8:
        return flat.astype(np.uint8).tobytes()
    per = 8 // bits
    vals = list(int(v) for v in flat) + [0] * (-len(flat) % per)
    outb = bytearray()
    for i in range(0, len(vals), per):
        byte = 0
        for v in vals[i:i + per]:
            byte = (byte << bits) | v
        outb.append(byte)
    return bytes(outb)


def _filtered(rows, bits, channels, which):
    """Scanlines with filter bytes; cycles filter types 0..4 over the rows so every unfilter path is exercised."""
    bpp = max(1, channels * bits // 8)
    data = bytearray()
    prev = None
    for i, row in enumerate(rows):
        raw = _row_bytes(row, bits)
        ftype = (i + which) % 5
        up = prev if prev is not None else bytes(len(raw))
        res = bytearray(len(raw))
        for x in range(len(raw)):
            a = raw[x - bpp] if x >= bpp else 0
            b = up[x]
            c = up[x - bpp] if x >= bpp else 0
            if ftype == 0:
                pred = 0
            elif ftype == 1:
                pred = a
            elif ftype == 2:
                pred = b
            elif ftype == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            res[x] = (raw[x] - pred) & 0xFF
        data.append(ftype)
        data += res
        prev = raw
    return bytes(data)


def write_png(path, samples, color_type, bits, palette=None, trns=None, interlace=False, gamma=None):
    h, w = samples.shape[:2]
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    samples = samples.reshape(h, w, channels)
    if interlace:
        raw = b""
        for p, (x0, y0, dx, dy) in enumerate(ADAM7):
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += _filtered(sub, bits, channels, p)
    else:
        raw = _filtered(samples, bits, channels, 0)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, color_type, 0, 0, int(interlace)))
    if gamma is not None:
        png += _chunk(b"gAMA", struct.pack(">I", int(round(gamma * 100000))))
    if palette is not None:
        png += _chunk(b"PLTE", bytes(palette))
    if trns is not None:
        png += _chunk(b"tRNS", bytes(trns))
    png += _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def palette_of(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3)).astype(np.uint8).reshape(-1).tolist()


def indices(w, h, n, seed):
    return np.minimum((pattern(w, h, 1, seed)[..., 0] * n).astype(np.int64), n - 1)


# ---- JPEG variants Pillow does not write, made by editing the markers of one it wrote ----

def _segments(data):
    """(marker, start, end) of each marker segment before the first SOS, then ("rest", start, len)."""
    segs, i = [], 2
    while True:
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        segs.append((marker, i, i + 2 + length))
        i += 2 + length
        if marker == 0xDA:
            segs.append(("rest", i, len(data)))
            return segs


def jpeg_edit(path, arr, mode="RGB", adobe_transform=None, ids=None):
    import io
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, "JPEG", quality=90, subsampling=0)
    data = buf.getvalue()
    parts = [data[:2]]
    for marker, start, end in _segments(data):
        seg = bytearray(data[start:end])
        if marker == 0xE0 or marker == 0xEE:
            continue  # drop JFIF and any Adobe marker; one is added below
        if marker in (0xC0, 0xC2) and ids is not None:
            for k in range(seg[9]):
                seg[10 + 3 * k] = ids[k]
        if marker == 0xDA and ids is not None:
            for k in range(seg[4]):
                seg[5 + 2 * k] = ids[k]
        if marker in (0xC0, 0xC2) and adobe_transform is not None:
            adobe = b"Adobe" + struct.pack(">HHHB", 100, 0, 0, adobe_transform)
            parts.append(b"\xff\xee" + struct.pack(">H", len(adobe) + 2) + adobe)
        parts.append(bytes(seg))
    with open(path, "wb") as f:
        f.write(b"".join(parts))


# ---- what Pillow does not write: GIF frames off the logical screen's origin, 16-bit BMP ----

def gif_moved_frame(path, arr_indices, n, seed, screen, offset, transparency=None):
    """A Pillow GIF whose logical screen size and first frame's position are rewritten."""
    import io
    buf = io.BytesIO()
    im = Image.fromarray(arr_indices.astype(np.uint8), "P")
    im.putpalette(palette_of(n, seed))
    kw = {} if transparency is None else {"transparency": transparency}
    im.save(buf, "GIF", **kw)
    data = bytearray(buf.getvalue())
    data[6:10] = struct.pack("<HH", *screen)
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while data[pos] != 0x2C:
        assert data[pos] == 0x21, "unexpected GIF block"
        pos += 2
        while data[pos]:
            pos += 1 + data[pos]
        pos += 1
    data[pos + 1:pos + 5] = struct.pack("<HH", *offset)
    with open(path, "wb") as f:
        f.write(bytes(data))


def write_bmp16(path, rgb, bitfields):
    """A 16-bit BMP: 5-5-5 with BI_RGB, or 5-6-5 with BI_BITFIELDS."""
    h, w = rgb.shape[:2]
    r, g, b = (rgb[..., 0].astype(np.int64), rgb[..., 1].astype(np.int64), rgb[..., 2].astype(np.int64))
    if bitfields:
        px = ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3)
    else:
        px = ((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3)
    row_bytes = (w * 2 + 3) // 4 * 4
    pixels = bytearray()
    for y in range(h - 1, -1, -1):
        line = px[y].astype("<u2").tobytes()
        pixels += line + bytes(row_bytes - len(line))
    masks = struct.pack("<III", 0xF800, 0x07E0, 0x001F) if bitfields else b""
    header_size = 14 + 40 + len(masks)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 16, 3 if bitfields else 0, len(pixels), 2835, 2835, 0, 0)
    head = b"BM" + struct.pack("<IHHI", header_size + len(pixels), 0, 0, header_size)
    with open(path, "wb") as f:
        f.write(head + info + masks + bytes(pixels))


def jpeg_damage(path, arr, cut):
    import io
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, "JPEG", quality=90)
    data = bytearray(buf.getvalue())
    middle = len(data) // 2
    if cut:
        data = data[:middle] + b"\xff\xd9"
    else:
        data[middle:middle + 40] = bytes([0x55]) * 40
    with open(path, "wb") as f:
        f.write(bytes(data))


# ---- the image set ----

images = []  # (name, path, kind)


def add(name, ext, kind, writer):
    path = os.path.join(out, "images", name + "." + ext)
    writer(path)
    images.append((name, path, kind))


def pil_save(arr, mode, **kw):
    def w(path):
        Image.fromarray(arr, mode).save(path, **kw)
    return w


def pil_save_image(make, **kw):
    def w(path):
        make().save(path, **kw)
    return w


def p_image(w, h, n, seed):
    im = Image.fromarray(indices(w, h, n, seed).astype(np.uint8), "P")
    im.putpalette(palette_of(n, seed + 1))
    return im


srgb_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()

# PNG via Pillow
add("png_rgb_29x28", "png", "png rgb8", pil_save(u8(29, 28, 3, 1), "RGB"))
add("png_rgb_97x61", "png", "png rgb8", pil_save(u8(97, 61, 3, 2), "RGB"))
add("png_rgb_15x300", "png", "png rgb8", pil_save(u8(15, 300, 3, 3), "RGB"))
add("png_rgba_97x61", "png", "png rgba8", pil_save(u8(97, 61, 4, 4), "RGBA"))
add("png_l_61x97", "png", "png gray8", pil_save(u8(61, 97, 1, 5)[..., 0], "L"))
add("png_l_28x28", "png", "png gray8 (Fashion-MNIST size)", pil_save(u8(28, 28, 1, 6)[..., 0], "L"))
add("png_la_33x47", "png", "png gray+alpha8", pil_save(u8(33, 47, 2, 7), "LA"))
add("png_p_97x61", "png", "png palette8", pil_save_image(lambda: p_image(97, 61, 200, 8)))
add("png_p_trns_bytes_97x61", "png", "png palette8 + tRNS alphas",
    pil_save_image(lambda: p_image(97, 61, 120, 9), transparency=bytes(range(0, 240, 2))))
add("png_p_trns_index_61x43", "png", "png palette8 + one transparent index",
    pil_save_image(lambda: p_image(61, 43, 50, 10), transparency=7))
add("png_1bit_97x61", "png", "png 1-bit (mode 1)",
    pil_save_image(lambda: Image.fromarray(u8(97, 61, 1, 11)[..., 0], "L").convert("1")))
add("png_i16_97x61", "png", "png gray16 (mode I, clipped to 255 by convert)", pil_save_image(
    lambda: Image.fromarray((pattern(97, 61, 1, 12)[..., 0] * 700).astype(np.uint16), "I;16")))
add("png_rgb_icc_45x31", "png", "png rgb8 + iCCP", pil_save(u8(45, 31, 3, 13), "RGB", icc_profile=srgb_icc))

# PNG by hand
add("png_gray1_37x23", "png", "png gray 1-bit", lambda p: write_png(p, levels(pattern(37, 23, 1, 20), 1), 0, 1))
add("png_gray2_37x23", "png", "png gray 2-bit", lambda p: write_png(p, levels(pattern(37, 23, 1, 21), 2), 0, 2))
add("png_gray4_37x23", "png", "png gray 4-bit", lambda p: write_png(p, levels(pattern(37, 23, 1, 22), 4), 0, 4))
add("png_gray16_full_41x29", "png", "png gray16 full range",
    lambda p: write_png(p, levels(pattern(41, 29, 1, 23), 16), 0, 16))
add("png_rgb16_61x43", "png", "png rgb16", lambda p: write_png(p, levels(pattern(61, 43, 3, 24), 16), 2, 16))
add("png_rgba16_43x61", "png", "png rgba16", lambda p: write_png(p, levels(pattern(43, 61, 4, 25), 16), 6, 16))
add("png_la16_43x29", "png", "png gray+alpha16", lambda p: write_png(p, levels(pattern(43, 29, 2, 26), 16), 4, 16))
add("png_rgb_interlaced_97x61", "png", "png rgb8 Adam7",
    lambda p: write_png(p, levels(pattern(97, 61, 3, 27), 8), 2, 8, interlace=True))
add("png_rgb_interlaced_5x3", "png", "png rgb8 Adam7 (empty passes)",
    lambda p: write_png(p, levels(pattern(5, 3, 3, 28), 8), 2, 8, interlace=True))
add("png_gray4_interlaced_29x28", "png", "png gray 4-bit Adam7",
    lambda p: write_png(p, levels(pattern(29, 28, 1, 29), 4), 0, 4, interlace=True))
add("png_p4_interlaced_33x21", "png", "png palette 4-bit Adam7 + tRNS", lambda p: write_png(
    p, indices(33, 21, 16, 30), 3, 4, palette=palette_of(16, 31), trns=[255, 0, 128], interlace=True))
add("png_p1_31x17", "png", "png palette 1-bit", lambda p: write_png(p, indices(31, 17, 2, 32), 3, 1,
                                                                    palette=palette_of(2, 33)))
add("png_p2_31x17", "png", "png palette 2-bit", lambda p: write_png(p, indices(31, 17, 4, 34), 3, 2,
                                                                    palette=palette_of(4, 35)))
add("png_rgb_gamma_45x31", "png", "png rgb8 + gAMA 0.45455 (ignored by PIL)",
    lambda p: write_png(p, levels(pattern(45, 31, 3, 36), 8), 2, 8, gamma=0.45455))
add("png_gray8_trns_45x31", "png", "png gray8 + tRNS", lambda p: write_png(
    p, levels(pattern(45, 31, 1, 37), 8), 0, 8, trns=[0, 77]))
add("png_gray2_trns_37x23", "png", "png gray 2-bit + tRNS", lambda p: write_png(
    p, levels(pattern(37, 23, 1, 38), 2), 0, 2, trns=[0, 1]))
add("png_gray16_trns_41x29", "png", "png gray16 + tRNS", lambda p: write_png(
    p, (pattern(41, 29, 1, 39) * 600).astype(np.int64), 0, 16, trns=[0, 100]))
add("png_rgb8_trns_45x31", "png", "png rgb8 + tRNS", lambda p: write_png(
    p, levels(pattern(45, 31, 3, 70), 8), 2, 8, trns=[0, 10, 0, 20, 0, 30]))
add("png_rgb16_trns_45x31", "png", "png rgb16 + tRNS", lambda p: write_png(
    p, levels(pattern(45, 31, 3, 71), 16), 2, 16, trns=[0, 10, 0, 20, 0, 30]))

# JPEG via Pillow (libjpeg-turbo)
add("jpg_q75_420_29x28", "jpg", "jpeg q75 4:2:0", pil_save(u8(29, 28, 3, 40), "RGB", quality=75, subsampling=2))
add("jpg_q75_420_333x250", "jpg", "jpeg q75 4:2:0", pil_save(u8(333, 250, 3, 41), "RGB", quality=75, subsampling=2))
add("jpg_q95_444_97x61", "jpg", "jpeg q95 4:4:4", pil_save(u8(97, 61, 3, 42), "RGB", quality=95, subsampling=0))
add("jpg_q90_422_640x427", "jpeg", "jpeg q90 4:2:2",
    pil_save(u8(640, 427, 3, 43), "RGB", quality=90, subsampling=1))
add("jpg_q75_422_15x300", "jpg", "jpeg q75 4:2:2", pil_save(u8(15, 300, 3, 44), "RGB", quality=75, subsampling=1))
add("jpg_q95_420_500x375", "jpg", "jpeg q95 4:2:0", pil_save(u8(500, 375, 3, 45), "RGB", quality=95, subsampling=2))
add("jpg_progressive_420_333x250", "jpg", "jpeg progressive 4:2:0",
    pil_save(u8(333, 250, 3, 46), "RGB", quality=80, subsampling=2, progressive=True))
add("jpg_progressive_444_61x97", "jpg", "jpeg progressive 4:4:4",
    pil_save(u8(61, 97, 3, 47), "RGB", quality=92, subsampling=0, progressive=True))
add("jpg_gray_97x61", "jpg", "jpeg grayscale", pil_save(u8(97, 61, 1, 48)[..., 0], "L", quality=85))
add("jpg_gray_progressive_33x47", "jpg", "jpeg grayscale progressive",
    pil_save(u8(33, 47, 1, 49)[..., 0], "L", quality=70, progressive=True))
add("jpg_icc_97x61", "jpg", "jpeg 4:2:0 + ICC profile", pil_save(u8(97, 61, 3, 50), "RGB", quality=85,
                                                                 icc_profile=srgb_icc))
add("jpg_cmyk_61x43", "jpg", "jpeg CMYK (Adobe)", pil_save(u8(61, 43, 4, 51), "CMYK", quality=90))

add("jpg_adobe_rgb_45x31", "jpg", "jpeg 3 components, Adobe transform 0 (RGB, no colour conversion)",
    lambda p: jpeg_edit(p, u8(45, 31, 3, 52), adobe_transform=0))
add("jpg_rgb_ids_45x31", "jpg", "jpeg 3 components with ids R, G, B and no JFIF/Adobe marker (RGB)",
    lambda p: jpeg_edit(p, u8(45, 31, 3, 53), ids=b"RGB"))
add("jpg_cut_then_eoi_97x61", "jpg", "jpeg cut mid-scan, then EOI (corrupt; libjpeg fills gray, PIL opens it)",
    lambda p: jpeg_damage(p, u8(97, 61, 3, 55), cut=True))
add("jpg_garbled_97x61", "jpg", "jpeg with garbled entropy-coded bytes (PIL opens it)",
    lambda p: jpeg_damage(p, u8(97, 61, 3, 56), cut=False))
add("jpg_ycck_61x43", "jpg", "jpeg 4 components, Adobe transform 2 (YCCK)",
    lambda p: jpeg_edit(p, u8(61, 43, 4, 54), mode="CMYK", adobe_transform=2))

# BMP and GIF via Pillow
add("bmp_rgb_97x61", "bmp", "bmp 24-bit", pil_save(u8(97, 61, 3, 60), "RGB"))
add("bmp_rgba_33x21", "bmp", "bmp 32-bit", pil_save(u8(33, 21, 4, 61), "RGBA"))
add("bmp_p_61x43", "bmp", "bmp 8-bit palette", pil_save_image(lambda: p_image(61, 43, 100, 62)))
add("bmp_l_29x28", "bmp", "bmp 8-bit gray", pil_save(u8(29, 28, 1, 63)[..., 0], "L"))
add("bmp_1bit_37x23", "bmp", "bmp 1-bit", pil_save_image(
    lambda: Image.fromarray(u8(37, 23, 1, 64)[..., 0], "L").convert("1")))
add("gif_p_97x61", "gif", "gif palette", pil_save_image(lambda: p_image(97, 61, 64, 65)))
add("gif_p_trns_61x43", "gif", "gif palette + transparency",
    pil_save_image(lambda: p_image(61, 43, 32, 66), transparency=3))
add("gif_l_29x28", "gif", "gif gray", pil_save(u8(29, 28, 1, 67)[..., 0], "L"))
add("gif_moved_frame_41x33", "gif", "gif frame at (5, 3) on a larger screen",
    lambda p: gif_moved_frame(p, indices(29, 23, 40, 68), 40, 69, (41, 33), (5, 3)))
add("gif_moved_frame_trns_37x29", "gif", "gif frame at (4, 6) on a larger screen + transparency",
    lambda p: gif_moved_frame(p, indices(29, 23, 40, 70), 40, 71, (37, 29), (4, 6), transparency=5))
add("gif_frame_past_screen_31x27", "gif", "gif frame sticking out of a smaller screen",
    lambda p: gif_moved_frame(p, indices(29, 23, 40, 72), 40, 73, (20, 10), (2, 4)))
add("gif_animated_45x31", "gif", "gif animated, 3 frames (the first is read)", pil_save_image(
    lambda: p_image(45, 31, 30, 76), save_all=True,
    append_images=[p_image(45, 31, 30, 77), p_image(45, 31, 30, 78)], duration=100, loop=0))
add("bmp_16bit_555_37x23", "bmp", "bmp 16-bit 5-5-5", lambda p: write_bmp16(p, u8(37, 23, 3, 74), False))
add("bmp_16bit_565_37x23", "bmp", "bmp 16-bit 5-6-5 bitfields", lambda p: write_bmp16(p, u8(37, 23, 3, 75), True))

for extra in sys.argv[2:]:
    base = os.path.basename(extra)
    with open(extra, "rb") as src, open(os.path.join(out, "images", base), "wb") as dst:
        dst.write(src.read())
    images.append((os.path.splitext(base)[0], os.path.join(out, "images", base), "extra: " + base))

RRC_BOXES = [(0, 0, 1.0, 1.0), (0.1, 0.2, 0.5, 0.6), (0.3, 0.05, 0.33, 0.9), (0.5, 0.5, 0.5, 0.5)]
RRC_SIZES = [32, 224]
RRC_IMAGES = {"jpg_q75_420_333x250", "png_rgb_29x28", "png_l_28x28", "png_rgb_15x300"}


def save(arr, name):
    path = os.path.join(out, "arrays", name)
    np.ascontiguousarray(arr).tofile(path)
    return "arrays/" + name


manifest = {"mean": MEAN, "std": STD, "torchvision": torchvision.__version__,
            "pillow": Image.__version__, "torch": torch.__version__, "images": []}
to_tensor_norm = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
for name, path, kind in images:
    with Image.open(path) as opened:
        source_mode = opened.mode
        img = opened.convert("RGB")
    dec = np.asarray(img)
    entry = {"name": name, "file": os.path.relpath(path, out), "kind": kind, "pil_mode": source_mode,
             "width": img.width, "height": img.height, "decoded": save(dec, name + ".decoded.u8"),
             "resized": [], "cropped": [], "tensors": [], "resized_crops": [], "resized_bicubic": [],
             "tensors_bicubic": [], "resized_crops_bicubic": []}
    for n in RESIZES:
        r = np.asarray(transforms.Resize(n)(img))
        entry["resized"].append({"n": n, "height": r.shape[0], "width": r.shape[1],
                                 "file": save(r, f"{name}.resize-{n}.u8")})
        r = np.asarray(transforms.Resize(n, interpolation=transforms.InterpolationMode.BICUBIC)(img))
        entry["resized_bicubic"].append({"n": n, "height": r.shape[0], "width": r.shape[1],
                                         "file": save(r, f"{name}.resize-bicubic-{n}.u8")})
    for c in CROPS:
        r = np.asarray(transforms.CenterCrop(c)(img))
        entry["cropped"].append({"c": c, "file": save(r, f"{name}.crop-{c}.u8")})
    for rs, c in TENSORS:
        t = transforms.Compose([transforms.Resize(rs), transforms.CenterCrop(c)])(img)
        x = to_tensor_norm(t)
        assert x.dtype == torch.float32 and tuple(x.shape) == (3, c, c)
        entry["tensors"].append({"resize": rs, "crop": c, "file": save(x.numpy().astype("<f4"),
                                                                        f"{name}.tensor-{rs}-{c}.f32")})
        t = transforms.Compose([transforms.Resize(rs, interpolation=transforms.InterpolationMode.BICUBIC),
                                transforms.CenterCrop(c)])(img)
        x = to_tensor_norm(t)
        entry["tensors_bicubic"].append({"resize": rs, "crop": c, "file": save(
            x.numpy().astype("<f4"), f"{name}.tensor-bicubic-{rs}-{c}.f32")})
    if name in RRC_IMAGES:
        k = 0
        for ft, fl, fh, fw in RRC_BOXES:
            h = max(1, int(fh * img.height))
            w = max(1, int(fw * img.width))
            top = min(int(ft * img.height), img.height - h)
            left = min(int(fl * img.width), img.width - w)
            for s in RRC_SIZES:
                r = np.asarray(F.resized_crop(img, top, left, h, w, [s, s]))
                entry["resized_crops"].append({"top": top, "left": left, "height": h, "width": w, "size": s,
                                               "file": save(r, f"{name}.rrc-{k}.u8")})
                r = np.asarray(F.resized_crop(img, top, left, h, w, [s, s],
                                              interpolation=transforms.InterpolationMode.BICUBIC))
                entry["resized_crops_bicubic"].append({"top": top, "left": left, "height": h, "width": w,
                                                       "size": s, "file": save(r, f"{name}.rrc-bicubic-{k}.u8")})
                k += 1
    manifest["images"].append(entry)

with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
print(f"{len(images)} images written to {out}")
