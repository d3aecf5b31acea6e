"""Image tasks: digits subsets and scaling, MNIST IDX reading and fetching, MNIST-1D."""

from __future__ import annotations

import gzip
import hashlib
import re

import numpy as np
import pytest
import torch

from grokscope.config import parse_config
from grokscope.errors import ConfigError
from grokscope.tasks import build_task
from grokscope.tasks.idx import DataError, read_idx
from grokscope.tasks.images import DigitsSpec, MNIST1DSpec, MNISTSpec, download_mnist


@pytest.fixture(scope="module")
def sklearn_digits():
    from sklearn.datasets import load_digits

    return load_digits()


def test_digits_subset_per_class_and_labels(sklearn_digits):
    task = build_task(DigitsSpec(n_train_per_class=7, n_test=100))
    assert task.x_train.shape == (70, 64) and task.x_test.shape == (100, 64)
    assert task.y_train.bincount(minlength=10).tolist() == [7] * 10
    train, test = task.metadata["train_index"], task.metadata["test_index"]
    assert not set(train) & set(test)
    # labels and pixels are those of the indexed images, pixels / 16 by the unit scaling
    assert np.array_equal(task.y_train.numpy(), sklearn_digits.target[train])
    assert np.allclose(task.x_test.numpy(), sklearn_digits.data[test] / 16.0)


def test_digits_total_subset_images_and_scaling():
    task = build_task(DigitsSpec(n_train=50, flatten=False, scaling="standardize", input_scale=0.5))
    assert task.x_train.shape == (50, 1, 8, 8) and task.n_classes == 10 and task.input_dim == 64
    full = build_task(DigitsSpec(scaling="standardize"))
    # the scaling statistics come from the whole training pool: mean 0, std 1 there
    assert abs(float(full.x_train.mean())) < 1e-5 and abs(float(full.x_train.std(unbiased=False)) - 1) < 1e-5
    assert float(task.x_train.abs().max()) <= 0.5 * float(full.x_train.abs().max()) + 1e-6


def test_digits_deterministic_and_seeded():
    a, b = build_task(DigitsSpec(n_train=30)), build_task(DigitsSpec(n_train=30))
    c = build_task(DigitsSpec(n_train=30, subset_seed=1))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)


def test_digits_bad_subsets_raise_config_errors():
    with pytest.raises(ConfigError, match="n_train"):
        parse_config({"task": {"name": "digits", "n_train": 5, "n_train_per_class": 2}, "model": "mlp"})
    with pytest.raises(ConfigError, match="n_train_per_class = 500"):
        build_task(DigitsSpec(n_train_per_class=500))


def write_idx(path, array: np.ndarray, compress: bool, cut: int = 0) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    raw = raw[: len(raw) - cut]
    if compress:
        with gzip.open(path, "wb") as stream:
            stream.write(raw)
    else:
        path.write_bytes(raw)


def fake_mnist(folder, compress: bool, n_train: int = 30, n_test: int = 12) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(n_test) % 10,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(folder / (name + (".gz" if compress else "")), array, compress)
    return arrays


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_reads_idx_files(tmp_path, compress):
    arrays = fake_mnist(tmp_path, compress)
    assert np.array_equal(
        read_idx(tmp_path / ("t10k-images-idx3-ubyte" + (".gz" if compress else ""))), arrays["t10k-images-idx3-ubyte"]
    )
    task = build_task(MNISTSpec(folder=str(tmp_path), n_train_per_class=2, scaling="none"))
    assert task.x_train.shape == (20, 784) and task.x_test.shape == (12, 784)
    index = task.metadata["train_index"]
    assert np.array_equal(task.x_train.numpy(), arrays["train-images-idx3-ubyte"][index].reshape(20, -1))
    assert np.array_equal(task.y_train.numpy(), arrays["train-labels-idx1-ubyte"][index])


def test_mnist_missing_file_is_named(tmp_path):
    fake_mnist(tmp_path, compress=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=re.escape("t10k-labels-idx1-ubyte.gz")):
        build_task(MNISTSpec(folder=str(tmp_path)))


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_truncated_file_is_a_clear_error(tmp_path, compress):
    fake_mnist(tmp_path, compress)
    name = "train-images-idx3-ubyte" + (".gz" if compress else "")
    write_idx(tmp_path / name, np.zeros((30, 28, 28)), compress, cut=100)
    with pytest.raises(DataError, match="truncated"):
        build_task(MNISTSpec(folder=str(tmp_path)))
    if compress:  # a gzip stream cut short
        (tmp_path / name).write_bytes((tmp_path / name).read_bytes()[:200])
        with pytest.raises(DataError, match=re.escape(name)):
            build_task(MNISTSpec(folder=str(tmp_path)))


def test_download_mnist_verifies_checksums(tmp_path):
    mirror = tmp_path / "mirror"
    fake_mnist(mirror, compress=True)
    checksums = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(mirror.glob("*.gz"))}
    folder = tmp_path / "data"
    paths = download_mnist(folder, mirrors=("file://" + str(mirror),), checksums=checksums)
    assert sorted(p.name for p in paths) == sorted(checksums)
    assert build_task(MNISTSpec(folder=str(folder))).x_train.shape == (30, 784)
    # a mirror serving a file whose checksum differs is refused, and nothing is left behind
    wrong = {**checksums, "t10k-labels-idx1-ubyte.gz": "0" * 32}
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="checksum"):
        download_mnist(folder, mirrors=("file://" + str(mirror),), checksums=wrong)
    assert not (folder / "t10k-labels-idx1-ubyte.gz").exists()
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


def test_mnist1d_generated_locally_without_touching_global_rng():
    pytest.importorskip("mnist1d")
    state = np.random.get_state()[1].copy()
    task = build_task(MNIST1DSpec(num_samples=200, n_train=100))
    assert np.array_equal(np.random.get_state()[1], state)
    assert task.x_train.shape == (100, 40) and task.x_test.shape == (40, 40)
    assert set(task.y_train.tolist()) <= set(range(10))
    again = build_task(MNIST1DSpec(num_samples=200, n_train=100))
    assert torch.equal(task.x_train, again.x_train)
