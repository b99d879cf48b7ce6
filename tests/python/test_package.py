"""The `sinsr` Python package (python/sinsr): the default model's bytes equal `sinsr-host infer`'s,
float and torch inputs, errors as sinsr.Error, component listing, and the package as CMake
installs it.

Usage: test_package.py HOST_LIBRARY SINSR_HOST SOURCE_DIR BUILD_DIR
Exit 77 (ctest: skipped) when this interpreter has no numpy (Debian: python3-numpy).
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

try:
    import numpy as np
except ImportError:
    print("skipped: this python3 has no numpy (Debian: python3-numpy)")
    sys.exit(77)

if len(sys.argv) < 5:
    sys.exit("usage: test_package.py HOST_LIBRARY SINSR_HOST SOURCE_DIR BUILD_DIR")
HOST_LIB, HOST_EXE, SOURCE, BUILD = (os.path.abspath(a) for a in sys.argv[1:5])
sys.argv = sys.argv[:1]
PACKAGE_ROOT = os.path.join(SOURCE, "python")
SAMPLE = os.path.join(SOURCE, "samples", "lr_x4", "autumn.png")

os.environ["SINSR_LIBRARY"] = HOST_LIB  # the library this build made, whatever the build folder
sys.path.insert(0, PACKAGE_ROOT)
import sinsr  # noqa: E402

try:
    import torch
except ImportError:
    torch = None


def read_png(path):
    """8-bit, non-interlaced PNG -> HxWxC uint8 (no PIL here)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path + ": not a PNG"
    pos, idat = 8, []
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    assert depth == 8 and interlace == 0 and color in (0, 2, 4, 6), path + ": unsupported PNG flavour"
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    out = bytearray(h * stride)
    prev = bytearray(stride)
    for y in range(h):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return np.frombuffer(bytes(out), np.uint8).reshape(h, w, bpp).copy()


