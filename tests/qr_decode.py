"""Reading QR codes back in tests with a real decoder (zxing-cpp): from the SVG the app
serves (segno's path of horizontal runs, rasterised here) or from a browser's PNG screenshot
(decoded here: 8-bit, non-interlaced, as chromium writes them)."""

from __future__ import annotations

import re
import struct
import zlib

import numpy
import zxingcpp

#: Pixels per module when rasterising an SVG: plenty for the decoder.
SCALE = 6


def svg_matrix(svg: str) -> numpy.ndarray:
    """A grey image of segno's QR ``svg``: its viewBox, its dark path of ``M``/``m`` moves and
    ``h`` runs (each run one module high, drawn at y + 0.5), white elsewhere."""
    width, height = (int(n) for n in re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).groups())
    path = re.search(r'<path class="[^"]*" stroke="#000" d="([^"]+)"', svg).group(1)
    image = numpy.full((height * SCALE, width * SCALE), 255, dtype=numpy.uint8)
    x = y = 0.0
    for command, numbers in re.findall(r"([MmHh])([-\d. ]+)", path):
        values = [float(n) for n in numbers.split()]
        if command == "M":
            x, y = values
        elif command == "m":
            x, y = x + values[0], y + values[1]
        else:  # h: a run of dark modules on row y - 0.5
            end = x + values[0] if command == "h" else values[0]
            row = int(y - 0.5)
            image[row * SCALE:(row + 1) * SCALE, int(x) * SCALE:int(end) * SCALE] = 0
            x = end
    return image


def png_grey(data: bytes) -> numpy.ndarray:
    """A PNG screenshot (8-bit RGB or RGBA, not interlaced) as a grey image."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows = numpy.zeros((height, stride), dtype=numpy.int32)
    previous = numpy.zeros(stride, dtype=numpy.int32)
    for r in range(height):
        kind = raw[r * (stride + 1)]
        line = numpy.frombuffer(raw, dtype=numpy.uint8, count=stride,
                                offset=r * (stride + 1) + 1).astype(numpy.int32)
        if kind == 0:
            out = line
        elif kind == 2:
            out = (line + previous) % 256
        else:  # 1 (sub), 3 (average), 4 (Paeth) depend on the pixel to the left
            out = numpy.zeros(stride, dtype=numpy.int32)
            for i in range(stride):
                left = out[i - channels] if i >= channels else 0
                up = previous[i]
                corner = previous[i - channels] if i >= channels else 0
                if kind == 1:
                    pred = left
                elif kind == 3:
                    pred = (left + up) // 2
                else:
                    p = left + up - corner
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                    pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                out[i] = (line[i] + pred) % 256
        rows[r], previous = out, out
    pixels = rows.reshape(height, width, channels)[:, :, :3]
    return pixels.mean(axis=2).astype(numpy.uint8)


def decode(image: numpy.ndarray) -> list[str]:
    """The texts of the QR codes zxing-cpp finds in a grey image."""
    return [found.text for found in zxingcpp.read_barcodes(
        numpy.ascontiguousarray(image), formats=zxingcpp.BarcodeFormat.QRCode)]
