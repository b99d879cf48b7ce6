#!/usr/bin/env python3
"""Writes small seed inputs for the fuzz targets (tools/fuzz.sh runs it): checkpoints in every
form the reader knows (zip, legacy, safetensors; nested, prefixed, OrderedDict, Parameters,
views with offsets and strides, empty and 0-d tensors, several dtypes), DLPack descriptions in
the fuzz_dlpack byte layout, and call streams for fuzz_c_api. Usage: make_seeds.py OUT_DIR
(one folder per target is made inside). Needs no torch."""
import array
import collections
import io
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile_files import png_chunk, tiff  # noqa: E402

out = sys.argv[1]


def write(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None):
    header, blobs, offset = {}, b"", 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs += raw
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blobs


write("checkpoint", "st-basic.safetensors",
      safetensors({"w": ("F32", [2, 3], struct.pack("<6f", *range(6))), "b": ("I64", [2], struct.pack("<2q", 1, -1)),
                   "e": ("F16", [0], b"")}, {"format": "pt"}))
write("checkpoint", "st-scalar.safetensors", safetensors({"s": ("F64", [], struct.pack("<d", 2.5))}))

# torch.save's formats, written without torch: the pickle names torch's globals through
# stand-in modules, tensors reduce to torch._utils._rebuild_tensor_v2 and storages are
# persistent ids, exactly the shape torch.save gives them.
import pickle
import types
import zipfile

fake_torch = types.ModuleType("torch")
fake_utils = types.ModuleType("torch._utils")
sys.modules.setdefault("torch", fake_torch)
sys.modules.setdefault("torch._utils", fake_utils)


def _global(module, name):
    obj = type(name, (), {})
    obj.__module__ = module.__name__
    obj.__qualname__ = name
    setattr(module, name, obj)
    return obj


def _function(module, name):
    def f(*args):
        return None
    f.__module__ = module.__name__
    f.__qualname__ = f.__name__ = name
    setattr(module, name, f)
    return f


rebuild_tensor = _function(fake_utils, "_rebuild_tensor_v2")
rebuild_parameter = _function(fake_utils, "_rebuild_parameter")
STORAGES = {f: _global(fake_torch, f) for f in ("FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage",
                                                "LongStorage", "IntStorage", "ByteStorage", "BoolStorage")}
FORMAT = {"FloatStorage": "f", "DoubleStorage": "d", "LongStorage": "q", "IntStorage": "i", "ByteStorage": "B",
          "BoolStorage": "B", "HalfStorage": "H", "BFloat16Storage": "H"}


class Storage:
    def __init__(self, kind, values):
        self.kind, self.values, self.key = kind, list(values), None

    def raw(self):
        return array.array(FORMAT[self.kind], self.values).tobytes()


class Tensor:
    def __init__(self, storage, offset, size, stride, param=False):
        self.storage, self.offset, self.size, self.stride, self.param = storage, offset, size, stride, param

    def __reduce__(self):
        t = (rebuild_tensor, (self.storage, self.offset, tuple(self.size), tuple(self.stride), False,
                              collections.OrderedDict()))
        if not self.param:
            return t
        inner = Tensor(self.storage, self.offset, self.size, self.stride)
        return (rebuild_parameter, (inner, True, collections.OrderedDict()))


def dump(obj):
    """The object pickle and its storages in the order the persistent ids name them."""
    storages = []

    class P(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, Storage):
                if o.key is None:
                    o.key = str(len(storages))
                    storages.append(o)
                return ("storage", STORAGES[o.kind], o.key, "cpu", len(o.values))
            return None

    buf = io.BytesIO()
    P(buf, protocol=2).dump(obj)
    return buf.getvalue(), storages


