// Stage 4, per frame, forward: composite each tile's depth-sorted Gaussians front to back
// (DESIGN.md section 6). PyTorch twin: render/reference/blend.py, blend (with tile_keys.py's
// gaussian_ids and tile_ranges for 16-pixel tiles).
//
// Launch: grid = tiles_x * tiles_y blocks (tile id = blockIdx.x = tile_y * tiles_x + tile_x),
// block = 16 x 16 threads, one per pixel. The block walks its tile's instances in batches of 256:
// every thread loads one Gaussian (mean, conic, opacity, colour, depth; the forward pass needs
// no id) into shared memory, then every pixel blends the batch with
// blend_step. The block stops once all its pixels are done; pixels outside the image (the last
// row and column of tiles) help load but write nothing.
//
// For the backward pass (blend_bwd) the kernel also writes, per pixel:
//   final_t   [H, W] float  the transmittance T left after the last contributing Gaussian
//                           (rgb = sum w c + final_t background);
//   n_consumed [H, W] int32 1 + the index, within the tile's range, of the last instance that
//                           contributed (0 if none): the backward pass walks the instances
//                           tile_ranges[tile, 0] + n_consumed - 1 down to tile_ranges[tile, 0],
//                           undoing T *= (1 - alpha) from final_t.
#include "gaussian_math.cuh"

namespace {

constexpr int TILE = renderfm::TILE_SIZE;  // pixels per tile side (tile_keys.py's TILE_SIZE)
constexpr int BLOCK = TILE * TILE;         // threads per block = Gaussians per shared batch

}  // namespace

extern "C" __global__ void blend_fwd(
    const float* __restrict__ means2d,          // [N, 2] px
    const float* __restrict__ conics,           // [N, 3] a, b, c, 1/px^2
    const float* __restrict__ colors,           // [N, 3]
    const float* __restrict__ opacities,        // [N] alpha_c
    const float* __restrict__ depths,           // [N] camera z, mm
    const long long* __restrict__ gaussian_ids, // [M] sorted by tile, then depth
    const long long* __restrict__ tile_ranges,  // [tiles_y * tiles_x, 2] [start, end) in ids
    const int width,                            // image size, px
    const int height,
    const float* __restrict__ background,       // [3] rgb
    float* __restrict__ out_rgb,                // [H, W, 3]
    float* __restrict__ out_alpha,              // [H, W] sum of weights
    float* __restrict__ out_depth,              // [H, W] mm, expected depth (0 where alpha 0)
    float* __restrict__ final_t,                // [H, W] for the backward pass (see above)
    int* __restrict__ n_consumed) {             // [H, W] for the backward pass (see above)
  __shared__ renderfm::Vec2 s_mean[BLOCK];
  __shared__ renderfm::Conic s_conic[BLOCK];
  __shared__ float s_opacity[BLOCK];
  __shared__ renderfm::Vec3 s_color[BLOCK];
  __shared__ float s_depth[BLOCK];

  const int tiles_x = (width + TILE - 1) / TILE;
  const int tile = blockIdx.x;
  const int px = (tile % tiles_x) * TILE + threadIdx.x;
  const int py = (tile / tiles_x) * TILE + threadIdx.y;
  const int rank = threadIdx.y * TILE + threadIdx.x;
  const bool inside = px < width && py < height;

  const long long start = tile_ranges[2 * tile];
  const long long count = tile_ranges[2 * tile + 1] - start;
  renderfm::PixelState state = renderfm::empty_pixel();
  state.done = !inside;  // outside pixels never blend
  int consumed = 0;      // 1 + local index of the last contributing instance

  for (long long batch = 0; batch < count; batch += BLOCK) {
    // Also the barrier that keeps the previous batch in shared memory until all have read it.
    if (__syncthreads_count(state.done) == BLOCK) break;
    if (batch + rank < count) {
      const long long g = gaussian_ids[start + batch + rank];
      s_mean[rank] = {means2d[2 * g], means2d[2 * g + 1]};
      s_conic[rank] = {conics[3 * g], conics[3 * g + 1], conics[3 * g + 2]};
      s_opacity[rank] = opacities[g];
      s_color[rank] = {colors[3 * g], colors[3 * g + 1], colors[3 * g + 2]};
      s_depth[rank] = depths[g];
    }
    __syncthreads();
    const int size = static_cast<int>(min(static_cast<long long>(BLOCK), count - batch));
    for (int j = 0; j < size && !state.done; ++j) {
      if (renderfm::blend_step(state, s_mean[j], s_conic[j], s_opacity[j], s_color[j], s_depth[j],
                               px, py))
        consumed = static_cast<int>(batch) + j + 1;
    }
  }
  if (!inside) return;

  const long long pixel = static_cast<long long>(py) * width + px;
  float rgb[3];
  renderfm::finish_pixel(state, {background[0], background[1], background[2]}, rgb,
                         &out_alpha[pixel], &out_depth[pixel]);
  out_rgb[3 * pixel] = rgb[0];
  out_rgb[3 * pixel + 1] = rgb[1];
  out_rgb[3 * pixel + 2] = rgb[2];
  final_t[pixel] = state.t;
  n_consumed[pixel] = consumed;
}
