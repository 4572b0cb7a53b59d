// Tile binning of the projected Gaussians (DESIGN.md section 6), shared by tile_keys.cu and the
// host test harness. PyTorch twin: render/reference/tile_keys.py, tile_keys.
//
// Each visible Gaussian gets one instance per 16x16 tile that its square of half-size radius
// touches (tile_rect), keyed (tile id << 32) | (float32 bits of its depth): positive floats'
// bits sort like the floats, so one sort of the keys orders instances by tile, then front to
// back. A Gaussian's instances start at the exclusive prefix sum of the counts before it, so
// instances stay in Gaussian order (within a Gaussian they go to different tiles, so their order
// does not matter), and a stable sort gives the reference's gaussian_ids exactly, ties in depth
// included. Tile t's range [start, end) in the sorted keys is [lower_bound(t << 32),
// lower_bound((t + 1) << 32)), the reference's searchsorted.
#ifndef RENDERFM_TILE_KEYS_CUH
#define RENDERFM_TILE_KEYS_CUH

#include "gaussian_math.cuh"

namespace renderfm {

// The float's bit pattern (its depth key); visible depths are > 1 mm, so positive.
RFM_HD unsigned int float_bits(float x) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(x);
#else
  unsigned int bits;
  __builtin_memcpy(&bits, &x, sizeof bits);
  return bits;
#endif
}

RFM_HD long long tile_key(long long tile, float depth) {
  return (tile << 32) | static_cast<long long>(float_bits(depth));
}

// Number of tiles of an inclusive rectangle {x0, y0, x1, y1}; 0 where it is empty.
RFM_HD long long tile_count(const int rect[4]) {
  const long long span_x = rect[2] - rect[0] + 1, span_y = rect[3] - rect[1] + 1;
  return span_x > 0 && span_y > 0 ? span_x * span_y : 0;
}

// Write Gaussian `gaussian`'s instances at keys[first..], ids[first..]: one per tile of `rect`,
// row by row (tile id = tile_y * tiles_x + tile_x).
RFM_HD void emit_tile_keys(const int rect[4], float depth, long long gaussian, long long first,
                           int tiles_x, long long* keys, long long* ids) {
  long long out = first;
  for (int ty = rect[1]; ty <= rect[3]; ++ty)
    for (int tx = rect[0]; tx <= rect[2]; ++tx, ++out) {
      keys[out] = tile_key(static_cast<long long>(ty) * tiles_x + tx, depth);
      ids[out] = gaussian;
    }
}

// The first index in sorted keys[0, m) whose key is >= key (m if none).
RFM_HD long long lower_bound_key(const long long* keys, long long m, long long key) {
  long long low = 0, high = m;
  while (low < high) {
    const long long mid = low + (high - low) / 2;
    if (keys[mid] < key)
      low = mid + 1;
    else
      high = mid;
  }
  return low;
}

}  // namespace renderfm

#endif  // RENDERFM_TILE_KEYS_CUH
