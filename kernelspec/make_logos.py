"""Draws the PNG logos (the same spark star as logo-svg.svg) with the standard library
only, so the committed PNGs can be regenerated anywhere: python3 make_logos.py"""
import pathlib
import struct
import zlib

HERE = pathlib.Path(__file__).resolve().parent


def inside_star(x: float, y: float) -> bool:
    # Four-pointed star: |dx|/a + |dy|/b style diamond union, as in the SVG.
    dx, dy = abs(x - 0.5), abs(y - 0.5)
    return dx + dy * 5.0 <= 0.44 or dy + dx * 5.0 <= 0.44 or dx + dy <= 0.17


def png(size: int) -> bytes:
    rows = []
    for j in range(size):
        row = bytearray([0])
        for i in range(size):
            x, y = (i + 0.5) / size, (j + 0.5) / size
            r2 = (x - 0.5) ** 2 + (y - 0.5) ** 2
            if r2 <= (5 / 64) ** 2:
                px = (255, 255, 255, 255)
            elif inside_star(x, y):
                px = (0xE2, 0x5A, 0x1C, 255)
            else:
                px = (0x1F, 0x2A, 0x44, 255)
            row += bytes(px)
        rows.append(bytes(row))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(
            ">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
            chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b""))


if __name__ == "__main__":
    for n in (32, 64):
        (HERE / f"logo-{n}x{n}.png").write_bytes(png(n))
