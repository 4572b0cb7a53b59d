// Host harness for tile_keys.cu's pipeline: the same steps on the CPU with tile_keys.cuh's math
// (tile_count per Gaussian, an inclusive scan, emit_tile_keys at each Gaussian's offset, a stable
// sort of the keys, lower_bound_key per tile), so that Testing/test_cuda_tile_keys_host.py can
// compare it with the PyTorch reference's tile_keys.
//
// Usage: tile_keys_harness IN OUT. IN holds int32 {n, width, height}, then float32 means2d
// [n, 2], int32 radii [n], float32 depths [n]. OUT receives int64 m (instances), then int64
// gaussian_ids [m] and tile_ranges [tiles_y * tiles_x, 2].
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <vector>

#include "harness_io.h"
#include "tile_keys.cuh"

using namespace renderfm;
using harness::read;
using harness::write;

int main(int argc, char** argv) {
  if (!harness::open_files(argc, argv, "tile_keys_harness")) return 2;
  const std::vector<int32_t> header = read<int32_t>(3);
  const std::size_t n = header[0];
  const int width = header[1], height = header[2];
  const int tiles_x = (width + TILE_SIZE - 1) / TILE_SIZE;
  const long long tiles = static_cast<long long>(tiles_x) * ((height + TILE_SIZE - 1) / TILE_SIZE);
  const auto means2d = read<float>(2 * n);
  const auto radii = read<int32_t>(n);
  const auto depths = read<float>(n);

  std::vector<int> rects(4 * n);
  std::vector<long long> offsets(n);
  for (std::size_t g = 0; g < n; ++g) {
    tile_rect({means2d[2 * g], means2d[2 * g + 1]}, radii[g], width, height, TILE_SIZE,
              &rects[4 * g]);
    offsets[g] = tile_count(&rects[4 * g]);
  }
  std::partial_sum(offsets.begin(), offsets.end(), offsets.begin());  // inclusive scan
  const long long m = n ? offsets[n - 1] : 0;
  std::vector<long long> keys(m), ids(m);
  for (std::size_t g = 0; g < n; ++g)
    emit_tile_keys(&rects[4 * g], depths[g], static_cast<long long>(g),
                   offsets[g] - tile_count(&rects[4 * g]), tiles_x, keys.data(), ids.data());

  std::vector<long long> order(m);
  std::iota(order.begin(), order.end(), 0LL);
  std::stable_sort(order.begin(), order.end(),
                   [&keys](long long a, long long b) { return keys[a] < keys[b]; });
  std::vector<long long> sorted_keys(m), sorted_ids(m);
  for (long long k = 0; k < m; ++k) {
    sorted_keys[k] = keys[order[k]];
    sorted_ids[k] = ids[order[k]];
  }
  std::vector<long long> ranges(2 * tiles);
  for (long long t = 0; t < tiles; ++t) {
    ranges[2 * t] = lower_bound_key(sorted_keys.data(), m, t << 32);
    ranges[2 * t + 1] = lower_bound_key(sorted_keys.data(), m, (t + 1) << 32);
  }
  write(std::vector<long long>{m}), write(sorted_ids), write(ranges);
  return harness::close_output();
}
