"""Paged optimizers (bnb_core.optim.paged): the managed-memory allocation decision with the native calls mocked,
prefetch / page-out calls, Paged* optimizers on CPU behaving exactly as their unpaged twins, and state_dicts
moving between paged and unpaged optimizers and across devices. On a machine with a GPU the last tests run the
real managed memory."""

import sys
import warnings

import pytest
import torch

from bnb_core import optim as O
from bnb_core.optim import paged

MIB = 1 << 20


def test_decide():
    g = paged.GRANULE
    assert paged.decide(1, g, 0) == "managed"              # rounded up to one granule, which is free
    assert paged.decide(g + 1, g, 1) == "device"           # needs 2 granules: not free, but fits free + cache
    assert paged.decide(g + 1, g, 0) == "error"
    assert paged.decide(g + 1, g, 10 * g) == "device"
    assert paged.decide(3 * g, 2 * g, 0) == "error"        # neither managed nor ordinary memory fits
    assert paged.decide(100 * MIB, 100 * MIB, 0) == "managed"
    assert paged.decide(100 * MIB + 1, 100 * MIB, 0) == "error"
    assert paged.decide(100 * MIB + 1, 100 * MIB, 1) == "device"


class FakeBuffer:
    def __init__(self, ptr, nbytes):
        self.ptr, self.nbytes = ptr, nbytes


class FakeNative:
    """Stands in for bnb_core._cuda: records calls, answers with configured free memory and capabilities."""

    def __init__(self, free, total=80 << 30, managed=True, concurrent=True, alloc_status=0):
        self.free, self.total, self.managed, self.concurrent = free, total, managed, concurrent
        self.alloc_status = alloc_status
        self.calls = []

    def managed_caps(self, index):
        self.calls.append(("caps", index))
        return 0, self.managed, self.concurrent

    def mem_get_info(self, index):
        self.calls.append(("info", index))
        return 0, self.free, self.total

    def managed_alloc(self, index, nbytes):
        self.calls.append(("alloc", index, nbytes))
        if self.alloc_status:
            return self.alloc_status, None
        return 0, FakeBuffer(0x7000_0000 + nbytes, nbytes)

    def managed_prefetch(self, ptr, nbytes, location, device, stream):
        self.calls.append(("prefetch", ptr, nbytes, location, device, stream))
        return 0

    def managed_advise_preferred(self, ptr, nbytes, location):
        self.calls.append(("advise", ptr, nbytes, location))
        return 0

    def error_message(self, status):
        return f"fake error {status}"


@pytest.fixture
def fake(monkeypatch):
    """paged.zeros for device "cuda:1" on this CPU-only torch: the native module, torch's cache size, the device
    allocation and the managed-buffer view are replaced; the decision logic and the calls are the real ones."""
    state = {"native": FakeNative(free=8 << 30), "cached": 0, "device_zeros": []}
    monkeypatch.setattr(paged, "_native", lambda: state["native"])
    monkeypatch.setattr(paged, "_cached_free", lambda index: state["cached"])
    monkeypatch.setattr(paged, "_stream", lambda index: 4242)

    def device_zeros(shape, dtype, device):
        state["device_zeros"].append((tuple(shape), dtype, str(device)))
        return torch.zeros(shape, dtype=dtype)

    def view_managed(buf, index):
        assert isinstance(buf, FakeBuffer) and index == 1
        return torch.full((buf.nbytes,), 0xAB, dtype=torch.uint8)  # garbage: zeros() must clear it

    monkeypatch.setattr(paged, "_device_zeros", device_zeros)
    monkeypatch.setattr(paged, "_view_managed", view_managed)
    monkeypatch.setattr(paged, "_warned", set())
    return state


def test_zeros_managed_when_the_gpu_has_room(fake):
    t = paged.zeros((300, 1000), torch.float32, "cuda:1")
    nat = fake["native"]
    assert ("alloc", 1, 300 * 1000 * 4) in nat.calls and not fake["device_zeros"]
    assert t.shape == (300, 1000) and t.dtype == torch.float32 and bool((t == 0).all())
    assert paged.is_paged(t) and t._bnb_paged.nbytes == 1_200_000 and t._bnb_paged.device == 1
    paged.prefetch([t, None, torch.zeros(3)])  # only the paged one, to its GPU on the current stream
    paged.page_out([t])                       # to the host (-1)
    moves = [c for c in nat.calls if c[0] == "prefetch"]
    assert moves == [("prefetch", t._bnb_paged.ptr, 1_200_000, 1, 1, 4242),
                     ("prefetch", t._bnb_paged.ptr, 1_200_000, -1, 1, 4242)]
    for where, code in (("host", -1), ("device", 1), (None, -2)):
        paged.advise([t, torch.zeros(2)], where)
        assert nat.calls[-1] == ("advise", t._bnb_paged.ptr, 1_200_000, code)
    with pytest.raises(ValueError, match="location"):
        paged.advise([t], "gpu")


