"""What a benchmark ran on: the processor, its SIMD level and the BLAS library and kernel.

Figures only carry across machines with these beside them: the indicators' matrix products
run in OpenBLAS, whose kernel (chosen for the processor, or forced by ``OPENBLAS_CORETYPE``)
changes their speed by up to 2x, while TA-Lib's loops do not use BLAS at all.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# Widest first: the first of these in /proc/cpuinfo's flags is the processor's SIMD level.
_SIMD_LEVELS = ("avx512f", "avx2", "avx", "sse4_2")
# OpenBLAS kernels worth comparing on x86-64, and the flags a processor needs to run each.
KERNELS = {"Haswell": {"avx2", "fma"}, "SkylakeX": {"avx512f", "avx512bw", "avx512vl"}}


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def cpu_flags() -> set[str]:
    return set(_cpuinfo().get("flags", "").split())


def processor() -> str:
    """``model name`` from /proc/cpuinfo (e.g. ``AMD EPYC``), or what platform knows."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def simd_level() -> str:
    """The widest SIMD extension the processor reports: avx512f, avx2, avx or sse4_2."""
    flags = cpu_flags()
    return next((level for level in _SIMD_LEVELS if level in flags), "unknown")


def blas() -> tuple[str, str]:
    """(library, version and threads; kernel) of the BLAS numpy calls, from threadpoolctl."""
    import numpy  # noqa: F401  (threadpoolctl only sees a BLAS that is loaded)

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown BLAS (threadpoolctl is not installed)", "unknown"
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            library = (
                f"{pool.get('internal_api')} {pool.get('version')}, "
                f"{pool.get('num_threads')} thread(s)"
            )
            return library, str(pool.get("architecture", "unknown"))
    return "no BLAS found", "none"


def runnable_kernels() -> list[str]:
    """The kernels of :data:`KERNELS` this processor can run (forcing another one crashes)."""
    flags = cpu_flags()
    return [name for name, needs in KERNELS.items() if needs <= flags]


def describe() -> str:
    """One line: processor, SIMD level, BLAS library, kernel and how the kernel was chosen."""
    library, kernel = blas()
    forced = os.environ.get("OPENBLAS_CORETYPE")
    chosen = f"OPENBLAS_CORETYPE={forced}" if forced else "chosen by OpenBLAS"
    cpus = os.cpu_count() or 0
    return (
        f"{processor()} ({cpus} logical CPUs), SIMD {simd_level()}; BLAS {library}, "
        f"{kernel} kernel ({chosen})"
    )