def entry(name, compression=zipfile.ZIP_STORED):
    """A zip record dated 1980-01-01, so the seeds are the same bytes on every run."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = compression
    return info


def zip_checkpoint(obj):
    data, storages = dump(obj)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(entry("archive/data.pkl"), data)
        for s in storages:
            z.writestr(entry("archive/data/" + s.key), s.raw())
        z.writestr(entry("archive/version"), "3\n")
    return buf.getvalue()


def legacy_checkpoint(obj):
    out = io.BytesIO()
    for head in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True,
                                                   "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(head, out, protocol=2)
    data, storages = dump(obj)
    out.write(data)
    pickle.dump([s.key for s in storages], out, protocol=2)
    for s in storages:
        out.write(struct.pack("<q", len(s.values)) + s.raw())
    return out.getvalue()


def plain_state():
    w = Storage("FloatStorage", range(12))
    return {"conv.weight": Tensor(w, 0, [3, 4], [4, 1]), "conv.bias": Tensor(Storage("FloatStorage", [0] * 3), 0, [3], [1]),
            "idx": Tensor(Storage("LongStorage", range(4)), 0, [4], [1])}


for name, fn in (("zip", zip_checkpoint), ("legacy", legacy_checkpoint)):
    write("checkpoint", name + "-plain.pth", fn(plain_state()))
    base = Storage("DoubleStorage", range(24))
    write("checkpoint", name + "-views.pth", fn({"a": Tensor(base, 3, [2, 3], [3, 1]), "t": Tensor(base, 0, [6, 4], [1, 6]),
                                                 "step": Tensor(base, 0, [5], [5]), "zero_d": Tensor(base, 7, [], [])}))
    write("checkpoint", name + "-nested.pth",
          fn({"state_dict": collections.OrderedDict(("module." + k, v) for k, v in plain_state().items()), "step": 7,
              "name": "run", "lr": [1e-4, 2e-4], "flags": (True, None), "big": 2 ** 40}))
    write("checkpoint", name + "-params.pth",
          fn({"p": Tensor(Storage("FloatStorage", [1] * 4), 0, [2, 2], [2, 1], param=True),
              "e": Tensor(Storage("HalfStorage", []), 0, [0, 4], [4, 1]),
              "b": Tensor(Storage("BoolStorage", [1, 0]), 0, [2], [1])}))

# fuzz_dlpack layout: flags, ndim, dtype code, bits, lanes (u16), [device], device id, byte_offset,
# shape[ndim], strides[ndim] (int8 each without the wide-value flags).
def dl(flags, ndim, code, bits, shape, strides, offset=0, lanes=1):
    b = struct.pack("<BbBBH", flags, ndim, code, bits, lanes) + struct.pack("<b", 0) + struct.pack("<B", offset)
    return b + struct.pack("<%db" % ndim, *shape) + struct.pack("<%db" % ndim, *strides)

write("dlpack", "f32-2x3", dl(0, 2, 2, 32, [2, 3], [3, 1]))
write("dlpack", "f32-strided", dl(0, 2, 2, 32, [3, 2], [1, 3], offset=8))
write("dlpack", "f16-contig-null-strides", dl(16, 3, 2, 16, [2, 2, 2], [0, 0, 0]))
write("dlpack", "i64-0d", dl(0, 0, 0, 64, [], []))
write("dlpack", "bf16-empty", dl(0, 2, 4, 16, [0, 5], [5, 1]))
write("dlpack", "null-data-empty", dl(32, 1, 2, 32, [0], [1]))

# fuzz_c_api: create, load the plugins and the test plugin, make a pipeline, run an 4x4 image,
# destroy; and a stream of NULL arguments.
write("c_api", "load-create-run",
      bytes([1, 1, 0, 0, 0, 1, 4, 0, 0, 1, 1, 1, 5, 1, 1, 4, 4, 3, 0, 1, 7, 0]))
write("c_api", "specs", bytes([1, 1, 0, 0, 0, 1, 4, 1, 0, 1, 1, 1, 4, 2, 0, 1, 1, 1, 4, 4, 0, 1, 1, 1,
                                5, 1, 0, 2, 2, 2, 2, 0, 1]))
write("c_api", "nulls", bytes([0, 5, 0, 0, 3, 0, 0, 1, 0, 0, 2, 0, 7, 0, 0, 3, 9, 0, 0, 8, 6, 1, 2, 2, 2, 9, 200]))

# Where the second hostile-input probe found things (issue 33): a zip checkpoint with deflated
# records, long config objects, and images: TIFF tiles and channels, bilevel TIFF, PNG text chunks.
zbuf = io.BytesIO()
with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as z:
    with zipfile.ZipFile(io.BytesIO(zip_checkpoint(plain_state()))) as src:
        for info in src.infolist():
            z.writestr(entry(info.filename, zipfile.ZIP_DEFLATED), src.read(info.filename))
write("checkpoint", "zip-deflated.pth", zbuf.getvalue())

write("config", "long-object.json", json.dumps({"k%d" % i: i for i in range(2000)}).encode())
write("config", "long-list.json", json.dumps({"channel_mult": list(range(1, 500))}).encode())


write("image", "tiff-tiles.tif", tiff(8, 8, 1, 8, bytes(256), tile=16))
write("image", "tiff-channels.tif", tiff(3, 2, 8, 8, bytes(range(48))))
write("image", "tiff-1bit.tif", tiff(10, 3, 1, 1, bytes([0xff, 0xc0, 0, 0, 0xaa, 0x80])))
write("image", "tiff-1bit-notag.tif", tiff(10, 3, 1, 1, bytes([0xff, 0xc0, 0, 0, 0xaa, 0x80]), bits_tag=False))


import zlib  # noqa: E402
png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 3, 8, 0, 0, 0, 0))
for k in range(3):
    png += png_chunk(b"zTXt", b"Comment%d\0\0" % k + zlib.compress(b"x" * 2000))
png += png_chunk(b"IDAT", zlib.compress(b"".join(b"\0" + bytes([40 * y] * 4) for y in range(3))))
write("image", "png-text-chunks.png", png + png_chunk(b"IEND", b""))


# Progressive JPEG whose last scan repeats (the probe's 15 000-scan file, in small): PIL writes
# the progressive file where it is installed (CI installs python3-pil); the rest needs nothing.
def jpeg_segments(data):
    """(marker, bytes) of each segment; a scan's entropy-coded data stays with its SOS."""
    segs, k = [(0xD8, data[:2])], 2
    while k + 4 <= len(data):
        marker = data[k + 1]
        if marker == 0xD9:
            segs.append((marker, data[k:k + 2]))
            break
        end = k + 2 + struct.unpack(">H", data[k + 2:k + 4])[0]
        if marker == 0xDA:  # entropy-coded data runs to the next marker that is not RSTn or a stuffed 0
            while end + 1 < len(data) and not (data[end] == 0xFF and data[end + 1] not in (0x00, *range(0xD0, 0xD8))):
                end += 1
        segs.append((marker, data[k:end]))
        k = end
    return segs


