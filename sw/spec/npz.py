"""Reading ``.npz`` archives that users hand over, safely: no pickles, and no array bigger than the
bytes the archive holds for it (a damaged or hostile header claiming a huge shape would otherwise
make numpy allocate it before anything notices)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

__all__ = ["read_npz"]


def read_npz(path, error: type[Exception], what: str = "an .npz file") -> dict[str, np.ndarray]:
    """Every array of the archive at ``path``; ``error`` (one line) names any problem:
    ``FileNotFoundError`` passes through for the caller's own "no such file"."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(f)
                if dtype.hasobject:
                    raise ValueError(f"array {info.filename[:-4]!r} holds Python objects")
                need = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if need > info.file_size:
                    raise ValueError(f"array {info.filename[:-4]!r} claims {need} bytes, the archive holds "
                                     f"{info.file_size}")
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise
    except Exception as e:
        raise error(f"{path}: not {what} ({type(e).__name__}: {e})") from None
