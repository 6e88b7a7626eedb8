"""Array backends for the Monte Carlo engines: NumPy on CPU, CuPy on a GPU.

Engines are written against the array API shared by NumPy and CuPy and receive the
module as ``xp``. CuPy is imported only when asked for (``"cupy"`` or ``"auto"``),
and used only when it imports *and* ``cupy.cuda.is_available()`` is true: the wheel
imports on machines without a GPU, but the first array call would then fail.

The choice comes from the caller (``app.settings.Settings.backend``, i.e.
``OTCDESK_BACKEND``); this module reads no environment variables.
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

from otcdesk.pricing_engine.errors import PricingError

BACKENDS = ("numpy", "cupy", "auto")


def cupy_status() -> tuple[bool, str]:
    """(usable, reason): whether CuPy imports and sees a CUDA device, and why not."""
    try:
        import cupy  # noqa: PLC0415 - imported only when asked for
    except Exception as exc:  # ImportError, or a broken CUDA install
        return False, f"cupy is not importable ({type(exc).__name__}: {exc})"
    try:
        if not cupy.cuda.is_available():
            return False, "cupy imports but no CUDA device is available"
    except Exception as exc:  # pragma: no cover - depends on the driver
        return False, f"cupy cannot query CUDA ({type(exc).__name__}: {exc})"
    return True, "cupy with a CUDA device"


def get_xp(name: str = "numpy") -> ModuleType:
    """The array module for backend ``name``: ``numpy``, ``cupy`` or ``auto``.

    ``auto`` picks CuPy when it is usable and NumPy otherwise; ``cupy`` raises
    `PricingError` with the reason when no GPU can be used.
    """
    name = (name or "numpy").strip().lower()
    if name not in BACKENDS:
        raise PricingError(f"unknown array backend {name!r}; expected one of {', '.join(BACKENDS)}")
    if name == "numpy":
        return np
    ok, reason = cupy_status()
    if ok:
        import cupy  # noqa: PLC0415

        return cupy
    if name == "auto":
        return np
    raise PricingError(f"backend 'cupy' requested but unusable: {reason}")


def backend_name(xp: ModuleType) -> str:
    """``'numpy'`` or ``'cupy'`` for an array module."""
    return "numpy" if xp is np else getattr(xp, "__name__", str(xp)).split(".")[0]
