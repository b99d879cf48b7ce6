#!/usr/bin/env python3
"""The second hostile-input probe's kinds of input (issue 33), made here and fed to sinsr-host one
by one: each must be refused (exit 1, one line naming the file) or handled, within 60 s and 1 GB
of peak resident memory. Prints a table (input, command, exit, seconds, peak MB, verdict) and ends
with a folder run that mixes the hostile images with good ones, which must write the good ones.
Exit status 1 when any line breaks the bounds.

usage: tools/hostile_sweep.py [--host build/bin/sinsr-host] [--work out/hostile] [--quick]
  --quick leaves out the inputs that take seconds to generate (the 1 GiB-padded checkpoints).
Needs python3 and zlib only; the NaN-weight checkpoint needs python3-torch (skipped without).
"""
import argparse
import io
import json
import select
import os
import shutil
import struct
import subprocess
import sys
import time
import zipfile
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz"))
from hostile_files import png_chunk, tiff  # noqa: E402

LIMIT_S, LIMIT_MB = 60, 1024


def png(w, h, extra=b"", rows=None):
    head = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    raw = rows if rows is not None else b"".join(b"\0" + bytes((x * 5 + y * 3) % 256 for x in range(3 * w)) for y in range(h))
    return head + extra + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")


def deflate_zeros(n, chunk=1 << 24):
    c = zlib.compressobj(9, zlib.DEFLATED, 15)
    z = bytes(chunk)
    out = []
    while n > 0:
        out.append(c.compress(z[:min(chunk, n)]))
        n -= chunk
    out.append(c.flush())
    return b"".join(out)


def zip_with(records):
    """A torch-style zip checkpoint from (name, bytes, deflate) records."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data, deflate in records:
            z.writestr(zipfile.ZipInfo(name), data, zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    return buf.getvalue()


def raw_deflated_member(name, deflated, size, crc):
    """A zip with one member whose deflated bytes are given (zipfile would inflate 1 GiB to write it)."""
    fname = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(deflated), size, len(fname), 0) + fname
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(deflated), size, len(fname),
                          0, 0, 0, 0, 0, 0) + fname
    return local + deflated, central


def pickle_state(entries):
    """A protocol-2 pickle of {name: torch._utils._rebuild_tensor_v2(storage(key), ...)} (no torch)."""
    p = bytearray(b"\x80\x02}q\x00(")
    for name, key, numel in entries:
        p += b"X" + struct.pack("<I", len(name)) + name.encode()
        p += b"ctorch._utils\n_rebuild_tensor_v2\nq\x01("
        p += b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX" + struct.pack("<I", len(key)) + key.encode()
        p += b"X\x03\x00\x00\x00cpuJ" + struct.pack("<i", numel) + b"tQ"
        p += b"K\x00J" + struct.pack("<i", numel) + b"\x85J\x01\x00\x00\x00\x85\x89ccollections\nOrderedDict\n)Rtq\x02R"
    return bytes(p + b"u.")


def make_inputs(work, quick):
    d = os.path.join(work, "in")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    files = {}

    def put(name, data):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(data)
        files[name] = path
        return path

    put("good.png", png(24, 16))
    # images
    text = zlib.compress(b"x" * ((8 << 20) - 64), 9)  # each chunk under libpng's 8 MB cap
    put("png-1000-text-chunks.png", png(8, 8, b"".join(png_chunk(b"zTXt", b"c%d\0\0" % k + text) for k in range(1000))))
    put("tiff-16x16-declaring-16384-tiles.tif", tiff(16, 16, 3, 8, bytes(768), tile=16384))
    put("tiff-4096-64-channels.tif", tiff(4096, 4096, 64, 8, deflate_zeros(4096 * 4096 * 64), compression=8))
    nan = struct.pack("<3f", float("nan"), float("inf"), 3e38) + struct.pack("<45f", *([0.5] * 45))
    put("tiff-float-nan-inf.tif", tiff(4, 4, 3, 32, nan, sample_format=3))
    put("tiff-1bit-no-bits-tag.tif", tiff(10, 3, 1, 1, bytes([0xFF, 0xC0, 0, 0, 0xAA, 0x80]), bits_tag=False))
    put("empty.png", b"")
    jpg = os.path.join(d, "base.jpg")
    have_jpeg = subprocess.run(["oiiotool", "--pattern", "noise", "512x512", "3", "--attrib", "jpeg:progressive", "1",
                                "-o", jpg], capture_output=True).returncode == 0 if shutil.which("oiiotool") else False
    if have_jpeg:
        data = open(jpg, "rb").read()
        os.remove(jpg)
        put("jpeg-cut-in-half.jpg", data[:len(data) // 2])
        sos = data.rfind(b"\xff\xda")
        last_scan = data[sos:data.rfind(b"\xff\xd9")]
        put("jpeg-15000-scans.jpg", data[:data.rfind(b"\xff\xd9")] + last_scan * 15000 + b"\xff\xd9")
    put("png-8192-square.png", png(8192, 8192, rows=bytes(8192 * (3 * 8192 + 1))))
    put("png-3x100000.png", png(3, 100000, rows=bytes(100000 * 10)))
    fifo = os.path.join(d, "fifo.png")
    os.mkfifo(fifo)
    files["fifo.png"] = fifo
    # checkpoints
    put("pth-deflated-16M-values.pth",
        zip_with([("archive/data.pkl", b"\x80\x02]q\x00(" + b"K\x00" * (1 << 24) + b"e.", True),
                  ("archive/version", b"3\n", False)]))
    if not quick:
        # Two 1 GiB pickle strings (BINBYTES8) in one deflated record of ~2 MB.
        gib = [b"\x8e" + struct.pack("<Q", 1 << 30), 1 << 30]
        put("pth-two-1GiB-pickle-strings.pth",
            zip_from_streams([("archive/data.pkl", [b"\x80\x04]\x94("] + gib + gib + [b"e."])]))
        put("pth-storages-padded-to-1GiB.pth", padded_weights())
    put("safetensors-100k-empty-tensors.safetensors", safetensors_empty(100000))
    # configs
    put("config-200k-keys.json", json.dumps({"k%d" % i: i for i in range(200000)}).encode())
    put("config-duplicate-keys.json", b'{"model_channels": 32, "model_channels": 64}')
    put("degradation-kernel-4001.json", json.dumps({"blur_kernel_size": 4001}).encode())
    put("backbone-window-1024.json", json.dumps({"window_size": 1024}).encode())
    return files


def safetensors_empty(n):
    header = json.dumps({"t%d" % i: {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(n)}).encode()
    return struct.pack("<Q", len(header)) + header


def deflated_stream(parts):
    """(raw deflate bytes, size, crc32) of the concatenation of parts: bytes, or an int = that many zeros."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    out, size, crc = [], 0, 0
    zeros = bytes(1 << 24)
    for p in parts:
        if isinstance(p, int):
            left = p
            while left > 0:
                piece = zeros[:min(left, len(zeros))]
                out.append(comp.compress(piece))
                crc = zlib.crc32(piece, crc)
                left -= len(piece)
            size += p
        else:
            out.append(comp.compress(p))
            crc = zlib.crc32(p, crc)
            size += len(p)
    out.append(comp.flush())
    return b"".join(out), size, crc


