"""A learned head as one small file: a NumPy ``.npz`` archive, read without pickle.

It holds the head's arrays and its `HeadInfo` as JSON (the ``info`` entry): embedding
dimensions, the embedding model's name and size, training cases, kind, and (version 2) the
training scope and the embedding guard's threshold; the guard's training embeddings are an array
(float32). A ridge head on 576-dim
embeddings is about 30 kB and loads in about a millisecond. `load_head_cached` keeps each file
loaded once per process, until the file changes.
"""

from __future__ import annotations

import os
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from hag_agent.errors import HeadMismatchError, LearnedHeadError
from hag_agent.learned_head.head import (
    HEAD_FORMAT,
    HEAD_VERSION,
    HeadInfo,
    LearnedHead,
    check_arrays,
)

_ARRAYS = (
    "feature_mean",
    "feature_scale",
    "weights",
    "intercept",
    "train_vectors",
    "train_tasks",
    "train_targets",
    "guard_vectors",
)


def save_head(head: LearnedHead, path: str | Path) -> Path:
    """Write a head to ``path`` (replaced atomically: a reader never sees half a file).

    Raises:
        LearnedHeadError: When the file cannot be written.
    """
    path = Path(path)
    arrays: dict[str, Any] = {"info": np.array(head.info.model_dump_json())}
    for name in _ARRAYS:
        array = getattr(head, name)
        if array is not None:
            arrays[name] = array
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez_compressed(out, **arrays)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise LearnedHeadError(f"cannot write the head to {path}: {exc}") from exc
    return path


def load_head(path: str | Path, *, dims: int | None = None) -> LearnedHead:
    """Read a head file.

    Args:
        path: The file.
        dims: The embedding dimensions it must take, if known.

    Raises:
        LearnedHeadError: When the file is missing, unreadable, or not a head file.
        HeadMismatchError: When it takes other embedding dimensions than ``dims``.
    """
    path = Path(path)
    if not path.is_file():
        raise LearnedHeadError(f"no learned head file at {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with loaded as archive:
            stored = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise LearnedHeadError(
            f"{path} is not a learned head file (not a NumPy archive: {exc})"
        ) from None
    raw_info = stored.get("info")
    if raw_info is None or raw_info.shape != ():
        raise LearnedHeadError(f"{path} is not a learned head file (no info entry)")
    try:
        info = HeadInfo.model_validate_json(str(raw_info))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "info"
        if where in ("format", "version"):
            raise LearnedHeadError(
                f"{path} is not a {HEAD_FORMAT} of version 1 to {HEAD_VERSION} "
                f"({where}: {first.get('input')!r})"
            ) from None
        raise LearnedHeadError(
            f"{path} has unreadable head info ({where}: {first.get('msg')})"
        ) from None
    head = LearnedHead(info=info, **{k: v for k, v in stored.items() if k in _ARRAYS})
    try:
        check_arrays(head)
    except ValueError as exc:
        raise LearnedHeadError(f"{path} is a damaged head file: {exc}") from None
    if dims is not None and dims != info.dims:
        trained = f" (trained on {info.model})" if info.model else ""
        raise HeadMismatchError(
            f"{path} takes {info.dims}-dimensional embeddings{trained}, not {dims}"
        )
    return head


_cache: dict[str, tuple[tuple[int, int], LearnedHead]] = {}
_cache_lock = threading.Lock()
_CACHE_SIZE = 8


def load_head_cached(path: str | Path) -> LearnedHead:
    """`load_head`, once per file per process: read again only when the file changes.

    The file is known by its resolved path, modification time and size.

    Raises:
        LearnedHeadError: As `load_head`.
    """
    resolved = Path(path).expanduser().resolve()
    try:
        stat = resolved.stat()
    except OSError:
        raise LearnedHeadError(f"no learned head file at {path}") from None
    key, version = str(resolved), (stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    head = load_head(resolved)
    with _cache_lock:
        _cache.pop(key, None)
        _cache[key] = (version, head)
        while len(_cache) > _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
    return head


__all__ = ["load_head", "load_head_cached", "save_head"]
