"""ctypes bindings of abi/sinsr_host.h, the library search, and DLPack hand-over.

Nothing here is public; sinsr/__init__.py builds the Python API on top of it."""
import ctypes as C
import ctypes.util
import enum
import glob
import os
import threading
import weakref

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
LIBRARY_NAME = "libsinsr_host.so"


class Code(enum.IntEnum):
    """sinsr_code of abi/sinsr_plugin.h."""
    OK = 0
    INVALID_ARGUMENT = 1
    NOT_FOUND = 2
    UNSUPPORTED = 3
    ABI = 4
    IO = 5
    FORMAT = 6
    OUT_OF_MEMORY = 7
    CANCELLED = 8
    RUNTIME = 9


class Error(RuntimeError):
    """A failure of the SinSR runtime or of the arguments given to it.

    .code is a sinsr.Code (an int), .message the runtime's status message."""

    def __init__(self, code, message):
        try:
            code = Code(code)
        except ValueError:
            code = int(code)
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self):
        name = self.code.name if isinstance(self.code, Code) else str(self.code)
        return "sinsr.Error(%s, %r)" % (name, self.message)


# ---- DLPack and C API structs ----------------------------------------------------------------

class DLDevice(C.Structure):
    _fields_ = [("device_type", C.c_int32), ("device_id", C.c_int32)]


class DLDataType(C.Structure):
    _fields_ = [("code", C.c_uint8), ("bits", C.c_uint8), ("lanes", C.c_uint16)]


class DLTensor(C.Structure):
    _fields_ = [("data", C.c_void_p), ("device", DLDevice), ("ndim", C.c_int32), ("dtype", DLDataType),
                ("shape", C.POINTER(C.c_int64)), ("strides", C.POINTER(C.c_int64)), ("byte_offset", C.c_uint64)]


class DLManagedTensor(C.Structure):
    pass


DLM_DELETER = C.CFUNCTYPE(None, C.POINTER(DLManagedTensor))
DLManagedTensor._fields_ = [("dl_tensor", DLTensor), ("manager_ctx", C.c_void_p), ("deleter", DLM_DELETER)]
PDLM = C.POINTER(DLManagedTensor)


class RuntimeOptions(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("num_threads", C.c_int32), ("load_default_paths", C.c_int32)]


class ComponentInfo(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("kind", C.c_int32), ("thread_safety", C.c_int32),
                ("name", C.c_char_p), ("version", C.c_char_p), ("summary", C.c_char_p),
                ("config_schema", C.c_char_p), ("file", C.c_char_p), ("plugin_name", C.c_char_p),
                ("abi_version", C.c_uint32)]


# ---- finding and loading the library ---------------------------------------------------------

def _candidates():
    """(where, path) in the order tried; SINSR_LIBRARY wins because the user set it on purpose."""
    env = os.environ.get("SINSR_LIBRARY")
    if env:
        yield "SINSR_LIBRARY", os.path.join(env, LIBRARY_NAME) if os.path.isdir(env) else env
        return  # an explicit choice that fails must not silently pick another library
    try:  # written by `cmake --install`: the library relative to the installed package
        from . import _install
        yield "the CMake install", os.path.normpath(os.path.join(_HERE, _install.LIBRARY))
    except ImportError:
        pass
    for path in sorted(glob.glob(os.path.join(_HERE, LIBRARY_NAME + "*"))):
        yield "the package folder", path
    # Run from a checkout (or `pip install -e`): python/sinsr -> <repo>/build/lib.
    source = os.path.dirname(_HERE)
    if os.path.isfile(os.path.join(source, "pyproject.toml")):
        yield "the build tree", os.path.join(os.path.dirname(source), "build", "lib", LIBRARY_NAME)


_lib = None
_lib_path = None
_lib_lock = threading.Lock()


def _declare(lib):
    S = C.c_void_p  # sinsr_status*
    sigs = {
        "sinsr_abi_version": ([], C.c_uint32),
        "sinsr_version": ([], C.c_char_p),
        "sinsr_kind_name": ([C.c_int32], C.c_char_p),
        "sinsr_status_code": ([S], C.c_int32),
        "sinsr_status_message": ([S], C.c_char_p),
        "sinsr_status_release": ([S], None),
        "sinsr_runtime_create": ([C.POINTER(RuntimeOptions), C.POINTER(C.c_void_p)], S),
        "sinsr_runtime_destroy": ([C.c_void_p], None),
        "sinsr_runtime_load": ([C.c_void_p, C.c_char_p], S),
        "sinsr_runtime_component_count": ([C.c_void_p, C.POINTER(C.c_size_t)], S),
        "sinsr_runtime_component_info": ([C.c_void_p, C.c_size_t, C.POINTER(ComponentInfo)], S),
        "sinsr_pipeline_create": ([C.c_void_p, C.c_char_p, C.POINTER(C.c_void_p)], S),
        "sinsr_pipeline_run": ([C.c_void_p, PDLM, C.POINTER(PDLM)], S),
        "sinsr_pipeline_destroy": ([C.c_void_p], None),
        "sinsr_pipeline_settings": ([C.c_void_p, C.POINTER(C.c_char_p)], S),
        "sinsr_image_read": ([C.c_char_p, C.POINTER(PDLM), C.POINTER(C.c_int32)], S),
        "sinsr_image_read_samples": ([C.c_char_p, C.POINTER(PDLM), C.POINTER(C.c_int32)], S),
        "sinsr_image_write": ([C.c_char_p, PDLM, C.c_int32], S),
        "sinsr_image_formats": ([], C.c_char_p),
    }
    for name, (args, res) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = res


