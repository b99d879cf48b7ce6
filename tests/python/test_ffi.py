"""The host C API from Python through ctypes: numpy arrays go in and come back through DLPack
without copies. Run: python3 test_ffi.py HOST_LIBRARY TEST_PLUGIN_DIR [PLUGIN_DIR PARITY_DIR]"""
import ctypes as C
import os
import sys
import unittest

import numpy as np

ARGS = sys.argv[1:]
if len(ARGS) < 2:
    sys.exit("usage: test_ffi.py HOST_LIBRARY TEST_PLUGIN_DIR [PLUGIN_DIR PARITY_DIR]")
HOST_LIB, TEST_PLUGINS = ARGS[0], ARGS[1]
PLUGINS = ARGS[2] if len(ARGS) > 2 else ""
PARITY = os.environ.get("SINSR_PARITY_DIR") or (ARGS[3] if len(ARGS) > 3 else "")
sys.argv = sys.argv[:1]


# The ABI's struct layouts, declared once in the package (python/sinsr/_capi.py); importing it
# loads no library.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from sinsr._capi import PDLM, ComponentInfo  # noqa: E402


class Component(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("kind", C.c_int32), ("thread_safety", C.c_int32),
                ("name", C.c_char_p), ("version", C.c_char_p), ("summary", C.c_char_p),
                ("config_schema", C.c_char_p), ("default_config", C.c_char_p),
                ("default_weights", C.c_char_p), ("vtable", C.c_void_p)]


STATUS = C.c_void_p
LOSS_CREATE = C.CFUNCTYPE(STATUS, C.c_char_p, C.POINTER(C.c_void_p))
LOSS_DESTROY = C.CFUNCTYPE(None, C.c_void_p)
LOSS_FORWARD = C.CFUNCTYPE(STATUS, C.c_void_p, C.c_void_p, PDLM, PDLM, C.POINTER(PDLM), C.POINTER(C.c_void_p))
LOSS_BACKWARD = C.CFUNCTYPE(STATUS, C.c_void_p, C.c_void_p, C.c_void_p, PDLM, C.POINTER(PDLM))
LOSS_TAPE_RELEASE = C.CFUNCTYPE(None, C.c_void_p, C.c_void_p)


class LossVTable(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("create", LOSS_CREATE), ("destroy", LOSS_DESTROY),
                ("forward", LOSS_FORWARD), ("backward", LOSS_BACKWARD), ("tape_release", LOSS_TAPE_RELEASE)]


lib = C.CDLL(HOST_LIB)
lib.sinsr_runtime_create.argtypes = [C.c_void_p, C.POINTER(C.c_void_p)]
lib.sinsr_runtime_create.restype = STATUS
lib.sinsr_runtime_destroy.argtypes = [C.c_void_p]
lib.sinsr_runtime_load.argtypes = [C.c_void_p, C.c_char_p]
lib.sinsr_runtime_load.restype = STATUS
lib.sinsr_runtime_component_count.argtypes = [C.c_void_p, C.POINTER(C.c_size_t)]
lib.sinsr_runtime_component_count.restype = STATUS
lib.sinsr_runtime_component_info.argtypes = [C.c_void_p, C.c_size_t, C.POINTER(ComponentInfo)]
lib.sinsr_runtime_component_info.restype = STATUS
lib.sinsr_runtime_find.argtypes = [C.c_void_p, C.c_int32, C.c_char_p, C.POINTER(C.POINTER(Component))]
lib.sinsr_runtime_find.restype = STATUS
lib.sinsr_status_message.argtypes = [STATUS]
lib.sinsr_status_message.restype = C.c_char_p
lib.sinsr_status_code.argtypes = [STATUS]
lib.sinsr_status_code.restype = C.c_int32
lib.sinsr_status_release.argtypes = [STATUS]
lib.sinsr_last_error.restype = C.c_char_p
lib.sinsr_kind_name.restype = C.c_char_p

py = C.pythonapi
py.PyCapsule_GetPointer.argtypes = [C.py_object, C.c_char_p]
py.PyCapsule_GetPointer.restype = C.c_void_p
py.PyCapsule_SetName.argtypes = [C.py_object, C.c_char_p]
py.PyCapsule_New.argtypes = [C.c_void_p, C.c_char_p, C.c_void_p]
py.PyCapsule_New.restype = C.py_object


def check(status):
    if status:
        msg = lib.sinsr_status_message(status).decode()
        lib.sinsr_status_release(status)
        raise RuntimeError(msg)


def to_dlpack(array):
    """Hands a numpy array to the host without copying: the host calls the deleter."""
    capsule = array.__dlpack__()
    ptr = py.PyCapsule_GetPointer(capsule, b"dltensor")
    py.PyCapsule_SetName(capsule, b"used_dltensor")  # ownership moved to the callee
    return C.cast(ptr, PDLM)


class _Exported:
    def __init__(self, managed):
        self._capsule = py.PyCapsule_New(C.cast(managed, C.c_void_p), b"dltensor", None)

    def __dlpack__(self, stream=None):
        return self._capsule

    def __dlpack_device__(self):
        return (1, 0)


