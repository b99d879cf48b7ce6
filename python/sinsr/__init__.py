"""SinSR diffusion super-resolution from Python: numpy arrays (or torch tensors) in and out.

    import sinsr
    up = sinsr.Upscaler()              # the shipped default model, `student`
    sr = up(image)                     # HxWx3 uint8 -> (4H)x(4W)x3 uint8, as `sinsr-host infer` writes it
    sr = up("photo.jpg")               # a file, read by the host's reader (EXIF orientation applied)
    sinsr.write_image("photo_x4.png", sr)

A thin ctypes layer over libsinsr_host's C API (abi/sinsr_host.h); no compiled extension. The
library is looked up through $SINSR_LIBRARY, next to the installed package, in the source
checkout's build/lib, then on the system's library path.
"""
import collections
import ctypes as C
import json
import os
import sys
import threading

import numpy as np

from . import _capi
from ._capi import Code, Error

Code.__module__ = Error.__module__ = __name__  # tracebacks say sinsr.Error

__all__ = ["Upscaler", "Component", "components", "Error", "Code", "library_path", "library_version",
           "abi_version", "image_formats", "read_image", "write_image"]
__version__ = "0.1.0"

Component = collections.namedtuple("Component", "kind name version file plugin summary")
Component.__doc__ = "A component the runtime loaded: kind ('backbone', 'codec', 'sampler', 'loss'), name, ..."



def library_path():
    """The libsinsr_host file in use."""
    return _capi.library_path()


def library_version():
    return _capi.library().sinsr_version().decode()


def abi_version():
    """The plugin ABI the library implements, as (major, minor)."""
    v = _capi.library().sinsr_abi_version()
    return (v >> 16, v & 0xFFFF)


class _Runtime:
    """sinsr_runtime: owns the loaded plugins."""

    def __init__(self, threads, default_paths):
        lib = _capi.library()
        opts = _capi.RuntimeOptions(C.sizeof(_capi.RuntimeOptions), int(threads or 0), 1 if default_paths else 0)
        handle = C.c_void_p()
        _capi.check(lib.sinsr_runtime_create(C.byref(opts), C.byref(handle)))
        self.handle = handle

    def load(self, path):
        _capi.check(_capi.library().sinsr_runtime_load(self.handle, os.fsencode(path)))

    def components(self):
        lib = _capi.library()
        n = C.c_size_t()
        _capi.check(lib.sinsr_runtime_component_count(self.handle, C.byref(n)))
        out = []
        for i in range(n.value):
            info = _capi.ComponentInfo()
            info.struct_size = C.sizeof(_capi.ComponentInfo)
            _capi.check(lib.sinsr_runtime_component_info(self.handle, i, C.byref(info)))
            text = lambda b: (b or b"").decode("utf-8", "replace")
            out.append(Component(text(lib.sinsr_kind_name(info.kind)), text(info.name), text(info.version),
                                 text(info.file), text(info.plugin_name), text(info.summary)))
        return out

    def close(self):
        if self.handle:
            _capi.library().sinsr_runtime_destroy(self.handle)
            self.handle = None


def _plugin_file(runtime, plugin):
    """A --plugin argument as a file: a path, or the bare name ("student.so", "student") of a
    library in the default plugin folders."""
    path = os.fspath(plugin)
    if os.path.exists(path) or os.path.dirname(path):
        return os.path.abspath(path)
    names = {path, path + ".so"}
    for c in runtime.components():
        if os.path.basename(c.file) in names:
            return c.file
    raise Error(Code.NOT_FOUND, "plugin '%s' not found: not a file here, and no library of that name in the "
                                "plugin folders (SINSR_PLUGIN_PATH, the library's sinsr/plugins)" % path)


def components(plugins=(), default_paths=True):
    """The components a runtime loads: the default plugin folders, plus `plugins` (files or folders)."""
    rt = _Runtime(0, default_paths)
    try:
        for p in [plugins] if isinstance(plugins, (str, os.PathLike)) else plugins:
            rt.load(_plugin_file(rt, p))
        return rt.components()
    finally:
        rt.close()


