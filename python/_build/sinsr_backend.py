"""The PEP 517 backend of `pip install ./python`: a wheel is a zip of sinsr/*.py and its
dist-info, so it is written here directly, straight into pip's output folder. Nothing is written
into the checkout (setuptools left build/ and an egg-info there) and nothing is downloaded (no
build requirements: pip's isolated build works offline)."""
import base64
import hashlib
import io
import os
import tarfile
import zipfile

NAME, VERSION = "sinsr", "0.1.0"
SUMMARY = "SinSR diffusion super-resolution: numpy/torch bindings of libsinsr_host (ctypes)"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # python/
DIST_INFO = "%s-%s.dist-info" % (NAME, VERSION)
TAG = "py3-none-any"


def _metadata():
    return ("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: %s\nRequires-Python: >=3.8\n"
            "Requires-Dist: numpy>=1.22\n" % (NAME, VERSION, SUMMARY)).encode()


def _sources():
    pkg = os.path.join(ROOT, NAME)
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py"):
            yield "%s/%s" % (NAME, name), os.path.join(pkg, name)


def _write_wheel(directory, files):
    """files: [(archive name, bytes)]; adds the dist-info and RECORD."""
    files = list(files) + [
        (DIST_INFO + "/METADATA", _metadata()),
        (DIST_INFO + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: sinsr_backend\nRoot-Is-Purelib: true\n"
                                "Tag: %s\n" % TAG).encode()),
    ]
    record = []
    path = os.path.join(directory, "%s-%s-%s.whl" % (NAME, VERSION, TAG))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
        for name, data in files:
            whl.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append("%s,sha256=%s,%d" % (name, digest, len(data)))
        record.append(DIST_INFO + "/RECORD,,")
        whl.writestr(DIST_INFO + "/RECORD", "\n".join(record) + "\n")
    return os.path.basename(path)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def get_requires_for_build_wheel(config_settings=None):
    return []


get_requires_for_build_editable = get_requires_for_build_sdist = get_requires_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, [(name, _read(path)) for name, path in _sources()])


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """`pip install -e ./python`: a .pth line puts this checkout's python/ on the path."""
    return _write_wheel(wheel_directory, [("%s.pth" % NAME, (ROOT + "\n").encode())])


def build_sdist(sdist_directory, config_settings=None):
    base = "%s-%s" % (NAME, VERSION)
    path = os.path.join(sdist_directory, base + ".tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        for rel in ["pyproject.toml", "_build/sinsr_backend.py"] + [name for name, _ in _sources()]:
            tar.add(os.path.join(ROOT, rel), arcname="%s/%s" % (base, rel))
        info = tarfile.TarInfo(base + "/PKG-INFO")
        data = _metadata()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return os.path.basename(path)
