"""torch.library.opcheck on every op: schema (mutation/aliasing annotations), autograd registration,
fake (meta) kernel vs the real kernel, and AOT dispatch with dynamic shapes.

Inputs are the op's first conformance case (bnb_core.conformance), plus an outlier case (threshold > 0,
whose outlier-column output has a data-dependent size) for the int8 quantization ops. The default
test_utils pass for every case, including the data-dependent ones (the fake kernels allocate an unbacked
size through torch.library.get_ctx().new_dynamic_size()), so nothing is restricted.
"""

from __future__ import annotations

import pytest
import torch

import bnb_core  # noqa: F401
from bnb_core import conformance
from bnb_core._ops import OPS

DEVICES = conformance.available_devices()
CASES = conformance.all_cases()


def _first_case(op, pred=lambda c: True):
    for c in CASES:
        if c.op == op and pred(c):
            return c
    return None


def _params():
    out = []
    for op in OPS:
        out.append(pytest.param(op, None, id=op))
    for op in ("int8_vectorwise_quant", "int8_double_quant"):
        out.append(pytest.param(op, lambda c: c.make(torch.Generator().manual_seed(0))[0][1] > 0,
                                id=f"{op}-threshold>0"))
    return out


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op,pred", _params())
def test_opcheck(op, pred, device):
    case = _first_case(op, pred or (lambda c: True))
    assert case is not None, f"bnb_core.conformance has no case for {op}" + (" with threshold > 0" if pred else "")
    args, kwargs = case.make(torch.Generator().manual_seed(0))
    if pred is not None:
        assert args[1] > 0.0  # the outlier path really is exercised
        cols = OPS[op].reference(*args, **kwargs)[-1]  # the outlier column indices
        assert cols is not None and cols.numel() > 0, "the case has no outlier columns"
    args = [conformance._to(a, device) for a in args]
    kwargs = {k: conformance._to(v, device) for k, v in kwargs.items()}
    result = torch.library.opcheck(OPS[op].packet, args, kwargs, raise_exception=False)
    failed = {k: v for k, v in result.items() if v != "SUCCESS"}
    assert not failed, f"{op}[{case.id}] on {device}: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
    # all four default utilities ran
    assert set(result) >= {"test_schema", "test_autograd_registration", "test_faketensor",
                           "test_aot_dispatch_dynamic"}


def test_every_op_is_opchecked():
    ids = {p.values[0] for p in _params()}
    assert ids == set(OPS)
