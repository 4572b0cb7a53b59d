// A host stand-in for the GPU (there is none on development machines or in CI): just enough of
// CUDA's execution model to run RenderFM's real .cu kernels, unchanged, on the CPU with g++.
//
// A launch runs its blocks one after another; a block's threads are fibers (ucontext) on one OS
// thread, switched only at synchronization points, so a kernel's logic (grid-stride loops,
// shared-memory batches, __syncthreads, warp shuffles and votes, atomics) executes as the CUDA
// programming model defines it. Threads run in rank order, each up to its next barrier, so a
// read of shared memory that lacks its barrier sees other threads' stale data and the results go
// wrong, as they may on a GPU. Not modelled: blocks running concurrently, timing, limits
// (registers, shared memory size: NVRTC's test checks those).
//
// Checked on the way: every thread of a warp reaches a warp primitive with the full mask, no
// thread waits at a warp primitive while another in its warp waits at __syncthreads (a
// divergent barrier: deadlock on a GPU), block barriers are reached by all live threads.
// Violations abort with a message.
//
// Use: g++ -include cuda_emulation.h kernel.cu ...; launch with emu::launch(grid, block, body).
#ifndef RENDERFM_CUDA_EMULATION_H
#define RENDERFM_CUDA_EMULATION_H

#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static  // blocks run one at a time: a static is the block's shared memory

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};

using std::max;
using std::min;

// On x86-64 Linux, fibers switch with a few instructions (callee-saved registers and the stack
// pointer; swapcontext also makes a system call for the signal mask, 50x slower).
#if defined(__x86_64__) && defined(__linux__)
#define RENDERFM_EMU_FAST_SWITCH 1
extern "C" __attribute__((visibility("hidden"))) void emu_switch(void** save, void* load);
asm(R"(
  .text
  .globl emu_switch
  .hidden emu_switch
  .type emu_switch, @function
emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size emu_switch, .-emu_switch
)");
#endif

namespace emu {

enum class Wait { none, block, warp, done };
enum class Op { none, sync_count, shfl_down, any };

struct Thread {
  void* stack_pointer = nullptr;  // saved by a fast switch
  ucontext_t context;             // saved by swapcontext (other platforms)
  dim3 index;
  Wait wait = Wait::none;
  Op op = Op::none;
  unsigned mask = 0;
  int offset = 0;      // shfl_down's lane offset
  float value = 0.0f;  // shfl_down's value, then its result
  int predicate = 0;   // __syncthreads_count's and __any_sync's input, then their result
};

inline dim3 block_index, block_size, grid_size;
inline std::vector<Thread> threads;
inline std::vector<std::vector<char>> stacks;
inline std::size_t running = 0;
inline void* scheduler_stack_pointer = nullptr;
inline ucontext_t scheduler;
inline std::function<void()> body;

constexpr std::size_t STACK_BYTES = 64 * 1024;

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "cuda_emulation: %s (block %u,%u,%u)\n", what, block_index.x,
               block_index.y, block_index.z);
  std::abort();
}

inline Thread& current() { return threads[running]; }

inline void to_scheduler(Thread& self) {
#ifdef RENDERFM_EMU_FAST_SWITCH
  emu_switch(&self.stack_pointer, scheduler_stack_pointer);
#else
  swapcontext(&self.context, &scheduler);
#endif
}

inline void to_thread(Thread& thread) {
#ifdef RENDERFM_EMU_FAST_SWITCH
  emu_switch(&scheduler_stack_pointer, thread.stack_pointer);
#else
  swapcontext(&scheduler, &thread.context);
#endif
}

// Back to the scheduler until this thread's wait is resolved.
inline void yield(Wait wait, Op op) {
  Thread& self = current();
  self.wait = wait;
  self.op = op;
  to_scheduler(self);
}

inline void thread_main() {
  body();
  current().wait = Wait::done;
  to_scheduler(current());  // never resumed
}

// A fresh thread that starts in thread_main on `stack` at its first to_thread.
inline void start_thread(Thread& thread, std::vector<char>& stack) {
#ifdef RENDERFM_EMU_FAST_SWITCH
  auto top = reinterpret_cast<std::uintptr_t>(stack.data() + stack.size()) & ~std::uintptr_t{15};
  void** sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;                                          // thread_main's return address
  *--sp = reinterpret_cast<void*>(+[] { thread_main(); });  // where emu_switch returns to
  for (int k = 0; k < 6; ++k) *--sp = nullptr;              // rbp, rbx, r12-r15
  thread.stack_pointer = sp;
#else
  getcontext(&thread.context);
  thread.context.uc_stack.ss_sp = stack.data();
  thread.context.uc_stack.ss_size = stack.size();
  thread.context.uc_link = &scheduler;
  makecontext(&thread.context, thread_main, 0);
#endif
}

