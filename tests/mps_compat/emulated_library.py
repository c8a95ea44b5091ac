"""A CPU stand-in for the library ``torch.mps.compile_shader`` returns, built from the same shader source.

``build(dest_dir)`` writes ``bnb_core.backends.mps.shader_source("cpu")`` (the exact text the MPS backend
compiles for Metal, with the compat prelude instead of ``<metal_stdlib>``) and compiles it with g++ together with
emulator.cpp into a shared library. ``EmulatedLibrary(path)`` then behaves like the compiled Metal library:
``lib.<kernel>(*args, threads=T, group_size=G)``, tensors bound in argument order (they must be contiguous CPU
tensors: Metal binds a buffer at the tensor's storage offset and reads it as contiguous), Python ints passed as
64-bit ``long``, floats as 32-bit ``float`` (torch's rules).

Every tensor is copied into a buffer with guard bytes on both sides (0xFF: NaN for floats, code 15 for packed
4-bit bytes) and copied back after the kernel; a kernel that writes outside its tensors fails (the guards must be
intact), one that reads outside them sees garbage and fails the comparison.
"""

from __future__ import annotations

import ctypes
import os
import pathlib
import shutil
import subprocess

import torch

HERE = pathlib.Path(__file__).resolve().parent
GUARD = 256  # bytes on each side of every tensor

_TAGS = {torch.float32: b"f32", torch.float16: b"f16", torch.bfloat16: b"bf16", torch.uint8: b"u8",
         torch.int8: b"i8", torch.int32: b"i32", torch.int64: b"i64"}


def compiler() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++")


def build(dest: pathlib.Path) -> pathlib.Path:
    """Compile the CPU build of the MPS kernels into dest/libbnb_mps_emu.so; raises on a compile error."""
    from bnb_core.backends import mps

    dest.mkdir(parents=True, exist_ok=True)
    src = dest / "bnb_mps_kernels.cpu.inc"
    src.write_text(mps.shader_source("cpu"))
    so = dest / "libbnb_mps_emu.so"
    cmd = [compiler(), "-std=c++17", "-O2", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math",
           "-Wall", "-Wextra", "-Werror", "-Wno-attributes", "-Wno-unused-function", "-Wno-unused-parameter",
           f"-I{HERE}", f'-DBNB_KERNELS_SOURCE="{src}"', str(HERE / "emulator.cpp"), "-o", str(so)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"compiling the CPU build of the MPS kernels failed:\n{' '.join(cmd)}\n{proc.stderr}")
    return so


class _Arg(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int32), ("tag", ctypes.c_char * 8), ("ptr", ctypes.c_void_p),
                ("nbytes", ctypes.c_int64), ("i", ctypes.c_int64), ("f", ctypes.c_double)]


class EmulatedLibrary:
    def __init__(self, so_path):
        self._dll = ctypes.CDLL(str(so_path))
        self._dll.bnb_emu_launch.restype = ctypes.c_int
        self._dll.bnb_emu_launch.argtypes = [ctypes.c_char_p, ctypes.POINTER(_Arg), ctypes.c_int, ctypes.c_uint64,
                                             ctypes.c_uint64, ctypes.c_char_p, ctypes.c_int]
        self._dll.bnb_emu_kernel_count.restype = ctypes.c_int
        self._dll.bnb_emu_kernel_name.restype = ctypes.c_char_p
        self._dll.bnb_emu_kernel_name.argtypes = [ctypes.c_int]
        self.calls: list[tuple] = []  # (kernel, threads, group_size) of every launch

    def kernel_names(self) -> list[str]:
        return [self._dll.bnb_emu_kernel_name(i).decode() for i in range(self._dll.bnb_emu_kernel_count())]

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)

        def kernel(*args, threads=None, group_size=None):
            return self._launch(name, args, threads, group_size)

        return kernel

    def _launch(self, name, args, threads, group_size):
        if threads is None or group_size is None:
            raise TypeError(f"{name}: the MPS glue must pass threads= and group_size= (got {threads}, {group_size})")
        self.calls.append((name, int(threads), int(group_size)))
        cargs = (_Arg * max(1, len(args)))()
        guarded = []  # (tensor, padded byte buffer)
        for i, a in enumerate(args):
            if isinstance(a, torch.Tensor):
                if a.device.type != "cpu" or not a.is_contiguous():
                    raise ValueError(f"{name}: argument {i} must be a contiguous tensor (got {a.device}, "
                                     f"strides {a.stride()})")
                if a.dtype not in _TAGS:
                    raise TypeError(f"{name}: argument {i} has an unsupported dtype {a.dtype}")
                nbytes = a.numel() * a.element_size()
                buf = torch.full((nbytes + 2 * GUARD,), 0xFF, dtype=torch.uint8)
                if nbytes:
                    buf[GUARD:GUARD + nbytes] = a.reshape(-1).view(torch.uint8)
                guarded.append((i, a, buf, nbytes))
                cargs[i].kind, cargs[i].tag, cargs[i].nbytes = 0, _TAGS[a.dtype], nbytes
                cargs[i].ptr = buf.data_ptr() + GUARD
            elif isinstance(a, bool) or not isinstance(a, (int, float)):
                raise TypeError(f"{name}: argument {i} of type {type(a).__name__} cannot be passed to a Metal kernel")
            elif isinstance(a, int):
                cargs[i].kind, cargs[i].i = 1, a
            else:
                cargs[i].kind, cargs[i].f = 2, a
        err = ctypes.create_string_buffer(1024)
        status = self._dll.bnb_emu_launch(name.encode(), cargs, len(args), threads, group_size, err, len(err))
        if status != 0:
            raise RuntimeError(err.value.decode())
        for i, a, buf, nbytes in guarded:
            if not (bool((buf[:GUARD] == 0xFF).all()) and bool((buf[GUARD + nbytes:] == 0xFF).all())):
                raise RuntimeError(f"{name}: the kernel wrote outside argument {i} ({a.dtype}{tuple(a.shape)})")
            if nbytes:
                a.reshape(-1).view(torch.uint8).copy_(buf[GUARD:GUARD + nbytes])
