"""The format tables: one source of truth (bnb_core/formats.py), the generated C header in sync, and
the facts of ../shared/FORMATS.md (bitsandbytes 0.50.2) as independent literals."""

import math
import pathlib
import re
import subprocess
import sys

import pytest
import torch

from bnb_core import formats, functional

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_generated_header_is_up_to_date():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_formats_header.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _header_array(name):
    text = (ROOT / "backends" / "common" / "bnb_formats.h").read_text()
    m = re.search(rf"{name}\[\d+\] = \{{([^}}]*)\}}", text)
    assert m, name
    return [float.fromhex(v.strip().rstrip("f")) if "x" in v else float(v.strip().rstrip("f"))
            for v in m.group(1).split(",")]


@pytest.mark.parametrize("name,values", [
    ("NF4_CODE", formats.NF4_CODE), ("FP4_CODE", formats.FP4_CODE), ("NF4_BOUNDARIES", formats.NF4_BOUNDARIES),
    ("FP4_MAGNITUDE_BOUNDARIES", formats.FP4_MAGNITUDE_BOUNDARIES), ("DYNAMIC_SIGNED", formats.DYNAMIC_SIGNED),
    ("DYNAMIC_UNSIGNED", formats.DYNAMIC_UNSIGNED),
])
def test_header_values_equal_formats(name, values):
    assert _header_array(name) == list(values)


def test_no_copy_of_a_table_elsewhere():
    """Distinctive table literals appear only in formats.py and the generated header (Python, C/C++/CUDA and
    Metal sources; the Metal shaders get their tables from formats.render_metal_tables() at run time)."""
    needles = ["0.6961928009986877", "0.0052083", "0xBF7E3333", "-0.8480964", "0x1.6473620000000p-1"]
    allowed = {ROOT / "bnb_core" / "formats.py", ROOT / "backends" / "common" / "bnb_formats.h"}
    native = [p for p in (ROOT / "backends").rglob("*") if p.suffix in (".c", ".h", ".cpp", ".hpp", ".cu", ".cuh",
                                                                         ".metal", ".mm", ".m", ".inc")]
    for path in list((ROOT / "bnb_core").rglob("*.py")) + native:
        if path in allowed or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        for needle in needles:
            assert needle not in text, f"{path} holds a copy of a format table ({needle})"


def test_nf4_facts():
    code = torch.tensor(formats.NF4_CODE)
    assert code.numel() == 16 and bool((code[1:] > code[:-1]).all())
    assert formats.NF4_CODE[7] == 0.0 and formats.NF4_CODE[0] == -1.0 and formats.NF4_CODE[15] == 1.0
    assert formats.NF4_CODE[1] == pytest.approx(-0.6961928009986877, abs=0)
    # decision boundaries as listed in FORMATS.md (decimal, 8 digits)
    listed = [-0.8480964, -0.6106329, -0.45999527, -0.33967942, -0.2346074, -0.13791174, -0.04552502, 0.03979015,
              0.12025525, 0.20352125, 0.29201376, 0.38931254, 0.50166345, 0.6427869, 0.86147845]
    assert list(formats.NF4_BOUNDARIES) == pytest.approx(listed, abs=1e-7)


def test_fp4_facts():
    mags = [0, 0.0052083, 0.6666667, 1.0, 0.3333333, 0.5, 0.1666667, 0.25]
    assert list(formats.FP4_CODE[:8]) == pytest.approx(mags, abs=1e-7)
    assert list(formats.FP4_CODE[9:]) == pytest.approx([-m for m in mags[1:]], abs=1e-7)
    listed = [0.00260417, 0.0859375, 0.20833333, 0.29166667, 0.4166667, 0.583333, 0.8333333]
    assert list(formats.FP4_MAGNITUDE_BOUNDARIES) == pytest.approx(listed, abs=1e-6)


def test_dynamic_map_facts():
    s, u = formats.DYNAMIC_SIGNED, formats.DYNAMIC_UNSIGNED
    assert len(s) == len(u) == 256
    assert s[127] == 0.0 and s[255] == 1.0 and s[0] == pytest.approx(-0.99296874, abs=1e-8) and -1.0 not in s
    assert u[0] == 0.0 and u[255] == 1.0
    assert list(s) == sorted(s) and list(u) == sorted(u)


def test_create_dynamic_map_reproduces_the_shipped_tables():
    assert torch.equal(functional.create_dynamic_map(signed=True), torch.tensor(formats.DYNAMIC_SIGNED))
    assert torch.equal(functional.create_dynamic_map(signed=False), torch.tensor(formats.DYNAMIC_UNSIGNED))


def test_blocksize_rules():
    assert formats.BLOCKSIZES_4BIT == tuple(2**i for i in range(5, 13))
    assert formats.valid_blocksize_8bit(16) and formats.valid_blocksize_8bit(8192)
    assert not formats.valid_blocksize_8bit(8) and not formats.valid_blocksize_8bit(100)
    assert formats.storage_numel_4bit(7, 1) == 4 and formats.storage_numel_4bit(7, 4) == 1
    assert formats.storage_numel_4bit(9, 4) == 2  # 5 bytes rounded up to two 4-byte elements


def test_metal_tables_are_the_formats_values():
    """render_metal_tables() (prepended to the MPS shader source at run time) holds exactly the fp32 values of
    formats.py: each decimal literal, parsed to the nearest double and then to fp32, or straight to fp32, is the
    table value (the repr of a double equal to an fp32 value is within 2**-53 of it)."""
    from fractions import Fraction

    text = formats.render_metal_tables()
    for name, values in [("NF4_CODE", formats.NF4_CODE), ("FP4_CODE", formats.FP4_CODE),
                         ("NF4_BOUNDARIES", formats.NF4_BOUNDARIES),
                         ("FP4_MAGNITUDE_BOUNDARIES", formats.FP4_MAGNITUDE_BOUNDARIES),
                         ("DYNAMIC_SIGNED", formats.DYNAMIC_SIGNED), ("DYNAMIC_UNSIGNED", formats.DYNAMIC_UNSIGNED)]:
        m = re.search(rf"constant float {name}\[(\d+)\] = \{{([^}}]*)\}};", text)
        assert m and int(m.group(1)) == len(values), name
        lits = [v.strip() for v in m.group(2).split(",")]
        assert all(v.endswith("f") and "x" not in v for v in lits), name  # decimal fp32 literals
        for lit, v in zip(lits, values):
            assert formats._f32(float(lit[:-1])) == v, (name, lit, v)
            # decimal -> fp32 directly (correctly rounded): the literal is closer to v than a quarter of v's ulp,
            # so v is the nearest fp32 (also just below a power of two, where the ulp below is half as large)
            ulp = Fraction(2) ** max(-149, math.frexp(abs(v))[1] - 24)
            assert abs(Fraction(lit[:-1]) - Fraction(v)) < ulp / 4, (name, lit)
    m = re.search(r"constant uint8_t FP4_RANK_TO_CODE\[8\] = \{([^}]*)\};", text)
    assert m and [int(v) for v in m.group(1).split(",")] == list(formats.FP4_RANK_TO_CODE)
    assert f"#define BNB_NF4_ZERO_CODE {formats.ZERO_CODE['nf4']}" in text
    assert f"#define BNB_FP4_ZERO_CODE {formats.ZERO_CODE['fp4']}" in text