def from_dlpack(managed):
    """A numpy view of a tensor the host returned; numpy calls its deleter when done."""
    return np.from_dlpack(_Exported(managed))


class HostFFI(unittest.TestCase):
    def setUp(self):
        self.rt = C.c_void_p()
        check(lib.sinsr_runtime_create(None, C.byref(self.rt)))

    def tearDown(self):
        lib.sinsr_runtime_destroy(self.rt)

    def test_errors_carry_messages(self):
        st = lib.sinsr_runtime_load(self.rt, b"/no/such/plugin.so")
        self.assertTrue(st)
        self.assertIn("/no/such/plugin.so", lib.sinsr_status_message(st).decode())
        self.assertEqual(lib.sinsr_status_code(st), 2)  # SINSR_ERR_NOT_FOUND
        lib.sinsr_status_release(st)
        self.assertIn("not found", lib.sinsr_last_error().decode())

    def test_lists_components(self):
        check(lib.sinsr_runtime_load(self.rt, os.path.join(TEST_PLUGINS, "l1_c.so").encode()))
        n = C.c_size_t()
        check(lib.sinsr_runtime_component_count(self.rt, C.byref(n)))
        names = []
        for i in range(n.value):
            info = ComponentInfo()
            info.struct_size = C.sizeof(ComponentInfo)
            check(lib.sinsr_runtime_component_info(self.rt, i, C.byref(info)))
            names.append((lib.sinsr_kind_name(info.kind).decode(), info.name.decode()))
        self.assertIn(("loss", "l1_c"), names)

    def test_loss_through_dlpack_without_copies(self):
        check(lib.sinsr_runtime_load(self.rt, os.path.join(TEST_PLUGINS, "l1_c.so").encode()))
        comp = C.POINTER(Component)()
        check(lib.sinsr_runtime_find(self.rt, 4, b"l1_c", C.byref(comp)))
        vt = C.cast(comp.contents.vtable, C.POINTER(LossVTable)).contents
        loss = C.c_void_p()
        check(vt.create(b"{}", C.byref(loss)))

        rng = np.random.default_rng(0)
        pred = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
        target = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
        base_refs = sys.getrefcount(pred)
        value, tape = PDLM(), C.c_void_p()
        check(vt.forward(loss, None, to_dlpack(pred), to_dlpack(target), C.byref(value), C.byref(tape)))
        self.assertGreater(sys.getrefcount(pred), base_refs)  # the tape holds numpy's memory
        out = from_dlpack(value)
        self.assertAlmostEqual(float(out), float(np.abs(pred - target).mean()), places=6)

        # Zero copy in: the tape reads numpy's own buffer, so a later write is seen by backward.
        pred[0, 0, 0, 0] = target[0, 0, 0, 0] + 10.0
        grad = PDLM()
        check(vt.backward(loss, None, tape, None, C.byref(grad)))
        data_ptr = grad.contents.dl_tensor.data
        g = from_dlpack(grad)
        self.assertEqual(g.ctypes.data, data_ptr)  # zero copy out
        expected = np.sign(pred - target) / pred.size
        np.testing.assert_allclose(g, expected, rtol=0, atol=1e-9)
        del g
        self.assertEqual(sys.getrefcount(pred), base_refs)  # every deleter ran
        vt.destroy(loss)

    @unittest.skipUnless(PLUGINS and PARITY and hasattr(lib, "sinsr_pipeline_create"),
                         "pipeline plugins or parity files not available")
    def test_pipeline_upscales_numpy_image(self):
        check(lib.sinsr_runtime_load(self.rt, PLUGINS.encode()))
        spec = ('{"backbone": {"name": "unet_swin", "config_file": "%s/tiny-unet.yaml", "weights": "%s/unet_tiny.pth"},'
                ' "codec": {"name": "vq_f4", "config_file": "%s/tiny-vq.yaml", "weights": "%s/vq_tiny.pth"},'
                ' "sampler": {"name": "single-step"}, "scale": 4, "seed": 1}') % (PARITY, PARITY, PARITY, PARITY)
        lib.sinsr_pipeline_create.argtypes = [C.c_void_p, C.c_char_p, C.POINTER(C.c_void_p)]
        lib.sinsr_pipeline_create.restype = STATUS
        lib.sinsr_pipeline_run.argtypes = [C.c_void_p, PDLM, C.POINTER(PDLM)]
        lib.sinsr_pipeline_run.restype = STATUS
        lib.sinsr_pipeline_destroy.argtypes = [C.c_void_p]
        pipe = C.c_void_p()
        check(lib.sinsr_pipeline_create(self.rt, spec.encode(), C.byref(pipe)))
        image = np.random.default_rng(1).random((20, 24, 3), dtype=np.float32)
        out = PDLM()
        check(lib.sinsr_pipeline_run(pipe, to_dlpack(image), C.byref(out)))
        sr = from_dlpack(out)
        self.assertEqual(sr.shape, (80, 96, 3))
        self.assertTrue(np.isfinite(sr).all() and sr.min() >= 0.0 and sr.max() <= 1.0)
        lib.sinsr_pipeline_destroy(pipe)


if __name__ == "__main__":
    unittest.main(verbosity=2)