def run_cli(*args):
    r = subprocess.run([HOST_EXE, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert r.returncode == 0, "sinsr-host %s failed (%d):\n%s" % (" ".join(args), r.returncode, r.stdout)


def python(code, env_extra, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("SINSR_LIBRARY", "SINSR_PLUGIN_PATH", "PYTHONPATH")}
    env.update(env_extra)
    r = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=env, cwd=cwd)
    return r


class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sinsr-package-")
        cls.lr = read_png(SAMPLE)
        # One thread in every Upscaler of this file: LibTorch's thread count is process-wide (each
        # runtime sets it), and another count may move a pixel by a level.
        cls.up = sinsr.Upscaler(threads=1)  # no model named: the default model
        cls.sr = cls.up(cls.lr)

    @classmethod
    def tearDownClass(cls):
        cls.up.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_uint8_bytes_equal_the_cli(self):
        out = os.path.join(self.tmp, "cli.png")
        run_cli("infer", "-i", SAMPLE, "-o", out, "-q", "-j", "1")
        cli = read_png(out)
        self.assertEqual(self.sr.dtype, np.uint8)
        self.assertEqual(self.sr.shape, (self.lr.shape[0] * 4, self.lr.shape[1] * 4, 3))
        self.assertEqual(cli.shape, self.sr.shape)
        self.assertEqual(int((cli != self.sr).sum()), 0, "package and CLI differ")

    def test_self_ensemble_spec_key_equals_the_cli_flag(self):
        out = os.path.join(self.tmp, "ens.png")
        run_cli("infer", "-i", SAMPLE, "-o", out, "-q", "-j", "1", "--self-ensemble")
        with sinsr.Upscaler(threads=1, spec={"self_ensemble": True}) as up:
            self.assertIs(up.settings["self_ensemble"], True)
            ens = up(self.lr)
        self.assertIs(self.up.settings["self_ensemble"], False)
        self.assertEqual(int((read_png(out) != ens).sum()), 0, "package and CLI differ")
        self.assertGreater(int((ens != self.sr).sum()), 0, "the ensemble changed nothing")

    def test_other_installed_defaults_give_the_cli_bytes_too(self):
        # Without the shipped default model: a plugin folder whose defaults.json names a model that
        # is not there, then a plain-C network (copy_backbone: bicubic only), pixel space. The CLI
        # and the package resolve it in the host alike, so the bytes are equal again.
        folder = os.path.join(self.tmp, "other_defaults")
        os.makedirs(folder, exist_ok=True)
        for lib in ("copy_backbone.so", "one_step.so"):
            shutil.copy(os.path.join(BUILD, "test-plugins", lib), folder)
        with open(os.path.join(folder, "defaults.json"), "w") as f:
            json.dump({"sinsr_defaults": 1, "infer": {"backbone": ["no_such_model", "copy_backbone"],
                                                      "codec": "none", "sampler": "one_step"}}, f)
        out = os.path.join(self.tmp, "other_cli.png")
        old = os.environ.get("SINSR_PLUGIN_PATH")
        os.environ["SINSR_PLUGIN_PATH"] = folder
        try:
            run_cli("infer", "-i", SAMPLE, "-o", out, "-q", "-j", "1")
            with sinsr.Upscaler(threads=1) as up:
                self.assertEqual(up.settings["backbone"]["name"], "copy_backbone")
                self.assertEqual(up.settings["codec"]["name"], "")
                mine = up(self.lr)
        finally:
            if old is None:
                del os.environ["SINSR_PLUGIN_PATH"]
            else:
                os.environ["SINSR_PLUGIN_PATH"] = old
        cli = read_png(out)
        self.assertEqual(cli.shape, mine.shape)
        self.assertEqual(int((cli != mine).sum()), 0, "package and CLI differ under other defaults")
        self.assertGreater(int((cli != self.sr).sum()), 0, "the default model did not change")

    def test_without_the_shipped_models_the_cli_and_package_agree(self):
        # An install holding no shipped model: the host library, the CLI and a plugin folder with
        # two plain-C components and a defaults.json whose first choice, student, is absent. Both
        # front ends fall back alike, in the host, to copy_backbone (bicubic only), pixel space.
        prefix = os.path.join(self.tmp, "no_models")
        lib, plugins = os.path.join(prefix, "lib"), os.path.join(prefix, "lib", "sinsr", "plugins")
        os.makedirs(plugins, exist_ok=True)
        os.makedirs(os.path.join(prefix, "bin"), exist_ok=True)
        shutil.copy(HOST_EXE, os.path.join(prefix, "bin"))
        for name in os.listdir(os.path.join(BUILD, "lib")):
            if name.startswith(("libsinsr_host", "libsinsr_cli")):
                shutil.copy(os.path.join(BUILD, "lib", name), lib, follow_symlinks=True)
        for name in ("copy_backbone.so", "one_step.so"):
            shutil.copy(os.path.join(BUILD, "test-plugins", name), plugins)
        with open(os.path.join(plugins, "defaults.json"), "w") as f:
            json.dump({"sinsr_defaults": 1, "infer": {"backbone": ["student", "copy_backbone"],
                                                      "codec": "none", "sampler": "one_step"}}, f)
        # The copies load before the build tree's (its RUNPATH comes after LD_LIBRARY_PATH).
        env = {"LD_LIBRARY_PATH": lib, "SINSR_LIBRARY": os.path.join(lib, "libsinsr_host.so")}
        out = os.path.join(self.tmp, "no_models_cli.png")
        r = subprocess.run([os.path.join(prefix, "bin", os.path.basename(HOST_EXE)), "infer", "-i", SAMPLE, "-o",
                            out, "-q", "-j", "1"], env=dict(os.environ, **env), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        self.assertEqual(r.returncode, 0, r.stdout)
        listing = subprocess.run([os.path.join(prefix, "bin", os.path.basename(HOST_EXE)), "models"],
                                 env=dict(os.environ, **env), stdout=subprocess.PIPE, text=True).stdout
        self.assertNotIn("student", listing)  # truly absent
        npy = os.path.join(self.tmp, "no_models.npy")
        code = ("import numpy as np, sinsr\n"
                "up = sinsr.Upscaler(threads=1)\n"
                "assert up.settings['backbone']['name'] == 'copy_backbone', up.settings\n"
                "np.save(%r, up(%r))\n" % (npy, SAMPLE))
        r = python(code, dict(env, PYTHONPATH=PACKAGE_ROOT), self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        mine, cli = np.load(npy), read_png(out)
        self.assertEqual(cli.shape, mine.shape)
        self.assertEqual(int((cli != mine).sum()), 0, "package and CLI differ without the shipped models")
        self.assertGreater(int((cli != self.sr).sum()), 0, "the default model did not change")

    def test_plugin_by_name_is_the_default_model(self):
        with sinsr.Upscaler(plugin="student.so", threads=1) as up:
            self.assertEqual(up.settings["backbone"]["name"], "student")
            np.testing.assert_array_equal(up(self.lr), self.sr)

    def test_float_in_float_out_without_copies(self):
        f32 = self.lr.astype(np.float32) * (np.float32(1) / np.float32(255))
        refs = sys.getrefcount(f32)
        out = self.up(f32)
        self.assertEqual(sys.getrefcount(f32), refs)  # the host released the borrowed input
        self.assertEqual((out.dtype, out.shape), (np.dtype(np.float32), self.sr.shape))
        self.assertFalse(out.flags.owndata)  # a view of the host's tensor ...
        self.assertTrue(out.flags.writeable)  # ... that is the caller's to change
        self.assertTrue(0.0 <= out.min() and out.max() <= 1.0)
        np.testing.assert_array_equal(np.rint(out * np.float32(255)).astype(np.uint8), self.sr)
        f32.flags.writeable = False  # numpy will not export it through DLPack: the package copies it
        np.testing.assert_array_equal(self.up(f32), out)
        out64 = self.up(f32.astype(np.float64))
        self.assertEqual(out64.dtype, np.float64)
        np.testing.assert_allclose(out64, out, atol=1e-6)

    def test_gray_alpha_and_batches(self):
        crop = self.lr[:16, :20]
        gray = self.up(crop.mean(axis=2).round().astype(np.uint8))
        self.assertEqual((gray.shape, gray.dtype), ((64, 80), np.dtype(np.uint8)))
        alpha = np.full((16, 20, 1), 200, np.uint8)
        rgba = self.up(np.concatenate([crop, alpha], axis=2))
        self.assertEqual(rgba.shape, (64, 80, 4))
        self.assertTrue((rgba[..., 3] == 200).all())  # a flat alpha stays flat
        np.testing.assert_array_equal(rgba[..., :3], self.up(crop))
        batch = self.up(np.stack([crop, crop[::-1]]))
        self.assertEqual(batch.shape, (2, 64, 80, 3))
        np.testing.assert_array_equal(batch[1], self.up(np.ascontiguousarray(crop[::-1])))
        u16 = self.up(crop.astype(np.uint16) * 257)
        self.assertEqual(u16.dtype, np.uint16)

    def test_weights_alone_name_their_network(self):
        parity = os.environ.get("SINSR_PARITY_DIR", os.path.join(SOURCE, "..", "shared", "parity"))
        unet, vq = (os.path.join(parity, f) for f in ("unet_tiny_official.pth", "vq_tiny_official.pth"))
        if not (os.path.exists(unet) and os.path.exists(vq)):
            self.skipTest("no parity checkpoints in " + parity)
        crop = np.ascontiguousarray(self.lr[:16, :16])
        common = dict(codec="vq_f4", sampler="deterministic", steps=1, threads=1)
        with sinsr.Upscaler(weights=unet, codec_weights=vq, **common) as detected:
            self.assertNotIn("name", detected.spec["backbone"])
            got = detected(crop)
        with sinsr.Upscaler(backbone="unet_swin", weights=unet, backbone_config=os.path.join(parity, "tiny-unet.yaml"),
                            codec_weights=vq, codec_config=os.path.join(parity, "tiny-vq.yaml"), **common) as spelled:
            np.testing.assert_array_equal(got, spelled(crop))
        with self.assertRaises(sinsr.Error) as cm:  # a file no backbone recognises, and no name
            sinsr.Upscaler(weights=vq, **common)
        self.assertEqual(cm.exception.code, sinsr.Code.NOT_FOUND)
        self.assertIn(vq, str(cm.exception))

    def test_errors_are_sinsr_errors(self):
        cases = [
            (lambda: sinsr.Upscaler(backbone="no_such_model", threads=1), sinsr.Code.NOT_FOUND, "no_such_model"),
            (lambda: sinsr.Upscaler(plugin="/no/such/plugin.so", threads=1), sinsr.Code.NOT_FOUND, "/no/such/plugin.so"),
            (lambda: sinsr.Upscaler(plugin="no_such_plugin.so", threads=1), sinsr.Code.NOT_FOUND, "no_such_plugin.so"),
            (lambda: sinsr.Upscaler(device="tpu", threads=1), sinsr.Code.INVALID_ARGUMENT, "unknown device 'tpu'"),
            (lambda: sinsr.Upscaler(tile=-1, threads=1), sinsr.Code.INVALID_ARGUMENT, "chop_size"),
            (lambda: self.up(np.zeros((3, 16, 20), np.uint8)), sinsr.Code.INVALID_ARGUMENT, "channels first"),
            (lambda: self.up(np.zeros((16, 20, 3), np.int32)), sinsr.Code.INVALID_ARGUMENT, "int32"),
        ]
        for call, code, text in cases:
            with self.assertRaises(sinsr.Error) as cm:
                call()
            self.assertEqual(cm.exception.code, code, cm.exception.message)
            self.assertIn(text, str(cm.exception))
            self.assertIsInstance(cm.exception, RuntimeError)
        closed = sinsr.Upscaler(threads=1)
        closed.close()
        self.assertRaises(sinsr.Error, closed, self.lr)

    def test_missing_library_is_reported(self):
        r = python("import sinsr\ntry:\n sinsr.components()\nexcept sinsr.Error as e:\n print(e.code.name, e)",
                   {"PYTHONPATH": PACKAGE_ROOT, "SINSR_LIBRARY": "/no/such/libsinsr_host.so"}, self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("NOT_FOUND", r.stdout)
        self.assertIn("/no/such/libsinsr_host.so", r.stdout)

    def test_components_lists_the_default_model(self):
        comps = sinsr.components()
        student = [c for c in comps if (c.kind, c.name) == ("backbone", "student")]
        self.assertEqual(len(student), 1, comps)
        self.assertTrue(student[0].file.endswith("student.so") and student[0].version)
        self.assertIn(("sampler", "deterministic"), [(c.kind, c.name) for c in comps])

    @unittest.skipIf(torch is None, "this python3 has no torch (Debian: python3-torch)")
    def test_torch_tensors(self):
        chw = torch.from_numpy(self.lr).permute(2, 0, 1)  # a non-contiguous uint8 [C,H,W] view
        out = self.up(chw)
        self.assertEqual((out.dtype, tuple(out.shape)), (torch.uint8, (3,) + self.sr.shape[:2]))
        self.assertTrue(torch.equal(out, torch.from_numpy(self.sr).permute(2, 0, 1)))
        f = (chw.float() * float(np.float32(1) / np.float32(255))).requires_grad_()
        fout = self.up(f[None])
        self.assertEqual((fout.dtype, tuple(fout.shape)), (torch.float32, (1, 3) + self.sr.shape[:2]))
        ref = self.up(self.lr.astype(np.float32) * (np.float32(1) / np.float32(255)))
        self.assertTrue(torch.equal(fout[0].permute(1, 2, 0), torch.from_numpy(ref)))

    def test_pil_images_and_what_is_not_pixels(self):
        try:
            from PIL import Image
        except ImportError:
            self.skipTest("this python3 has no PIL (Debian: python3-pil)")
        out = self.up(Image.fromarray(self.lr))
        self.assertIsInstance(out, Image.Image)
        self.assertEqual(out.mode, "RGB")
        np.testing.assert_array_equal(np.asarray(out), self.sr)
        with self.assertRaises(sinsr.Error) as e:
            self.up(object())
        self.assertIn("expected", str(e.exception))
        if torch is not None:
            with self.assertRaises(sinsr.Error) as e:
                self.up(torch.zeros(40, 48, 3))
            self.assertIn("got (40, 48, 3) (channels last?", str(e.exception))

    def test_files_read_and_written_as_the_cli_does(self):
        np.testing.assert_array_equal(sinsr.read_image(SAMPLE), self.lr)
        np.testing.assert_array_equal(self.up(SAMPLE), self.sr)  # a path: the CLI's bytes
        with self.assertRaises(sinsr.Error) as e:
            sinsr.read_image(os.path.join(self.tmp, "missing.png"))
        self.assertEqual(e.exception.code, sinsr.Code.IO)
        self.assertIn("missing.png", str(e.exception))
        out = os.path.join(self.tmp, "written.png")
        sinsr.write_image(out, self.sr)
        np.testing.assert_array_equal(read_png(out), self.sr)
        # Each format the build lists holds the 16-bit gray below (netpbm, PNG, TIFF exactly).
        formats = sinsr.image_formats()
        self.assertEqual(formats[0], "png")
        self.assertTrue({"jpg", "tif", "ppm"} <= set(formats), formats)
        wide = (np.arange(6 * 5, dtype=np.uint16) * 2000).reshape(6, 5)
        sinsr.write_image(os.path.join(self.tmp, "gray16.png"), wide)
        np.testing.assert_array_equal(sinsr.read_image(os.path.join(self.tmp, "gray16.png")), wide)
        for ext in ("pgm", "tif"):
            path = os.path.join(self.tmp, "gray16." + ext)
            sinsr.write_image(path, wide)
            np.testing.assert_array_equal(sinsr.read_image(path), wide, ext)
        try:
            from PIL import Image
        except ImportError:
            self.skipTest("this python3 has no PIL (Debian: python3-pil)")
        # EXIF Orientation 6 (the camera was turned): the host's reader rotates as the CLI does.
        jpg = os.path.join(self.tmp, "turned.jpg")
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(self.lr).save(jpg, quality=95, exif=exif)
        turned = sinsr.read_image(jpg)
        self.assertEqual(turned.shape, (self.lr.shape[1], self.lr.shape[0], 3))
        cli_out = os.path.join(self.tmp, "turned_cli.png")
        run_cli("infer", "-i", jpg, "-o", cli_out, "-q", "-j", "1")
        np.testing.assert_array_equal(self.up(jpg), read_png(cli_out))

    def test_close_while_another_thread_upscales(self):
        """close() waits for a running call (it freed the pipeline under it: a segfault); calls
        after it raise sinsr.Error."""
        import threading
        up = sinsr.Upscaler(threads=1)
        crop = np.ascontiguousarray(self.lr[:48, :48])
        started, results = threading.Event(), []

        def work():
            started.set()
            for _ in range(3):
                try:
                    results.append(up(crop).shape)
                except sinsr.Error as e:
                    results.append(str(e))
        t = threading.Thread(target=work)
        t.start()
        started.wait()
        up.close()
        t.join()
        self.assertTrue(results, "the worker ran nothing")
        for r in results:
            self.assertTrue(r == (192, 192, 3) or "closed" in r, r)
        with self.assertRaises(sinsr.Error) as e:
            up(crop)
        self.assertIn("closed", str(e.exception))

    def test_pip_backend_writes_only_the_wheel(self):
        """`pip install ./python` runs python/_build/sinsr_backend.py: the wheel holds the package and
        its dist-info, and nothing is written into the checkout."""
        import importlib.util
        import zipfile

        def tree():
            return sorted(os.path.relpath(os.path.join(d, f), PACKAGE_ROOT)
                          for d, _, files in os.walk(PACKAGE_ROOT) for f in files if "__pycache__" not in d)
        spec = importlib.util.spec_from_file_location("sinsr_backend",
                                                      os.path.join(PACKAGE_ROOT, "_build", "sinsr_backend.py"))
        backend = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(backend)
        before = tree()
        out = os.path.join(self.tmp, "wheels")
        os.makedirs(out)
        self.assertEqual(backend.get_requires_for_build_wheel(), [])
        with zipfile.ZipFile(os.path.join(out, backend.build_wheel(out))) as whl:
            names = whl.namelist()
            self.assertIn("sinsr/__init__.py", names)
            self.assertIn("sinsr/_capi.py", names)
            self.assertIn("Requires-Dist: numpy", whl.read("sinsr-0.1.0.dist-info/METADATA").decode())
            self.assertEqual(whl.read("sinsr/_capi.py"),
                             open(os.path.join(PACKAGE_ROOT, "sinsr", "_capi.py"), "rb").read())
        with zipfile.ZipFile(os.path.join(out, backend.build_editable(out))) as whl:
            self.assertEqual(whl.read("sinsr.pth").decode().strip(), PACKAGE_ROOT)
        self.assertEqual(tree(), before)

    def test_source_tree_finds_its_build(self):
        if os.path.realpath(BUILD) != os.path.realpath(os.path.join(SOURCE, "build")):
            self.skipTest("the build folder is not <source>/build")
        r = python("import sinsr; print(sinsr.library_path())", {"PYTHONPATH": PACKAGE_ROOT}, self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.path.realpath(r.stdout.strip()),
                         os.path.realpath(os.path.join(BUILD, "lib", "libsinsr_host.so")))

    def test_cmake_install(self):
        cmake = shutil.which("cmake")
        if cmake is None:
            self.skipTest("no cmake on PATH")
        prefix = os.path.join(self.tmp, "prefix")
        r = subprocess.run([cmake, "--install", BUILD, "--prefix", prefix], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        self.assertEqual(r.returncode, 0, r.stdout)
        site = os.path.join(prefix, "lib", "python3", "dist-packages")
        code = ("import json, numpy as np, sinsr\n"
                "up = sinsr.Upscaler(threads=1)\n"
                "sr = up(np.load('crop.npy'))\n"
                "np.save('sr.npy', sr)\n"
                "print(json.dumps({'package': sinsr.__file__, 'library': sinsr.library_path(),\n"
                "  'student': [c.file for c in up.components() if c.name == 'student']}))\n")
        crop = np.ascontiguousarray(self.lr[:16, :20])
        np.save(os.path.join(self.tmp, "crop.npy"), crop)
        r = python(code, {"PYTHONPATH": site}, self.tmp)  # no SINSR_LIBRARY: found next to the package
        self.assertEqual(r.returncode, 0, r.stderr)
        where = json.loads(r.stdout.strip().splitlines()[-1])
        real_prefix = os.path.realpath(prefix)
        for key in ("package", "library"):
            self.assertTrue(os.path.realpath(where[key]).startswith(real_prefix + os.sep), where)
        self.assertEqual(len(where["student"]), 1, where)
        self.assertTrue(os.path.realpath(where["student"][0]).startswith(real_prefix + os.sep), where)
        np.testing.assert_array_equal(np.load(os.path.join(self.tmp, "sr.npy")), self.up(crop))


if __name__ == "__main__":
    unittest.main(verbosity=2)