def _part(name, config, weights):
    """A pipeline-spec part: a bare name, or {name, config | config_file, weights}."""
    if config is None and weights is None:
        return name
    part = {} if name is None else {"name": name}
    if isinstance(config, dict):
        part["config"] = config
    elif config is not None:  # a YAML/JSON file
        part["config_file"] = os.fspath(config)
    if weights is not None:
        part["weights"] = os.fspath(weights)
    return part


class Upscaler:
    """An inference pipeline: `Upscaler(...)(image)` returns the super-resolved image.

    plugin      plugin library (path, or a name like "student.so" from the plugin folders) or a
                list of them; its backbone becomes the default one, as with `sinsr-host infer --plugin`
    backbone    backbone or model name (default: the plugin's; with weights alone, the network the
                file stores or the plugins detect; else the installed defaults.json's)
    weights     backbone checkpoint (.pth/.safetensors; "none": untrained); default: the plugin's own
    backbone_config, codec_config, sampler_config: a dict, or a YAML/JSON file
    codec       codec name, "none" for pixel space (default: the model's, else defaults.json's);
                codec_weights: its checkpoint
    sampler     sampler name; steps: respace it to this many steps
    scale, seed, precision ("fp32", "bf16", "fp16" on CUDA), pad_multiple
    tile        LR tile size (0: never tile); tile_stride, tile_batch
    device      "cpu", "cuda", "cuda:N" (inputs and outputs stay on the CPU side of the C API)
    threads     CPU threads of this upscaler's runs (0: every core this process may use), applied
                around each call and restored after it (OpenBLAS keeps one count per process)
    spec        extra pipeline-spec keys (abi/sinsr_host.h), applied last

    Options left as None are filled by the model's preferred pipeline, else the host's defaults,
    as `sinsr-host infer` does, so Upscaler() gives the CLI's bytes. `.settings` is what the
    host resolved (every part named, every value filled: sinsr_pipeline_settings).
    """

    def __init__(self, plugin=None, *, backbone=None, weights=None, backbone_config=None, codec=None,
                 codec_weights=None, codec_config=None, sampler=None, sampler_config=None, steps=None,
                 scale=None, seed=None, tile=None, tile_stride=None, tile_batch=None, pad_multiple=None,
                 precision=None, device=None, threads=0, default_paths=True, spec=None):
        self._pipeline = None
        self._lock = threading.Lock()  # a pipeline is not re-entrant; ctypes drops the GIL in calls
        self._runtime = _Runtime(threads, default_paths)
        try:
            plugins = [] if plugin is None else [plugin] if isinstance(plugin, (str, os.PathLike)) else list(plugin)
            for p in plugins:  # loaded by choice: the last backbone among them is the default one
                self._runtime.load(_plugin_file(self._runtime, p))
            # Every part left out is named by the host, as for `sinsr-host infer`: a chosen
            # plugin's backbone, what the weights store, the model's preferred pipeline, then the
            # installed defaults.json.
            s = {}
            if backbone is not None or backbone_config is not None or weights is not None:
                s["backbone"] = _part(backbone, backbone_config, weights)
            if codec is not None:
                s["codec"] = None if codec in ("", "none") else _part(codec, codec_config, codec_weights)
            elif codec_config is not None or codec_weights is not None:
                raise Error(Code.INVALID_ARGUMENT, "codec_config / codec_weights need codec=NAME")
            if sampler is not None:
                s["sampler"] = _part(sampler, sampler_config, None)
            elif sampler_config is not None:
                raise Error(Code.INVALID_ARGUMENT, "sampler_config needs sampler=NAME")
            for key, value in (("steps", steps), ("scale", scale), ("seed", seed), ("precision", precision),
                               ("device", device), ("pad_multiple", pad_multiple), ("chop_size", tile),
                               ("chop_stride", tile_stride), ("chop_batch", tile_batch)):
                if value is not None:
                    s[key] = value
            s.update(spec or {})
            self.spec = s
            handle = C.c_void_p()
            _capi.check(_capi.library().sinsr_pipeline_create(self._runtime.handle, json.dumps(s).encode(),
                                                              C.byref(handle)))
            self._pipeline = handle
            text = C.c_char_p()
            _capi.check(_capi.library().sinsr_pipeline_settings(handle, C.byref(text)))
            # What runs, as the host resolved it: every part named, the model's and the defaults'
            # values filled in (sinsr_pipeline_settings).
            self.settings = json.loads(text.value.decode())
        except BaseException:
            self.close()
            raise

    def components(self):
        """The components this upscaler's runtime has loaded."""
        return self._runtime.components()

    def close(self):
        """Frees the model now (also done when the object is collected). Waits for calls running
        in other threads; later calls raise sinsr.Error."""
        lock = getattr(self, "_lock", None)
        if lock is None:  # __init__ failed before anything was made
            return
        with lock:
            lib = _capi._lib
            if getattr(self, "_pipeline", None):
                lib.sinsr_pipeline_destroy(self._pipeline)
                self._pipeline = None
            if getattr(self, "_runtime", None):
                self._runtime.close()
                self._runtime = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _run(self, tensor):
        """One sinsr_pipeline_run on a CPU float array/tensor ([H,W,C] or [N,C,H,W]) with __dlpack__;
        returns the DLManagedTensor* result, now the caller's."""
        out = _capi.PDLM()
        with self._lock:  # close() takes it too: it never frees the pipeline under a running call
            if not self._pipeline:
                raise Error(Code.INVALID_ARGUMENT, "this Upscaler is closed")
            _capi.check(_capi.library().sinsr_pipeline_run(self._pipeline, _capi.to_managed(tensor),
                                                           C.byref(out)))
        return out

    def __call__(self, image):
        """Upscales one image.

        numpy: HxW (gray), HxWxC with C = 1..4 (RGB, RGBA, gray+alpha), or a NxHxWxC batch;
        uint8 or uint16 (returned quantised like the CLI's image files) or float in [0, 1]
        (returned in the same float dtype, without a copy).
        torch: [C,H,W], [N,C,H,W] or [H,W], the same dtype rules; returned on the input's device.
        """
        torch = sys.modules.get("torch")  # a torch tensor implies torch is imported already
        if torch is not None and isinstance(image, torch.Tensor):
            return self._call_torch(torch, image)
        pil = sys.modules.get("PIL.Image")
        if pil is not None and isinstance(image, pil.Image):
            # A PIL image in, a PIL image out (its mode kept: L, LA, RGB, RGBA; 16-bit I;16 as uint16).
            mode = image.mode if image.mode in ("L", "LA", "RGB", "RGBA", "I;16") else "RGB"  # palettes, CMYK
            pixels = np.asarray(image if mode == image.mode else image.convert(mode))
            return pil.fromarray(self._call_numpy(pixels), mode=mode)
        if isinstance(image, (str, bytes, os.PathLike)):
            # A file: read as the CLI reads it, returned in the sample type the CLI would write.
            out = _capi.numpy_view(self._run(_read_samples(image)))
            return out[:, :, 0] if out.shape[2] == 1 else out
        return self._call_numpy(image)

    def _call_numpy(self, image):
        a = np.asarray(image)
        if a.ndim == 4:
            return np.stack([self._call_numpy(x) for x in a])
        if a.ndim == 2:
            return self._call_numpy(a[:, :, None])[:, :, 0]
        if a.ndim != 3 or not 1 <= a.shape[2] <= 4:
            raise Error(Code.INVALID_ARGUMENT, "expected an HxW, HxWxC (C = 1..4) or NxHxWxC image, got shape %s%s"
                        % (a.shape, " (channels first? use .transpose(1, 2, 0))" if a.ndim == 3 and a.shape[0] <= 4 else ""))
        return _capi.numpy_view(self._run(_samples(a)))

    def _call_torch(self, torch, image):
        t = image.detach()
        device = t.device
        if t.dim() == 3 and not 1 <= t.shape[0] <= 4:  # say what was given, not the batch made of it
            raise Error(Code.INVALID_ARGUMENT, "expected a [C,H,W] or [N,C,H,W] tensor with C = 1..4, got %s%s"
                        % (tuple(t.shape), " (channels last? use .permute(2, 0, 1))" if t.shape[2] <= 4 else ""))
        if t.dim() in (2, 3):  # [H,W] gray / [C,H,W]: a batch of one
            return self._call_torch(torch, t[None])[0]
        if t.dim() != 4 or not 1 <= t.shape[1] <= 4:
            raise Error(Code.INVALID_ARGUMENT, "expected a [C,H,W] or [N,C,H,W] tensor with C = 1..4, got %s"
                        % (tuple(t.shape),))
        t = t.cpu().contiguous()
        if t.dtype != torch.uint8 and not t.is_floating_point():
            raise Error(Code.INVALID_ARGUMENT, "expected uint8 or float pixels, got %s" % t.dtype)
        # uint8 in, uint8 out: the host scales and rounds as for files.
        return torch.from_dlpack(_capi.Exported(self._run(t))).to(device)


