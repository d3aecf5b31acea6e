"""Image classification: scikit-learn's bundled 8x8 digits, MNIST from local IDX files, MNIST-1D.

``digits`` is the default wherever a seed paper used MNIST (Zhao-A/B, Liu sec. 6, Layerwise
appendix H.3): it ships with scikit-learn, so no download is ever needed. Every image task
shares the options of ``ImageOptions``: a training subset (total or per class, drawn with its
own seed), flattening and input scaling. One-hot targets times a scale for MSE are set in
``training.target_scale`` with ``training.loss: mse``.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from grokscope.errors import ConfigError
from grokscope.tasks.base import TASKS, Task, TaskSpec, split_indices
from grokscope.tasks.idx import DataError, default_data_folder, download_mnist, load_mnist

__all__ = ["DataError", "DigitsSpec", "MNIST1DSpec", "MNISTSpec", "download_mnist"]


class ImageOptions(TaskSpec):
    """Options shared by the image tasks."""

    n_train: int | None = Field(None, ge=1)
    """Training subset size, drawn at random from the training pool (None: the whole pool)."""
    n_train_per_class: int | None = Field(None, ge=1)
    """Training subset of this many samples per class (exclusive with ``n_train``)."""
    n_test: int | None = Field(None, ge=1)
    """Test subset size (None: the whole test pool)."""
    subset_seed: int = 0
    """Seed of the training and test subsets (independent of the training seed)."""
    flatten: bool = True
    """Inputs as vectors (N, features); otherwise (N, 1, H, W) images or (N, 1, L) signals."""
    scaling: Literal["unit", "standardize", "none"] = "unit"
    """``unit``: min-max to [0, 1] with the training pool's extremes (pixels / 16 for digits,
    / 255 for MNIST); ``standardize``: minus the training pool's mean, over its std (scalars
    over all pixels); ``none``: raw values."""
    input_scale: float = Field(1.0, gt=0)
    """Multiplies the inputs after scaling (Layerwise appendix H.3 "input downscaling": 0.01)."""

    @model_validator(mode="after")
    def _one_subset_rule(self) -> ImageOptions:
        if self.n_train is not None and self.n_train_per_class is not None:
            raise ValueError("set n_train or n_train_per_class, not both")
        return self


def choose_subset(
    labels: np.ndarray, n_total: int | None, n_per_class: int | None, rng: np.random.Generator, key: str
) -> np.ndarray:
    """Sorted indices of a random subset: ``n_total`` samples, or ``n_per_class`` of each class."""
    if n_per_class is not None:
        chosen = []
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            if len(members) < n_per_class:
                raise ConfigError(f"task.{key} = {n_per_class}: class {c} has only {len(members)} samples in the pool")
            chosen.append(rng.choice(members, n_per_class, replace=False))
        return np.sort(np.concatenate(chosen))
    if n_total is None:
        return np.arange(len(labels))
    if n_total > len(labels):
        raise ConfigError(f"task.{key} = {n_total}: the pool has only {len(labels)} samples")
    return np.sort(rng.choice(len(labels), n_total, replace=False))


def image_task(
    spec: ImageOptions,
    train_pool: tuple[np.ndarray, np.ndarray],
    test_pool: tuple[np.ndarray, np.ndarray],
    image_shape: tuple[int, ...],
    n_classes: int = 10,
) -> Task:
    """Subset, scale and shape pools of (inputs (N, ...), labels (N,)) into a classification Task."""
    (x_pool, y_pool), (x_test_pool, y_test_pool) = train_pool, test_pool
    rng = np.random.default_rng(spec.subset_seed)
    train = choose_subset(
        y_pool, spec.n_train, spec.n_train_per_class, rng, "n_train" if spec.n_train else "n_train_per_class"
    )
    test = choose_subset(y_test_pool, spec.n_test, None, rng, "n_test")
    pool = x_pool.astype(np.float64)
    if spec.scaling == "unit":
        low, high = pool.min(), pool.max()
        offset, divisor = low, (high - low) or 1.0
    elif spec.scaling == "standardize":
        offset, divisor = pool.mean(), pool.std() or 1.0
    else:
        offset, divisor = 0.0, 1.0

    def inputs(x: np.ndarray) -> torch.Tensor:
        x = (x.astype(np.float64) - offset) / divisor * spec.input_scale
        shape = (len(x), -1) if spec.flatten else (len(x), 1, *image_shape)
        return torch.from_numpy(x.reshape(shape).astype(np.float32))

    return Task(
        x_train=inputs(x_pool[train]),
        y_train=torch.from_numpy(y_pool[train].astype(np.int64)),
        x_test=inputs(x_test_pool[test]),
        y_test=torch.from_numpy(y_test_pool[test].astype(np.int64)),
        kind="classification",
        n_classes=n_classes,
        metadata={"train_index": train, "test_index": test},
    )


class DigitsSpec(ImageOptions):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes, pixels 0..16),
    split at random into a training pool and a test set."""

    name: Literal["digits"] = "digits"
    train_fraction: float = Field(0.5, gt=0.0, lt=1.0)
    """Fraction of the 1,797 images in the training pool; the rest is the test pool."""
    split_seed: int = 0
    """Seed of the pool / test split."""


