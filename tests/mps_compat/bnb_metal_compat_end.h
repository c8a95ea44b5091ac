// Undo bnb_metal_compat.h's keyword macros after the shader source (emulator.cpp includes this next).
#undef kernel
#undef device
#undef constant
#undef thread
#undef threadgroup
