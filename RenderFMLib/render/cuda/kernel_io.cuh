// Device-side loads, stores and grid-stride indexing shared by the kernels (not the host
// harnesses): row g of a row-major [N, k] float array as the math header's types, 64-bit.
#ifndef RENDERFM_KERNEL_IO_CUH
#define RENDERFM_KERNEL_IO_CUH

#include "gaussian_math.cuh"

namespace renderfm {

// The grid-stride loop over [0, n): for (i = first_index(); i < n; i += index_stride()).
__device__ __forceinline__ long long first_index() {
  return static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ long long index_stride() {
  return static_cast<long long>(gridDim.x) * blockDim.x;
}

__device__ __forceinline__ Vec3 load_vec3(const float* p, long long g) {
  return {p[3 * g], p[3 * g + 1], p[3 * g + 2]};
}

__device__ __forceinline__ Mat3 load_mat3(const float* p, long long g) {
  Mat3 a;
  for (int k = 0; k < 9; ++k) a.m[k] = p[9 * g + k];
  return a;
}

__device__ __forceinline__ void store_vec3(float* p, long long g, Vec3 v) {
  p[3 * g] = v.x;
  p[3 * g + 1] = v.y;
  p[3 * g + 2] = v.z;
}

__device__ __forceinline__ void store_mat3(float* p, long long g, const Mat3& a) {
  for (int k = 0; k < 9; ++k) p[9 * g + k] = a.m[k];
}

}  // namespace renderfm

#endif  // RENDERFM_KERNEL_IO_CUH