def _samples(a):
    """Pixels as the host takes them: uint8, uint16 (scaled and rounded by the host as files are)
    or float in [0, 1]; C-contiguous, writeable and native-endian (what DLPack exports as it is)."""
    if a.dtype not in (np.uint8, np.uint16) and a.dtype.kind != "f":
        raise Error(Code.INVALID_ARGUMENT, "expected uint8, uint16 or float pixels, got %s" % a.dtype)
    if not a.flags.c_contiguous or not a.flags.writeable or not a.dtype.isnative:
        a = np.array(a, dtype=a.dtype.newbyteorder("="), order="C")
    return a


def _read_samples(path):
    """A file's pixels as the CLI reads them, in the samples it holds (uint8, uint16, float32)."""
    out = _capi.PDLM()
    _capi.check(_capi.library().sinsr_image_read_samples(os.fsencode(path), C.byref(out), None))
    return _capi.numpy_view(out)


def read_image(path):
    """An image file as `sinsr-host infer` reads it (OpenImageIO; the EXIF orientation applied):
    HxWxC with C = 2 (gray+alpha), 3 or 4; uint8 or uint16 as the file holds it, float32
    for float files (EXR, float TIFF); gray as HxW. Errors (missing file, not an image) are sinsr.Error naming it."""
    out = _read_samples(path)
    return out[:, :, 0] if out.shape[2] == 1 else out


def image_formats():
    """The file extensions this build writes any image to, its default first: ['png', 'jpg', ...,
    'ppm'], or ['ppm'] in a build without OpenImageIO (.pgm takes gray images too)."""
    return _capi.library().sinsr_image_formats().decode().split()


def write_image(path, image):
    """Writes HxW or HxWxC (C = 1..4) pixels as `sinsr-host infer` does: the format from the
    extension, uint8 -> 8 bits, uint16 -> 16, float in [0, 1] -> float where the format has it
    (else 16 bits); the file appears whole (written aside, then renamed)."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or not 1 <= a.shape[2] <= 4:
        raise Error(Code.INVALID_ARGUMENT, "expected an HxW or HxWxC (C = 1..4) image, got shape %s" % (a.shape,))
    a = _samples(a)
    if a.dtype.kind == "f":
        a = np.ascontiguousarray(a, dtype=np.float32)  # files are written from float32, as the CLI writes them
    # bits 0: the samples' own depth (uint8 8, uint16 16, float 32)
    _capi.check(_capi.library().sinsr_image_write(os.fsencode(path), _capi.to_managed(a), 0))
