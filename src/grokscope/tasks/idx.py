"""MNIST's IDX files: reading them from a local folder, and fetching them only when asked.

The IDX format (LeCun et al.): a big-endian header ``0, 0, type code, ndim`` followed by ndim
32-bit sizes, then the data in row-major order. MNIST uses unsigned bytes (type code 0x08).
Files may be gzip-compressed (``.gz``) or raw.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from grokscope.errors import GrokscopeError


class DataError(GrokscopeError):
    """A data file that is missing, truncated or corrupt, or a download that failed."""


MNIST_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
"""Role -> base name of the four MNIST files (``.gz`` added for the compressed form)."""

MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
"""The published MD5 sums of the compressed MNIST files."""

MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
"""Where ``download_mnist`` looks, in order (the original site no longer serves the files)."""

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def default_data_folder() -> Path:
    """``$GROKSCOPE_DATA`` or ``~/.cache/grokscope``: where datasets live unless a config says."""
    return Path(os.environ.get("GROKSCOPE_DATA", Path.home() / ".cache" / "grokscope")).expanduser()


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (gzip-compressed when the name ends in ``.gz``).

    Raises ``DataError`` naming the file when it is not IDX, or shorter than its header says.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                raw = stream.read()
        else:
            raw = path.read_bytes()
    except (EOFError, OSError, zlib.error) as error:
        raise DataError(f"{path}: cannot be read ({error}); the file is truncated or corrupt, fetch it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        state = "truncated" if found < expected else "longer than its header says"
        raise DataError(f"{path}: {state}: shape {shape} needs {expected} bytes of data, found {found}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_mnist_file(folder: Path, role: str) -> Path:
    """The file of one MNIST role in ``folder``: ``<name>.gz``, ``<name>`` or the ``<name with .idx>``
    spelling some mirrors use. Raises ``DataError`` naming the missing file."""
    base = MNIST_FILES[role]
    dotted = base.replace("-idx", ".idx")
    for name in (f"{base}.gz", base, dotted, f"{dotted}.gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(
        f"MNIST file {base}.gz (or {base}) missing in {folder}; "
        "put the IDX files there or fetch them with `grokscope data mnist --download`"
    )


def load_mnist(folder: str | Path) -> dict[str, np.ndarray]:
    """The four MNIST arrays from a folder: images (N, 28, 28) uint8 and labels (N,) int64."""
    folder = Path(folder).expanduser()
    arrays = {role: read_idx(find_mnist_file(folder, role)) for role in MNIST_FILES}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{folder}: MNIST {split} files disagree: images {images.shape}, labels {labels.shape}")
        arrays[f"{split}_labels"] = labels.astype(np.int64)
    return arrays


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_mnist(
    folder: Path,
    *,
    mirrors: tuple[str, ...] = MNIST_MIRRORS,
    checksums: dict[str, str] = MNIST_MD5,
    timeout: float = 60.0,
) -> list[Path]:
    """Fetch the four compressed MNIST files into ``folder`` and verify their MD5 sums.

    A file already present with the right checksum is kept. Each file is tried at each mirror
    in turn; a download with a wrong checksum is discarded. Raises ``DataError`` naming the
    file and the mirrors tried when none served it. Returns the paths of the verified files.
    """
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name, md5 in checksums.items():
        target = folder / name
        if target.is_file() and file_md5(target) == md5:
            paths.append(target)
            continue
        problems: list[str] = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name
            problem = _fetch_verified(url, target, md5, timeout)
            if problem is None:
                break
            problems.append(f"{url}: {problem}")
        else:
            raise DataError(f"could not fetch {name}: " + "; ".join(problems))
        paths.append(target)
    return paths


def _fetch_verified(url: str, target: Path, md5: str, timeout: float) -> str | None:
    """Download ``url`` to ``target`` atomically if its MD5 matches; the problem otherwise."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out)
        found = file_md5(Path(temporary))
        if found != md5:
            return f"checksum {found} differs from the published {md5}"
        os.replace(temporary, target)
        return None
    except OSError as error:  # URLError and timeouts are OSErrors
        return str(getattr(error, "reason", error))
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
