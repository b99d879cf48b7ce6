"""Small hand-made image files for the hostile-input seeds and sweep (tests/fuzz/make_seeds.py,
tools/hostile_sweep.py) and the serve tests (tests/serve, tools/load_test.py): a PNG chunk, a
whole 8-bit RGB PNG, and a little-endian TIFF whose every tag is chosen. No PIL needed."""
import struct
import zlib


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_rgb(width, height, seed=0):
    """An 8-bit RGB PNG of noise-like pixels, different for each seed."""
    rows = b"".join(b"\0" + bytes(((x * 7 + y * 13 + seed * 101) * 31) % 256 for x in range(width * 3))
                    for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))


def tiff(w, h, samples, bits, data, tile=0, bits_tag=True, compression=1, sample_format=1):
    """Little-endian TIFF, one IFD, one strip or one tile."""
    out = bytearray(b"II*\0\0\0\0\0") + bytes(data)
    entries = [(256, 4, 1, w), (257, 4, 1, h)]
    if bits_tag:
        if samples <= 2:
            entries.append((258, 3, samples, bits | ((bits << 16) if samples == 2 else 0)))
        else:
            at = len(out)
            out += struct.pack("<%dH" % samples, *([bits] * samples))
            entries.append((258, 3, samples, at))
    entries += [(259, 3, 1, compression), (262, 3, 1, 2 if samples >= 3 else 1)]
    if tile:
        entries += [(277, 3, 1, samples), (284, 3, 1, 1), (322, 3, 1, tile), (323, 3, 1, tile), (324, 4, 1, 8),
                    (325, 4, 1, len(data))]
    else:
        entries += [(273, 4, 1, 8), (277, 3, 1, samples), (278, 4, 1, h), (279, 4, 1, len(data)), (284, 3, 1, 1)]
    if sample_format != 1:
        entries.append((339, 3, 1, sample_format))
    entries.sort()
    if len(out) % 2:
        out += b"\0"
    struct.pack_into("<I", out, 4, len(out))
    out += struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        out += struct.pack("<HHII", tag, typ, count, value)
    return bytes(out + struct.pack("<I", 0))
