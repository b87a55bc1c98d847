"""Machine conditions for tests whose right answer depends on the CPU (from the device fingerprint) or on
what is installed (torch is optional on ARMv8.0 boards, where PyPI's torch cannot run).

Why: on x86 without VNNI, 8-bit dot products go through vpmaddubsw, whose int16 pair sums saturate when
full-range uint8 activations meet full-range int8 weights (10-100 % error measured on an AMD Zen 3);
VNNI (vpdpbusd) and AMX accumulate in int32 and do not. A test about that path checks the right thing on
each side of this condition instead of encoding one machine's behaviour.
"""

from importlib.util import find_spec

import pytest

from edgetune.device.cpu import fingerprint

_FP = fingerprint()
INT32_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
X86 = _FP["arch"] in ("x86_64", "amd64", "i686", "x86")
U8S8_SATURATES = X86 and not set(INT32_DOT_FLAGS) & set(_FP["flags"])
U8S8_CONDITION = (f"{_FP['cpu']}: {'no ' if U8S8_SATURATES else ''}int32 dot-product instructions "
                  f"({', '.join(INT32_DOT_FLAGS)}), so full-range u8s8 {'saturates' if U8S8_SATURATES else 'is exact'}")

requires_torch = pytest.mark.skipif(find_spec("torch") is None, reason="torch is not installed (it is optional on "
                                    "ARMv8.0 boards): zoo models and torch exports need it")
