// Work split over a few threads, shared by kernels.cpp and march.cpp.
//
// Built with OpenMP (loader.py's first choice), the work runs on the process's OpenMP threads:
// torch's own pool, since the dynamic loader reuses the libgomp that torch loaded. Threads of our
// own would compete for the cores with torch's workers, which spin for a while after each torch
// operation: on the 2-core CPU a fine-tuning step of the sample (1.5 mm,
// CT-Chest-Contrast-Enhanced) took 86-90 ms with std::thread workers and 64-67 ms on the OpenMP
// pool, the blend's forward and backward 31 ms and 18 ms. Without OpenMP, std::thread workers.
#ifndef RENDERFM_PARALLEL_H
#define RENDERFM_PARALLEL_H

#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#else
#include <thread>
#include <vector>
#endif

namespace renderfm {

// Run body(worker, begin, end) over [0, n) in chunks of `grain`, dealt in turn to at most
// `threads` workers (worker w of a team of T takes chunks w, w + T, ...); worker 0 is the calling
// thread. The same team size deals the same chunks to the same workers.
template <typename Body>
void parallel_chunks(int64_t n, int64_t grain, int threads, Body body) {
  threads = std::max(threads, 1);
  auto work = [&](int worker, int team) {
    for (int64_t begin = worker * grain; begin < n; begin += team * grain)
      body(worker, begin, std::min(begin + grain, n));
  };
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
  work(omp_get_thread_num(), omp_get_num_threads());
#else
  std::vector<std::thread> pool;
  for (int worker = 1; worker < threads; ++worker) pool.emplace_back(work, worker, threads);
  work(0, threads);
  for (auto& thread : pool) thread.join();
#endif
}

}  // namespace renderfm

#endif  // RENDERFM_PARALLEL_H