def test_zeros_never_asks_for_more_managed_memory_than_free(fake):
    fake["native"] = FakeNative(free=10 * MIB)
    fake["cached"] = 64 * MIB
    with pytest.warns(UserWarning, match="ordinary device memory"):
        t = paged.zeros((16 * MIB,), torch.uint8, "cuda:1")  # 16 MiB > 10 MiB free, but torch's cache holds 64
    assert not paged.is_paged(t)
    assert fake["device_zeros"] == [((16 * MIB,), torch.uint8, "cuda:1")]
    assert not [c for c in fake["native"].calls if c[0] == "alloc"]
    fake["cached"] = 0
    with pytest.raises(torch.cuda.OutOfMemoryError, match=r"16\.0 MiB does not fit on cuda:1: 10\.0 MiB free"):
        paged.zeros((16 * MIB,), torch.uint8, "cuda:1")
    assert not [c for c in fake["native"].calls if c[0] == "alloc"]


def test_zeros_exact_fit_rounds_up_to_the_granule(fake):
    fake["native"] = FakeNative(free=2 * MIB)
    paged.zeros((2 * MIB,), torch.uint8, "cuda:1")
    assert ("alloc", 1, 2 * MIB) in fake["native"].calls
    fake["native"] = FakeNative(free=2 * MIB)
    fake["cached"] = MIB
    with pytest.warns(UserWarning):
        paged.zeros((2 * MIB + 4,), torch.uint8, "cuda:1")  # needs 2 granules (4 MiB) of managed memory
    assert not [c for c in fake["native"].calls if c[0] == "alloc"]


def test_zeros_without_managed_support_or_native_module(fake, monkeypatch):
    fake["native"] = FakeNative(free=8 << 30, managed=False)
    with pytest.warns(UserWarning, match="no managed memory"):
        t = paged.zeros((1000,), torch.float32, "cuda:1")
    assert not paged.is_paged(t) and len(fake["device_zeros"]) == 1
    monkeypatch.setattr(paged, "_native", lambda: None)
    with pytest.warns(UserWarning, match="native CUDA module"):
        paged.zeros((1000,), torch.float32, "cuda:1")
    assert len(fake["device_zeros"]) == 2


def test_zeros_without_concurrent_access_skips_prefetch(fake):
    fake["native"] = FakeNative(free=8 << 30, concurrent=False)
    t = paged.zeros((1000,), torch.float32, "cuda:1")
    assert paged.is_paged(t) and not t._bnb_paged.concurrent
    paged.prefetch([t])
    paged.page_out([t])
    paged.advise([t], "host")
    assert not [c for c in fake["native"].calls if c[0] in ("prefetch", "advise")]


def test_zeros_allocation_failure_is_a_clear_error(fake):
    fake["native"] = FakeNative(free=8 << 30, alloc_status=100)
    with pytest.raises(RuntimeError, match="fake error 100"):
        paged.zeros((1000,), torch.float32, "cuda:1")


def test_zeros_on_cpu_and_unpaged_are_ordinary(fake):
    t = paged.zeros((10,), torch.float32, "cpu")
    assert t.device.type == "cpu" and not paged.is_paged(t)
    paged.zeros((10,), torch.float32, "cuda:1", paged=False)
    paged.zeros((0,), torch.float32, "cuda:1")  # empty: nothing to page
    assert not fake["native"].calls and len(fake["device_zeros"]) == 3


PAIRS = [(O.PagedAdamW8bit, O.AdamW8bit), (O.PagedAdam, O.Adam), (O.PagedLion8bit, O.Lion8bit),
         (O.PagedAdEMAMix32bit, O.AdEMAMix32bit), (O.PagedAdamW32bit, O.AdamW32bit)]