try:
    from PIL import Image
    buf = io.BytesIO()
    Image.frombytes("RGB", (16, 16), bytes((x * 7 + y * 3) % 256 for y in range(16) for x in range(48))).save(
        buf, "JPEG", quality=80, progressive=True)
    segs = jpeg_segments(buf.getvalue())
    last_scan = [s for m, s in segs if m == 0xDA][-1]
    body = b"".join(s for m, s in segs if m != 0xD9)
    write("image_jpeg", "progressive.jpg", buf.getvalue())
    for n in (100, 200):  # within the scan limit (200) and beyond it
        write("image_jpeg", "progressive-scans-%d.jpg" % n, body + last_scan * n + b"\xff\xd9")
    write("image_jpeg", "progressive-cut.jpg", buf.getvalue()[:len(buf.getvalue()) // 2])
except ImportError:
    pass

# The format targets start from the image target's seeds of their format.
for name in os.listdir(os.path.join(out, "image")):
    with open(os.path.join(out, "image", name), "rb") as f:
        data = f.read()
    for target, magic in (("image_tiff", (b"II*\0", b"MM\0*")), ("image_png", (b"\x89PNG",)),
                          ("image_jpeg", (b"\xff\xd8",))):
        if data.startswith(magic):
            write(target, name, data)
