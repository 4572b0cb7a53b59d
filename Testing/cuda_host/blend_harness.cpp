// Host harness for blend_fwd.cu's per-pixel loop: for each 16x16 tile and each of its pixels,
// walk the tile's depth-sorted instances with blend_step until the pixel is done, then
// finish_pixel, as the kernel does (its shared-memory batches change nothing per pixel), so that
// Testing/test_cuda_math_host.py can compare it with the PyTorch reference's blend.
//
// Usage: blend_harness IN OUT. IN holds int64 {n, m, width, height}, then float32 means2d [n, 2],
// conics [n, 3], colors [n, 3], opacities [n], depths [n], background [3]; int64 gaussian_ids
// [m], tile_ranges [tiles, 2] (tile_keys with tile size 16). OUT receives float32 rgb [H, W, 3],
// alpha [H, W], depth [H, W], final_t [H, W] and int32 n_consumed [H, W].
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "gaussian_math.cuh"
#include "harness_io.h"

using namespace renderfm;
using harness::read;
using harness::write;

namespace {

constexpr int TILE = TILE_SIZE;  // the blend kernels' tile side, px

}  // namespace

int main(int argc, char** argv) {
  if (!harness::open_files(argc, argv, "blend_harness")) return 2;
  const std::vector<int64_t> header = read<int64_t>(4);
  const std::size_t n = header[0], m = header[1];
  const int width = static_cast<int>(header[2]), height = static_cast<int>(header[3]);
  const int tiles_x = (width + TILE - 1) / TILE, tiles_y = (height + TILE - 1) / TILE;
  const auto means2d = read<float>(2 * n), conics = read<float>(3 * n);
  const auto colors = read<float>(3 * n), opacities = read<float>(n), depths = read<float>(n);
  const auto background = read<float>(3);
  const auto ids = read<int64_t>(m);
  const auto ranges = read<int64_t>(2 * static_cast<std::size_t>(tiles_x) * tiles_y);
  const Vec3 bg = {background[0], background[1], background[2]};

  const std::size_t pixels = static_cast<std::size_t>(width) * height;
  std::vector<float> rgb(3 * pixels), alpha(pixels), depth(pixels), final_t(pixels);
  std::vector<int32_t> consumed(pixels);
  for (int tile = 0; tile < tiles_x * tiles_y; ++tile) {
    const int64_t start = ranges[2 * tile], count = ranges[2 * tile + 1] - start;
    for (int rank = 0; rank < TILE * TILE; ++rank) {
      const int px = (tile % tiles_x) * TILE + rank % TILE;
      const int py = (tile / tiles_x) * TILE + rank / TILE;
      if (px >= width || py >= height) continue;
      PixelState state = empty_pixel();
      int last = 0;
      for (int64_t j = 0; j < count && !state.done; ++j) {
        const int64_t g = ids[start + j];
        if (blend_step(state, {means2d[2 * g], means2d[2 * g + 1]},
                       {conics[3 * g], conics[3 * g + 1], conics[3 * g + 2]}, opacities[g],
                       {colors[3 * g], colors[3 * g + 1], colors[3 * g + 2]}, depths[g], px, py))
          last = static_cast<int>(j) + 1;
      }
      const std::size_t pixel = static_cast<std::size_t>(py) * width + px;
      finish_pixel(state, bg, &rgb[3 * pixel], &alpha[pixel], &depth[pixel]);
      final_t[pixel] = state.t;
      consumed[pixel] = last;
    }
  }
  write(rgb), write(alpha), write(depth), write(final_t), write(consumed);
  return harness::close_output();
}