// Resolve warp w if all its lanes wait at the same warp primitive; false if they do not (yet).
inline bool resolve_warp(std::size_t first, std::size_t count) {
  const Thread& lead = threads[first];
  for (std::size_t k = first; k < first + count; ++k) {
    const Thread& t = threads[k];
    if (t.wait != Wait::warp) return false;
    if (t.op != lead.op || t.mask != 0xffffffffu || count != 32)
      fail("warp primitive reached by a partial or mixed warp");
  }
  int any = 0;
  std::vector<float> values(count);
  for (std::size_t k = 0; k < count; ++k) {
    any |= threads[first + k].predicate != 0;
    values[k] = threads[first + k].value;
  }
  for (std::size_t k = 0; k < count; ++k) {
    Thread& t = threads[first + k];
    const std::size_t source = k + static_cast<std::size_t>(t.offset);
    if (t.op == Op::shfl_down && source < count) t.value = values[source];
    if (t.op == Op::any) t.predicate = any;
    t.wait = Wait::none;
  }
  return true;
}

// Resolve the block barrier if every live thread waits at it.
inline bool resolve_block() {
  int count = 0, waiting = 0, live = 0;
  for (const Thread& t : threads) {
    if (t.wait == Wait::done) continue;
    ++live;
    if (t.wait != Wait::block) return false;
    ++waiting;
    count += t.predicate != 0;
  }
  if (live == 0 || waiting != live) return false;
  for (Thread& t : threads)
    if (t.wait == Wait::block) {
      t.predicate = count;
      t.wait = Wait::none;
    }
  return true;
}

inline void run_block() {
  for (;;) {
    bool all_done = true;
    for (running = 0; running < threads.size(); ++running) {
      if (threads[running].wait == Wait::none) to_thread(threads[running]);
      all_done &= threads[running].wait == Wait::done;
    }
    if (all_done) return;
    bool resolved = false;
    for (std::size_t first = 0; first < threads.size(); first += 32)
      resolved |= resolve_warp(first, std::min<std::size_t>(32, threads.size() - first));
    if (!resolved && !resolve_block()) fail("deadlock: threads wait at different barriers");
  }
}

// Run `kernel` (a callable invoking the __global__ function) over grid x block threads.
inline void launch(dim3 grid, dim3 block, std::function<void()> kernel) {
  body = std::move(kernel);
  grid_size = grid;
  block_size = block;
  const std::size_t per_block = static_cast<std::size_t>(block.x) * block.y * block.z;
  threads.assign(per_block, Thread{});
  if (stacks.size() < per_block) stacks.resize(per_block, std::vector<char>(STACK_BYTES));
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        block_index = {bx, by, bz};
        for (std::size_t k = 0; k < per_block; ++k) {
          Thread& t = threads[k];
          t = Thread{};
          t.index = {static_cast<unsigned>(k % block.x),
                     static_cast<unsigned>(k / block.x % block.y),
                     static_cast<unsigned>(k / (block.x * block.y))};
          start_thread(t, stacks[k]);
        }
        run_block();
      }
}

}  // namespace emu

#define threadIdx (::emu::current().index)
#define blockIdx (::emu::block_index)
#define blockDim (::emu::block_size)
#define gridDim (::emu::grid_size)

inline void __syncthreads() { ::emu::yield(::emu::Wait::block, ::emu::Op::none); }

inline int __syncthreads_count(int predicate) {
  ::emu::current().predicate = predicate;
  ::emu::yield(::emu::Wait::block, ::emu::Op::sync_count);
  return ::emu::current().predicate;
}

inline float __shfl_down_sync(unsigned mask, float value, unsigned offset) {
  ::emu::Thread& self = ::emu::current();
  self.mask = mask;
  self.value = value;
  self.offset = static_cast<int>(offset);
  ::emu::yield(::emu::Wait::warp, ::emu::Op::shfl_down);
  return ::emu::current().value;
}

inline int __any_sync(unsigned mask, int predicate) {
  ::emu::Thread& self = ::emu::current();
  self.mask = mask;
  self.predicate = predicate;
  ::emu::yield(::emu::Wait::warp, ::emu::Op::any);
  return ::emu::current().predicate;
}

// Fibers on one OS thread switch only at the primitives above: read-modify-write is atomic.
inline float atomicAdd(float* address, float value) {
  const float old = *address;
  *address = old + value;
  return old;
}

inline int atomicMax(int* address, int value) {
  const int old = *address;
  *address = old > value ? old : value;
  return old;
}

#endif  // RENDERFM_CUDA_EMULATION_H
