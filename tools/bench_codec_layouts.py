#!/usr/bin/python3
"""Memory layouts for the VQ-f4 codec on the CPU, measured on the official modules.

Usage: /usr/bin/python3 tools/bench_codec_layouts.py SINSR_REPO [--glibc-defaults] [--jit]

Builds the official Encoder/Decoder (SINSR_REPO: a checkout of the public SinSR repository;
../shared/bench/stand-ins supplies einops) at SinSR.yaml sizes with random weights, and times
encode 256² and decode 64²->256² at 1 and 2 threads, medians of 3: contiguous against
channels-last (weights and input), channels-last input alone, and with --jit
torch.jit.freeze + optimize_for_inference (oneDNN blocked layouts, fused conv+activation).
It runs under the allocator settings sinsr-host uses (GLIBC_TUNABLES, set by re-executing
itself) unless --glibc-defaults is given. Run it on an otherwise idle machine.
"""
import os
import statistics
import sys
import time

TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184:glibc.malloc.hugetlb=1"

args = [a for a in sys.argv[1:] if not a.startswith("--")]
if len(args) != 1:
    sys.exit(__doc__)
if "--glibc-defaults" not in sys.argv and os.environ.get("GLIBC_TUNABLES") != TUNABLES:
    os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, GLIBC_TUNABLES=TUNABLES))

import torch  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
shared = os.environ.get("SINSR_SHARED_DIR", os.path.join(here, "..", "..", "shared"))
sys.path[:0] = [os.path.join(shared, "bench", "stand-ins"), args[0]]
from ldm.modules.diffusionmodules.model import Decoder, Encoder  # noqa: E402

ddconfig = dict(double_z=False, z_channels=3, resolution=256, in_channels=3, out_ch=3, ch=128, ch_mult=[1, 2, 4],
                num_res_blocks=2, attn_resolutions=[], dropout=0.0, padding_mode="zeros")


def median_seconds(f, runs=3):
    f()  # warm-up: oneDNN primitives, the heap
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def variants(net, x):
    cl = torch.channels_last
    yield "channels-last input", net, x.contiguous(memory_format=cl)
    yield "channels-last weights + input", net.to(memory_format=cl), x.contiguous(memory_format=cl)
    net.to(memory_format=torch.contiguous_format)
    if "--jit" in sys.argv:
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, x).eval()))
        yield "jit freeze + optimize_for_inference", frozen, x


torch.manual_seed(0)
nets = {"encode 256²": (Encoder(**ddconfig).eval(), torch.rand(1, 3, 256, 256)),
        "decode 64²->256²": (Decoder(**ddconfig).eval(), torch.randn(1, 3, 64, 64))}
print("allocator:", "glibc defaults" if "--glibc-defaults" in sys.argv else "sinsr-host's settings")
print("| row | threads | contiguous | variant | time | ratio | max abs diff |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for threads in (1, 2):
    torch.set_num_threads(threads)
    for row, (net, x) in nets.items():
        with torch.no_grad():
            ref = net(x)
            base = median_seconds(lambda: net(x))
            for name, model, inp in variants(net, x):
                diff = (model(inp) - ref).abs().max().item()
                t = median_seconds(lambda: model(inp))
                print(f"| {row} | {threads} | {base:.2f} s | {name} | {t:.2f} s | {base / t:.2f}x | {diff:.1e} |", flush=True)