@pytest.mark.parametrize("paged_cls,cls", PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_paged_on_cpu_is_its_unpaged_twin(paged_cls, cls):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(400, 300, generator=g)  # 120k elements: above PAGED_MIN_NUMEL
    p1, p2 = torch.nn.Parameter(w.clone()), torch.nn.Parameter(w.clone())
    o1, o2 = paged_cls([p1], lr=1e-3), cls([p2], lr=1e-3)
    assert o1.is_paged and not o2.is_paged
    assert "behaves exactly as the unpaged optimizer" in paged_cls.__doc__
    for _ in range(4):
        grad = torch.randn(400, 300, generator=g) * 1e-2
        p1.grad, p2.grad = grad.clone(), grad.clone()
        o1.step()
        o2.step()
    assert torch.equal(p1, p2)
    for k, v in o2.state[p2].items():
        v1 = o1.state[p1][k]
        assert (v1 == v) if k == "step" else (torch.equal(v1, v) and not paged.is_paged(v1))
    o1.page_out_state(prefer_host=True)  # no paged state on CPU: a no-op


@pytest.mark.parametrize("src_cls,dst_cls", [(O.PagedAdamW8bit, O.AdamW8bit), (O.AdamW8bit, O.PagedAdamW8bit),
                                             (O.PagedAdam, O.Adam32bit)])
def test_state_dict_between_paged_and_unpaged(src_cls, dst_cls):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(120_000, generator=g)
    p1 = torch.nn.Parameter(w.clone())
    o1 = src_cls([p1], lr=1e-3)
    for _ in range(2):
        p1.grad = torch.randn(120_000, generator=g)
        o1.step()
    p2 = torch.nn.Parameter(p1.detach().clone())
    o2 = dst_cls([p2], lr=1e-3)
    o2.load_state_dict(o1.state_dict())
    for k, v in o1.state[p1].items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(o2.state[p2][k], v) and o2.state[p2][k].data_ptr() != v.data_ptr()
    grad = torch.randn(120_000, generator=g)
    p1.grad, p2.grad = grad.clone(), grad.clone()
    o1.step()
    o2.step()
    assert torch.equal(p1, p2)


@pytest.mark.parametrize("cls", [O.AdamW8bit, O.PagedAdamW8bit, O.Adam, O.LAMB8bit])
def test_state_dict_loads_into_a_fresh_optimizer_on_another_device(cls):
    """A CPU state_dict loads into an optimizer whose parameters are on another device ("meta" here; "cuda" on a
    GPU machine below): every state moves to that device with its dtype and shape."""
    p1 = torch.nn.Parameter(torch.randn(5000))
    o1 = cls([p1], lr=1e-3, min_8bit_size=1000)
    p1.grad = torch.randn(5000)
    o1.step()
    p2 = torch.nn.Parameter(torch.empty(5000, device="meta"))
    o2 = cls([p2], lr=1e-3, min_8bit_size=1000)
    o2.load_state_dict(o1.state_dict())
    st1, st2 = o1.state[p1], o2.state[p2]
    assert set(st1) == set(st2) and st2["step"] == 1
    for k, v in st1.items():
        if isinstance(v, torch.Tensor):
            assert st2[k].device.type == "meta" and st2[k].dtype == v.dtype and st2[k].shape == v.shape, k


# ------------------------------------------------------------------------------------ on a GPU

gpu = pytest.mark.skipif(not torch.cuda.is_available() or paged._native() is None,
                         reason="needs a CUDA device and bnb_core._cuda")


@gpu
def test_gpu_managed_buffer_lifetime():
    mod = paged._native()
    status, buf = mod.managed_alloc(0, 1 << 20)
    assert status == 0
    before = sys.getrefcount(buf)
    t = torch.as_tensor(buf, device="cuda:0")
    assert t.data_ptr() == buf.ptr and t.numel() == 1 << 20 and t.device == torch.device("cuda:0")
    assert sys.getrefcount(buf) == before + 1  # torch holds the owner
    v = t.view(torch.float32)[10:]
    del t
    assert sys.getrefcount(buf) == before + 1  # the view keeps the storage, hence the owner
    v.fill_(1.0)
    torch.cuda.synchronize()
    del v
    assert sys.getrefcount(buf) == before


@gpu
def test_gpu_paged_optimizer_matches_unpaged_and_pages_out():
    g = torch.Generator(device="cuda").manual_seed(0)
    w = torch.randn(1000, 300, device="cuda", generator=g)
    p1, p2 = torch.nn.Parameter(w.clone()), torch.nn.Parameter(w.clone())
    o1, o2 = O.PagedAdamW8bit([p1], lr=1e-3), O.AdamW8bit([p2], lr=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an H100 has room: managed memory, no fallback warning
        for i in range(3):
            grad = torch.randn(1000, 300, device="cuda", generator=g) * 1e-2
            p1.grad, p2.grad = grad.clone(), grad.clone()
            o1.step()
            o2.step()
            if i == 1:
                o1.page_out_state(prefer_host=True)
    assert paged.is_paged(o1.state[p1]["state1"]) and paged.is_paged(o1.state[p1]["state2"])
    assert torch.equal(p1, p2)
    sd = o1.state_dict()
    o3 = O.PagedAdamW8bit([torch.nn.Parameter(p1.detach().clone())], lr=1e-3)
    o3.load_state_dict(sd)
    st3 = next(iter(o3.state.values()))
    assert paged.is_paged(st3["state1"]) and torch.equal(st3["state1"], o1.state[p1]["state1"])
