// Work split over a few threads, shared by kernels.cpp and march.cpp.
#ifndef RENDERFM_PARALLEL_H
#define RENDERFM_PARALLEL_H

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace renderfm {

// Run body(worker, begin, end) over [0, n) in chunks of `grain`, dealt in turn to `threads`
// workers (worker w takes chunks w, w + threads, ...); worker 0 is the calling thread.
template <typename Body>
void parallel_chunks(int64_t n, int64_t grain, int threads, Body body) {
  threads = std::max(threads, 1);
  auto work = [&](int worker) {
    for (int64_t begin = worker * grain; begin < n; begin += threads * grain)
      body(worker, begin, std::min(begin + grain, n));
  };
  std::vector<std::thread> pool;
  for (int worker = 1; worker < threads; ++worker) pool.emplace_back(work, worker);
  work(0);
  for (auto& thread : pool) thread.join();
}

}  // namespace renderfm

#endif  // RENDERFM_PARALLEL_H
