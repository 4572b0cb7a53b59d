// Grid-stride indexing shared by the kernels (not the host harnesses), and array_io.cuh's loads
// and stores of rows of [N, k] float arrays.
#ifndef RENDERFM_KERNEL_IO_CUH
#define RENDERFM_KERNEL_IO_CUH

#include "array_io.cuh"

namespace renderfm {

// The grid-stride loop over [0, n): for (i = first_index(); i < n; i += index_stride()).
__device__ __forceinline__ long long first_index() {
  return static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ long long index_stride() {
  return static_cast<long long>(gridDim.x) * blockDim.x;
}

}  // namespace renderfm

#endif  // RENDERFM_KERNEL_IO_CUH
