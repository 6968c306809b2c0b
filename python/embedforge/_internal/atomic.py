"""Atomic folder writes: a crash mid-save never leaves a half-written model behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

#: Written last into an existing folder: until it lands, loaders still see the previous model's module list.
LAST_ENTRY = "modules.json"


@contextlib.contextmanager
def atomic_directory(path: str) -> Iterator[str]:
    """Yield a fresh temporary folder beside ``path``; on success its content lands at ``path``.

    A new (or empty) ``path`` appears in one rename. An existing folder keeps its other entries
    (checkpoints, logs): each saved entry replaces its namesake by rename, ``modules.json`` last.
    On error the temporary folder is removed and ``path`` is untouched.
    """
    target = os.path.abspath(path)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.saving-", dir=parent)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _make_readable(staging)
    if os.path.isdir(target) and not os.listdir(target):
        os.rmdir(target)
    if not os.path.exists(target):
        os.rename(staging, target)
        return
    entries = sorted(os.listdir(staging), key=lambda name: name == LAST_ENTRY)
    for name in entries:
        source, destination = os.path.join(staging, name), os.path.join(target, name)
        if os.path.isdir(destination) and not os.path.islink(destination):
            retired = destination + ".old"
            shutil.rmtree(retired, ignore_errors=True)
            os.rename(destination, retired)
            os.rename(source, destination)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(source, destination)
    shutil.rmtree(staging, ignore_errors=True)


def _make_readable(folder: str) -> None:
    """Give the saved tree the permissions of ordinary new files (mkdtemp and some writers use 0600/0700)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for root, directories, files in os.walk(folder):
        for name in directories:
            os.chmod(os.path.join(root, name), 0o777 & ~umask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~umask)