def library():
    """The loaded libsinsr_host (loaded on first use, so `import sinsr` never fails)."""
    global _lib, _lib_path
    with _lib_lock:
        if _lib is not None:
            return _lib
        tried = []
        found = None
        for where, path in _candidates():
            if os.path.exists(path):
                found = path
                break
            tried.append("%s (%s)" % (path, where))
        if found is None and not os.environ.get("SINSR_LIBRARY"):
            found = ctypes.util.find_library("sinsr_host")  # ldconfig / LD_LIBRARY_PATH installs
            if found is None:
                tried.append("the system's library path")
        if found is None:
            raise Error(Code.NOT_FOUND, "libsinsr_host not found; tried: " + ", ".join(tried) +
                        ". Set SINSR_LIBRARY to the library (e.g. build/lib/libsinsr_host.so)")
        try:
            lib = C.CDLL(found)
            _declare(lib)
        except (OSError, AttributeError) as e:
            raise Error(Code.ABI, "%s: cannot use it as libsinsr_host (%s)" % (found, e)) from None
        _lib, _lib_path = lib, found
        return lib


def library_path():
    library()
    return os.path.abspath(_lib_path) if os.path.sep in _lib_path else _lib_path


def check(status):
    """Raises the status as sinsr.Error (and releases it); NULL is success."""
    if status:
        lib = library()
        code = lib.sinsr_status_code(status)
        message = (lib.sinsr_status_message(status) or b"").decode("utf-8", "replace")
        lib.sinsr_status_release(status)
        raise Error(code, message)


# ---- DLPack hand-over --------------------------------------------------------------------------
# Own function objects (CDLL[...] makes a fresh one) so that our argtypes do not change those of
# other ctypes users of pythonapi in the same process.
_py = C.pythonapi
_capsule_get = _py["PyCapsule_GetPointer"]
_capsule_get.argtypes, _capsule_get.restype = [C.py_object, C.c_char_p], C.c_void_p
_capsule_set_name = _py["PyCapsule_SetName"]
_capsule_set_name.argtypes, _capsule_set_name.restype = [C.py_object, C.c_char_p], C.c_int
_capsule_new = _py["PyCapsule_New"]
_capsule_new.argtypes, _capsule_new.restype = [C.c_void_p, C.c_char_p, C.c_void_p], C.py_object
# Raw-pointer versions for the destructor: the capsule is being freed, no references may be taken.
_capsule_valid_raw = _py["PyCapsule_IsValid"]
_capsule_valid_raw.argtypes, _capsule_valid_raw.restype = [C.c_void_p, C.c_char_p], C.c_int
_capsule_get_raw = _py["PyCapsule_GetPointer"]
_capsule_get_raw.argtypes, _capsule_get_raw.restype = [C.c_void_p, C.c_char_p], C.c_void_p


@C.CFUNCTYPE(None, C.c_void_p)
def _unconsumed_capsule(capsule):
    # A result capsule nobody imported (an exception in between): free the host's tensor.
    if _capsule_valid_raw(capsule, b"dltensor"):
        managed = C.cast(_capsule_get_raw(capsule, b"dltensor"), PDLM)
        if managed and managed.contents.deleter:
            managed.contents.deleter(managed)


def to_managed(obj):
    """The DLManagedTensor of a CPU array/tensor, without copying; the callee now owns it."""
    capsule = obj.__dlpack__()
    ptr = _capsule_get(capsule, b"dltensor")
    _capsule_set_name(capsule, b"used_dltensor")  # the capsule must not free it any more
    return C.cast(ptr, PDLM)


class Exported:
    """Wraps a DLManagedTensor the host returned, for np.from_dlpack / torch.from_dlpack."""

    def __init__(self, managed):
        self._capsule = _capsule_new(C.cast(managed, C.c_void_p), b"dltensor",
                                     C.cast(_unconsumed_capsule, C.c_void_p))

    def __dlpack__(self, stream=None):
        return self._capsule

    def __dlpack_device__(self):
        return (1, 0)  # kDLCPU: the pipeline always returns CPU tensors


_DL_DTYPES = {(0, 8): "i1", (0, 16): "i2", (0, 32): "i4", (0, 64): "i8", (1, 8): "u1", (1, 16): "u2",
              (2, 16): "f2", (2, 32): "f4", (2, 64): "f8"}


def numpy_view(managed):
    """A writeable numpy array over a CPU tensor the host returned, without copying; the host's
    deleter runs when the last view of it is gone. (np.from_dlpack would give a read-only one.)"""
    try:
        t = managed.contents.dl_tensor
        key = (t.dtype.code, t.dtype.bits)
        if key not in _DL_DTYPES or t.dtype.lanes != 1 or t.device.device_type != 1:
            raise Error(Code.UNSUPPORTED, "result tensor of DLPack dtype %s/%s on device %s has no numpy form"
                        % (key + (t.device.device_type,)))
        dtype = np.dtype(_DL_DTYPES[key])
        shape = tuple(t.shape[i] for i in range(t.ndim))
        if t.strides:
            strides = tuple(t.strides[i] * dtype.itemsize for i in range(t.ndim))
        else:  # NULL strides: compact row-major
            strides = tuple(int(np.prod(shape[i + 1:], dtype=np.int64)) * dtype.itemsize for i in range(t.ndim))
        if any(s < 0 for s in strides):
            raise Error(Code.UNSUPPORTED, "result tensor has negative strides")
        extent = 0 if 0 in shape else dtype.itemsize + sum((n - 1) * s for n, s in zip(shape, strides))
        buffer = (C.c_char * max(extent, 1)).from_address(t.data + t.byte_offset)
    except BaseException:
        managed.contents.deleter(managed)
        raise
    weakref.finalize(buffer, managed.contents.deleter, managed).atexit = False  # the process frees it anyway
    return np.ndarray(shape, dtype, buffer=buffer, strides=strides)
