// Stage 3, per frame: bin the projected Gaussians into 16x16 tiles (DESIGN.md section 6).
// PyTorch twin: render/reference/tile_keys.py, tile_keys; the math is in tile_keys.cuh.
//
// The host side (rasterize.py) runs, on one stream:
//   tile_counts  one thread per Gaussian: instances (tiles touched) per Gaussian, 0 if culled;
//   an inclusive scan of the counts (torch.cumsum): offsets; M = offsets[N - 1];
//   tile_keys    one thread per Gaussian: its instances' keys and Gaussian ids at
//                offsets[g] - counts[g] ...;
//   a stable radix sort of the M keys (torch.sort) and a gather of the ids;
//   tile_ranges  one thread per tile: its [start, end) in the sorted keys, by binary search.
// All kernels are grid-stride with 64-bit indices.
#include "kernel_io.cuh"
#include "tile_keys.cuh"

namespace {

using renderfm::first_index;
using renderfm::index_stride;

__device__ void rect_of(const float* means2d, const int* radii, long long g, int width, int height,
                        int rect[4]) {
  renderfm::tile_rect({means2d[2 * g], means2d[2 * g + 1]}, radii[g], width, height,
                      renderfm::TILE_SIZE, rect);
}

}  // namespace

extern "C" __global__ void tile_counts(const long long n,                  // number of Gaussians
                                       const float* __restrict__ means2d,  // [N, 2] px
                                       const int* __restrict__ radii,      // [N] px, 0 = culled
                                       const int width,                    // image size, px
                                       const int height,
                                       long long* __restrict__ counts) {   // [N] tiles touched
  for (long long g = first_index(); g < n; g += index_stride()) {
    int rect[4];
    rect_of(means2d, radii, g, width, height, rect);
    counts[g] = renderfm::tile_count(rect);
  }
}

extern "C" __global__ void tile_keys(
    const long long n,                       // number of Gaussians
    const float* __restrict__ means2d,       // [N, 2] px
    const int* __restrict__ radii,           // [N] px, 0 = culled
    const float* __restrict__ depths,        // [N] camera z, mm
    const long long* __restrict__ offsets,   // [N] inclusive scan of tile_counts' counts
    const int width,                         // image size, px
    const int height,
    long long* __restrict__ keys,            // [M] (tile id << 32) | depth bits, unsorted
    long long* __restrict__ gaussian_ids) {  // [M] the Gaussian of each key
  const int tiles_x = (width + renderfm::TILE_SIZE - 1) / renderfm::TILE_SIZE;
  for (long long g = first_index(); g < n; g += index_stride()) {
    int rect[4];
    rect_of(means2d, radii, g, width, height, rect);
    const long long first = offsets[g] - renderfm::tile_count(rect);
    renderfm::emit_tile_keys(rect, depths[g], g, first, tiles_x, keys, gaussian_ids);
  }
}

extern "C" __global__ void tile_ranges(
    const long long m,                        // number of instances
    const long long* __restrict__ keys,       // [M] sorted
    const long long num_tiles,                // tiles_y * tiles_x
    long long* __restrict__ ranges) {         // [num_tiles, 2] [start, end) in keys
  for (long long t = first_index(); t < num_tiles; t += index_stride()) {
    ranges[2 * t] = renderfm::lower_bound_key(keys, m, t << 32);
    ranges[2 * t + 1] = renderfm::lower_bound_key(keys, m, (t + 1) << 32);
  }
}