@TASKS.register(DigitsSpec)
def build_digits(spec: DigitsSpec) -> Task:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images, labels = bunch.images, bunch.target  # (1797, 8, 8) floats 0..16, (1797,)
    train, test = split_indices(len(labels), spec.train_fraction, spec.split_seed)
    task = image_task(spec, (images[train], labels[train]), (images[test], labels[test]), (8, 8))
    # indices into the whole digits set, not into the pools
    task.metadata = {
        "train_index": train[task.metadata["train_index"]],
        "test_index": test[task.metadata["test_index"]],
    }
    return task


class MNISTSpec(ImageOptions):
    """MNIST from its four IDX files (gzip or raw) in a local folder: 60,000 training and 10,000
    test images of 28x28 pixels. Nothing is downloaded unless ``grokscope data mnist --download``
    is asked for."""

    name: Literal["mnist"] = "mnist"
    folder: str | None = None
    """Folder holding the IDX files (None: ``$GROKSCOPE_DATA/mnist``, default
    ``~/.cache/grokscope/mnist``)."""


def mnist_folder(spec: MNISTSpec) -> Path:
    return Path(spec.folder).expanduser() if spec.folder is not None else default_data_folder() / "mnist"


@TASKS.register(MNISTSpec)
def build_mnist(spec: MNISTSpec) -> Task:
    arrays = load_mnist(mnist_folder(spec))
    return image_task(
        spec,
        (arrays["train_images"], arrays["train_labels"]),
        (arrays["test_images"], arrays["test_labels"]),
        (28, 28),
    )


class MNIST1DSpec(ImageOptions):
    """MNIST-1D (Greydanus 2020): 1D signals of length 40 generated procedurally from ten digit
    templates by padding, shear, translation and noise. Needs the optional ``mnist1d`` package;
    nothing is downloaded."""

    name: Literal["mnist1d"] = "mnist1d"
    num_samples: int = Field(5000, ge=20)
    """Samples generated in total (the reference set: 5,000)."""
    train_split: float = Field(0.8, gt=0.0, lt=1.0)
    """Fraction of the generated samples in the training pool (reference: 0.8)."""
    generation_seed: int = 42
    """Seed of the generator (42 gives the reference dataset)."""
    scaling: Literal["unit", "standardize", "none"] = "none"
    """The generator already centres the set and scales it to unit std: ``none`` keeps that."""


@contextlib.contextmanager
def global_rng_kept() -> Iterator[None]:
    """The mnist1d generator seeds numpy's and python's global RNGs: restore both afterwards,
    so the run's initialization does not depend on it."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


@TASKS.register(MNIST1DSpec)
def build_mnist1d(spec: MNIST1DSpec) -> Task:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise ConfigError("task.name = 'mnist1d' needs the optional package mnist1d: pip install mnist1d") from None
    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = spec.num_samples, spec.train_split, spec.generation_seed
    with global_rng_kept():
        data = make_dataset(args)
    length = data["x"].shape[1]
    return image_task(spec, (data["x"], data["y"]), (data["x_test"], data["y_test"]), (length,))
