"""What this CPU can do, detected at run time (hosts differ between runs; never assume).

The instruction sets that decide which numerics are fast:

* ``amx_bf16`` / ``amx_int8``: Intel AMX tiles (Sapphire Rapids and later):
  bf16 and int8 matrix multiplies several times the fp32 rate;
* ``avx512_bf16``: bf16 dot products in AVX-512 (no tiles);
* ``avx512_vnni`` / ``avx_vnni``: int8 dot products (VNNI);
* ``avx512f``, ``avx2``: the fp32 baseline.

Linux reads ``/proc/cpuinfo``; elsewhere PyTorch's own CPU checks are asked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# The flags that matter here, in the order they are printed.
KNOWN_FLAGS = ("amx_bf16", "amx_int8", "amx_tile", "avx512_bf16", "avx512_vnni", "avx_vnni", "avx512f", "avx2", "fma")
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class Host:
    """The CPU's instruction sets that matter (:data:`KNOWN_FLAGS`), its name and usable cores."""

    flags: frozenset[str]
    cpu: str = "unknown CPU"
    cores: int = 1

    def has(self, *flags: str) -> bool:
        """True when the CPU has any of ``flags``."""
        return any(f in self.flags for f in flags)

    @property
    def isa(self) -> str:
        """e.g. ``avx512_bf16 avx512_vnni avx512f avx2 fma (no AMX)``."""
        shown = " ".join(f for f in KNOWN_FLAGS if f in self.flags) or "no SIMD extensions found"
        return shown + ("" if self.has("amx_bf16", "amx_int8") else " (no AMX)")

    def describe(self) -> str:
        return f"{self.cpu}, {self.cores} cores: {self.isa}"


def parse_cpuinfo(text: str) -> tuple[frozenset[str], str]:
    """The known flags and the model name from the text of ``/proc/cpuinfo`` (first processor)."""
    flags: set[str] = set()
    name = "unknown CPU"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "flags" and not flags:
            flags = set(value.split())
        elif key == "model name" and name == "unknown CPU":
            name = value.strip()
    return frozenset(flags & set(KNOWN_FLAGS)), name


def _torch_flags() -> frozenset[str]:
    """The flags PyTorch can check on any platform (its private but long-standing helpers)."""
    import torch

    checks = {"amx_bf16": "_is_amx_tile_supported", "amx_tile": "_is_amx_tile_supported",
              "avx512_bf16": "_is_avx512_bf16_supported", "avx512_vnni": "_is_vnni_supported",
              "avx512f": "_is_avx512_supported", "avx2": "_is_avx2_supported"}
    found = set()
    for flag, fn in checks.items():
        check = getattr(torch.cpu, fn, None)
        try:
            if check is not None and check():
                found.add(flag)
        except (RuntimeError, OSError):
            pass
    return frozenset(found)


@lru_cache(maxsize=1)
def detect() -> Host:
    """This machine's :class:`Host` (cached for the process)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        flags, name = parse_cpuinfo(CPUINFO.read_text("utf-8", errors="replace"))
    except OSError:
        flags, name = frozenset(), "unknown CPU"
    if not flags:
        flags = _torch_flags()
    return Host(flags=flags, cpu=name, cores=cores)
