// Stage 4, per frame, backward: dL/d the blend's per-Gaussian inputs (means2d, conics, colours,
// opacities, depths) from dL/d the image's rgb, alpha and depth (DESIGN.md section 6).
// PyTorch twin: torch autograd through render/reference/blend.py, blend; the per-pixel math is
// start_pixel_bwd and blend_step_bwd in gaussian_math_bwd.cuh.
//
// Launch as blend_fwd: grid = tiles_x * tiles_y blocks (tile id = blockIdx.x), block = 16 x 16
// threads, one per pixel. Each pixel starts from blend_fwd's final T, alpha and depth and walks
// the instances it consumed (n_consumed) back to front, undoing T *= (1 - alpha). The block walks
// its tile's instances [0, max n_consumed) from the back in batches of 256, loaded into shared
// memory (the Gaussian's id too), so every thread visits the same instance at the same step.
//
// Accumulation (warp-reduced atomics): at each instance, the 32 pixels of a warp (two rows of the
// tile) sum their 10 gradient terms with shuffles, and lane 0 adds the sums to the Gaussian's
// gradients in global memory with atomicAdd: 32x fewer atomics than one per pixel, and none
// for warps in which no pixel took the Gaussian (__any_sync). Float atomics make the summation
// order, and so the last bits of the gradients, vary from run to run; the gradient buffers must
// be zeroed before the launch.
#include "gaussian_math_bwd.cuh"

namespace {

constexpr int TILE = renderfm::TILE_SIZE;  // pixels per tile side
constexpr int BLOCK = TILE * TILE;         // threads per block = Gaussians per shared batch
constexpr unsigned FULL_WARP = 0xffffffffu;

__device__ float warp_sum(float value) {
  for (int offset = 16; offset > 0; offset >>= 1)
    value += __shfl_down_sync(FULL_WARP, value, offset);
  return value;
}

// Sum d over the warp; lane 0 adds the sums to Gaussian g's gradients.
__device__ void accumulate(const renderfm::FootprintGrad& d, long long g, float* grad_means2d,
                           float* grad_conics, float* grad_colors, float* grad_opacities,
                           float* grad_depths) {
  const float terms[10] = {d.mean2d.x, d.mean2d.y, d.conic.a, d.conic.b, d.conic.c,
                           d.color.x,  d.color.y,  d.color.z, d.opacity, d.depth};
  float sums[10];
  for (int k = 0; k < 10; ++k) sums[k] = warp_sum(terms[k]);
  if ((threadIdx.x + threadIdx.y * blockDim.x) % 32 != 0) return;
  for (int k = 0; k < 2; ++k) atomicAdd(&grad_means2d[2 * g + k], sums[k]);
  for (int k = 0; k < 3; ++k) atomicAdd(&grad_conics[3 * g + k], sums[2 + k]);
  for (int k = 0; k < 3; ++k) atomicAdd(&grad_colors[3 * g + k], sums[5 + k]);
  atomicAdd(&grad_opacities[g], sums[8]);
  atomicAdd(&grad_depths[g], sums[9]);
}

}  // namespace

extern "C" __global__ void blend_bwd(
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
    const float* __restrict__ out_alpha,        // [H, W] blend_fwd's outputs
    const float* __restrict__ out_depth,        // [H, W] mm
    const float* __restrict__ final_t,          // [H, W]
    const int* __restrict__ n_consumed,         // [H, W]
    const float* __restrict__ grad_rgb,         // [H, W, 3] dL/d rgb
    const float* __restrict__ grad_alpha,       // [H, W]
    const float* __restrict__ grad_depth,       // [H, W] 1/mm
    float* __restrict__ grad_means2d,           // [N, 2] zeroed, dL/d means2d added
    float* __restrict__ grad_conics,            // [N, 3] zeroed
    float* __restrict__ grad_colors,            // [N, 3] zeroed
    float* __restrict__ grad_opacities,         // [N] zeroed
    float* __restrict__ grad_depths) {          // [N] zeroed
  __shared__ long long s_id[BLOCK];
  __shared__ renderfm::Vec2 s_mean[BLOCK];
  __shared__ renderfm::Conic s_conic[BLOCK];
  __shared__ float s_opacity[BLOCK];
  __shared__ renderfm::Vec3 s_color[BLOCK];
  __shared__ float s_depth[BLOCK];
  __shared__ int s_instances;  // max n_consumed over the tile's pixels

  const int tiles_x = (width + TILE - 1) / TILE;
  const int tile = blockIdx.x;
  const int px = (tile % tiles_x) * TILE + threadIdx.x;
  const int py = (tile / tiles_x) * TILE + threadIdx.y;
  const int rank = threadIdx.y * TILE + threadIdx.x;
  const bool inside = px < width && py < height;
  const long long pixel = static_cast<long long>(py) * width + px;

  renderfm::PixelGradState state = {};
  int consumed = 0;  // outside pixels walk nothing
  if (inside) {
    state = renderfm::start_pixel_bwd(
        final_t[pixel], out_alpha[pixel], out_depth[pixel],
        {background[0], background[1], background[2]},
        {grad_rgb[3 * pixel], grad_rgb[3 * pixel + 1], grad_rgb[3 * pixel + 2]}, grad_alpha[pixel],
        grad_depth[pixel]);
    consumed = n_consumed[pixel];
  }
  if (rank == 0) s_instances = 0;
  __syncthreads();
  atomicMax(&s_instances, consumed);
  __syncthreads();

  const long long start = tile_ranges[2 * tile];
  for (int end = s_instances; end > 0; end -= BLOCK) {
    const int begin = max(end - BLOCK, 0);
    __syncthreads();  // every thread is done with the previous batch
    if (rank < end - begin) {
      const long long g = gaussian_ids[start + begin + rank];
      s_id[rank] = g;
      s_mean[rank] = {means2d[2 * g], means2d[2 * g + 1]};
      s_conic[rank] = {conics[3 * g], conics[3 * g + 1], conics[3 * g + 2]};
      s_opacity[rank] = opacities[g];
      s_color[rank] = {colors[3 * g], colors[3 * g + 1], colors[3 * g + 2]};
      s_depth[rank] = depths[g];
    }
    __syncthreads();
    for (int j = end - begin - 1; j >= 0; --j) {  // the same j in every thread: shuffles are safe
      renderfm::FootprintGrad d = {};
      const bool took = begin + j < consumed &&
                        renderfm::blend_step_bwd(state, s_mean[j], s_conic[j], s_opacity[j],
                                                 s_color[j], s_depth[j], px, py, &d);
      if (__any_sync(FULL_WARP, took))
        accumulate(d, s_id[j], grad_means2d, grad_conics, grad_colors, grad_opacities, grad_depths);
    }
  }
}
