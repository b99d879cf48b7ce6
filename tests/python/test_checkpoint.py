"""A student checkpoint written by `sinsr-host distill` is read by Python's own torch.load
(weights_only: no code runs) with the official parameter names and shapes, and the same file
upscales an image through `sinsr-host infer`.

Usage: test_checkpoint.py SINSR_HOST PARITY_DIR DATA_DIR
Exit 77 (ctest: skipped) when this interpreter has no torch or the data sets are absent.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError:
    print("skipped: this python3 has no torch (Debian: python3-torch)")
    sys.exit(77)

host, parity, data = sys.argv[1:4]
hr_dir = os.path.join(data, "set5", "hr")
lr_image = os.path.join(data, "set5", "lr_x4", "butterfly.png")
if not os.path.isdir(hr_dir) or not os.path.isfile(lr_image):
    print(f"skipped: no Set5 in {data}")
    sys.exit(77)

unet_config = os.path.join(parity, "tiny-unet.yaml")
teacher = os.path.join(parity, "unet_tiny.pth")


def run(*args):
    r = subprocess.run([host, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert r.returncode == 0, f"sinsr-host {' '.join(args)} failed ({r.returncode}):\n{r.stdout}"
    return r.stdout


with tempfile.TemporaryDirectory() as tmp:
    run_dir = os.path.join(tmp, "student")
    run("distill", "--data", hr_dir, "--out", run_dir, "--codec", "none",
        "--backbone-config", unet_config, "--teacher-weights", teacher,
        "--gt-size", "64", "--batch", "1", "--max-steps", "2", "--save-every", "2",
        "--warmup", "0", "--lr", "1e-3", "--threads", "1", "--workers", "1")

    reference = torch.load(teacher, map_location="cpu", weights_only=True)
    ckpt = torch.load(os.path.join(run_dir, "ckpt_00000002.pth"), map_location="cpu", weights_only=True)
    assert ckpt["iters_start"] == 2, ckpt["iters_start"]
    student = ckpt["state_dict"]
    assert set(student) == set(reference), sorted(set(student) ^ set(reference))[:10]
    moved = 0
    for name, want in reference.items():
        got = student[name]
        assert got.shape == want.shape and got.dtype == want.dtype, (name, got.shape, want.shape, got.dtype)
        moved += int(not torch.equal(got, want))
    # Two AdamW steps at lr 1e-3 change the trained weights (buffers such as the Swin masks stay).
    assert moved > len(reference) // 2, f"only {moved} of {len(reference)} tensors changed"

    # ema.pth: the official loaders' layout (state_dict) with the parts it was made with beside it.
    ema_file = torch.load(os.path.join(run_dir, "ema.pth"), map_location="cpu", weights_only=True)
    ema = ema_file["state_dict"]
    assert set(ema) == set(reference), sorted(set(ema) ^ set(reference))[:10]
    parts = json.loads(ema_file["sinsr_components"])
    assert parts["backbone"]["name"] == "unet_swin" and parts["sampler"]["steps"] == 1, parts

    out = os.path.join(tmp, "butterfly_x4.png")
    run("infer", "-q", "--sampler", "deterministic", "--steps", "1", "--codec", "none", "--backbone", "unet_swin",
        "--backbone-config", unet_config, "--backbone-weights", os.path.join(run_dir, "ckpt_00000002.pth"),
        "--pad-multiple", "4", "-i", lr_image, "-o", out)
    assert os.path.getsize(out) > 0

print("ok: the student checkpoint loads in torch.load with the official names and in sinsr-host infer")
