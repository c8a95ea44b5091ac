// AMX tile helpers shared by the kernel families with an amx-tier path (kernels_mm4.cpp: bf16,
// kernels_int8.cpp: int8). Include after <immintrin.h>, INSIDE the per-ISA namespace, in a translation unit
// compiled with AVX-512 (the tile code itself is in functions with target("amx-tile,...") attributes: the
// tier's flags do not enable AMX, so no other code of the tier can use it by accident).
#pragma once

// The tile unit's configuration (palette 1): tile t has rows[t] rows of colsb[t] bytes.
struct alignas(64) AmxConfig {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// The GNU tile intrinsics are asm statements that do not declare their memory operands: this compiler barrier
// orders them with the stores that fill (and the loads that read) their buffers.
#define BNB_AMX_BARRIER() __asm__ volatile("" ::: "memory")

// Tiles 0..ntiles-1 as 16 rows x 64 bytes (every tile these kernels use), loaded into the calling thread's tile
// unit; pair with _tile_release() when done.
__attribute__((target("amx-tile"))) inline void amx_config_16x64(int ntiles) {
  AmxConfig cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.palette = 1;
  for (int t = 0; t < ntiles; ++t) cfg.rows[t] = 16, cfg.colsb[t] = 64;
  BNB_AMX_BARRIER();
  _tile_loadconfig(&cfg);
}
