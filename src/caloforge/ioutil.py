"""Small file utilities shared by every writer: atomic replacement of an output file.

:func:`atomic_path` is :func:`caloforge.outputs.atomic_file`: check the path, lock it, write a
temporary sibling, fsync and rename it on success, remove it on any failure.
"""

from __future__ import annotations

from caloforge.outputs import atomic_dir, atomic_file, check_output, claim_output

atomic_path = atomic_file

__all__ = ["atomic_dir", "atomic_file", "atomic_path", "check_output", "claim_output"]