def zip_from_streams(members):
    """A zip whose members are deflated from (name, parts) without holding them inflated."""
    out, central = bytearray(), bytearray()
    for name, parts in members:
        deflated, size, crc = deflated_stream(parts)
        local, cen = raw_deflated_member(name, deflated, size, crc)
        central += cen[:42] + struct.pack("<I", len(out)) + cen[46:]
        out += local
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    return bytes(out + central + end)


def padded_weights():
    """Four small tensors whose storage records each inflate to 1 GiB (the probe padded real
    weights so; the per-file budget must refuse it)."""
    entries = [("layer%d.weight" % k, str(k), 4) for k in range(4)]
    members = [("archive/data.pkl", [pickle_state(entries)]), ("archive/version", [b"3\n"])]
    members += [("archive/data/%d" % k, [1 << 30]) for k in range(4)]
    return zip_from_streams(members)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="build/bin/sinsr-host")
    ap.add_argument("--work", default="out/hostile")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    print("generating inputs...", file=sys.stderr)
    f = make_inputs(a.work, a.quick)
    out = os.path.join(a.work, "out")
    student = ["infer", "-n", "student", "-j", "1", "-q"]
    lines = []

    def case(name, args, expect="refused", names=None):
        """expect: refused (exit 1), handled (exit 0) or either; a refusal must name `names`
        (default: the input's file name)."""
        lines.append((name, args, expect, names or name.split(" ")[0]))

    good = f["good.png"]
    for img in ("png-1000-text-chunks.png", "tiff-16x16-declaring-16384-tiles.tif", "tiff-4096-64-channels.tif",
                "tiff-float-nan-inf.tif", "tiff-1bit-no-bits-tag.tif", "empty.png", "jpeg-cut-in-half.jpg",
                "jpeg-15000-scans.jpg", "png-8192-square.png", "fifo.png"):
        if img in f:
            case(img, student + ["-i", f[img], "-o", os.path.join(out, img + ".png")],
                 "handled" if img == "tiff-1bit-no-bits-tag.tif" else "either")
    case("png-3x100000.png -t 1", student + ["-t", "1", "-i", f["png-3x100000.png"], "-o", os.path.join(out, "thin.png")],
         "either", "chop_size")
    case("64x64 -t 1", student + ["-t", "1", "-i", good, "-o", os.path.join(out, "tiny-tiles.png")], "either",
         "chop_size")
    for ck in ("pth-deflated-16M-values.pth", "pth-two-1GiB-pickle-strings.pth",
               "safetensors-100k-empty-tensors.safetensors", "pth-storages-padded-to-1GiB.pth"):
        if ck in f:
            case(ck, student + ["--backbone-weights", f[ck], "-i", good, "-o", os.path.join(out, ck + ".png")])
    case("config-200k-keys.json", student + ["--backbone-config", f["config-200k-keys.json"], "-i", good, "-o",
                                             os.path.join(out, "c1.png")])
    case("config-duplicate-keys.json", student + ["--backbone-config", f["config-duplicate-keys.json"], "-i", good,
                                                  "-o", os.path.join(out, "c2.png")])
    case("backbone-window-1024.json", student + ["--backbone-config", f["backbone-window-1024.json"], "-i", good, "-o",
                                                 os.path.join(out, "c3.png")])
    case("degradation-kernel-4001.json", ["degrade", "--in", os.path.dirname(good), "--out", os.path.join(out, "deg"),
                                          "--seed", "0", "--config", f["degradation-kernel-4001.json"]])
    case("--pad-multiple 100000", student + ["--pad-multiple", "100000", "-i", good, "-o", os.path.join(out, "p.png")],
         names="pad_multiple")
    case("-j 100000", ["infer", "-n", "student", "-q", "-j", "100000", "-i", good, "-o", os.path.join(out, "j.png")],
         "either")

    broken = 0
    print("| input | exit | seconds | peak MB | verdict |")
    print("| --- | --- | --- | --- | --- |")
    for name, args, expect, must_name in lines:
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        code, secs, text, killed, peak = timed([a.host] + args)
        first = next((l for l in text.splitlines() if "sinsr-host" in l), text.strip().splitlines()[-1:] or [""])
        ok_bounds = not killed and secs <= LIMIT_S and peak <= LIMIT_MB
        ok_exit = code in (0, 1) and (expect != "refused" or code == 1) and (expect != "handled" or code == 0)
        named = code == 0 or must_name in text
        verdict = ("refused" if code == 1 else "handled") if ok_bounds and ok_exit and named else "BROKEN"
        broken += verdict == "BROKEN"
        print("| %s | %s | %.1f | %.0f | %s: %s |" % (name, "killed" if killed else code, secs, peak, verdict,
                                                      (first if isinstance(first, str) else "")[:110].replace("|", "/")))
    # A folder of every hostile image plus good ones: the good ones are written.
    folder = os.path.join(a.work, "mixed")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for name, path in f.items():
        if name.endswith((".png", ".tif", ".jpg")) and name != "fifo.png":
            os.link(path, os.path.join(folder, name))
    shutil.copy(good, os.path.join(folder, "good2.png"))
    shutil.rmtree(out, ignore_errors=True)
    code, secs, text, killed, peak = timed([a.host] + student + ["-i", folder, "-o", out])
    written = sorted(os.listdir(out)) if os.path.isdir(out) else []
    goods = all(g in written for g in ("good.png", "good2.png"))
    print("| folder of the images above + 2 good | %s | %.1f | %.0f | %s: wrote %d (%s) |" % (
        code, secs, peak, "ok" if goods and not killed and peak <= LIMIT_MB else "BROKEN", len(written),
        ", ".join(written)))
    broken += not goods
    print("\n%d line(s) out of bounds (limits: %d s, %d MB peak RSS)" % (broken, LIMIT_S, LIMIT_MB))
    return 1 if broken else 0


def timed(cmd):
    """exit code, seconds, output, killed, peak RSS in MB of the process (and its children)."""
    start = time.monotonic()
    r_fd, w_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(w_fd, 1)
        os.dup2(w_fd, 2)
        os.close(r_fd)
        os.execvp(cmd[0], cmd)
    os.close(w_fd)
    chunks, killed = [], False
    deadline = start + LIMIT_S + 30
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, 9)
            killed = True
            break
        ready, _, _ = select.select([r_fd], [], [], min(left, 1.0))
        if ready:
            data = os.read(r_fd, 65536)
            if not data:
                break
            chunks.append(data)
    _, status, usage = os.wait4(pid, 0)
    os.close(r_fd)
    code = os.waitstatus_to_exitcode(status)
    return code, time.monotonic() - start, b"".join(chunks).decode(errors="replace"), killed, usage.ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main())
