// A small persistent thread pool (std::thread; no OpenMP so it never clashes with torch's libgomp).
#pragma once

#include <stdint.h>

#include <functional>

namespace bnb_cpu {

// Run fn(task) for task in [0, ntasks) on up to `nthreads` threads (the calling thread included).
// Tasks are handed out dynamically. Falls back to running everything on the calling thread when
// nthreads <= 1, ntasks <= 1, the pool is busy with another caller, or threads cannot be created.
// fn must not throw.
void parallel_for(int64_t ntasks, int nthreads, const std::function<void(int64_t)>& fn);

// Number of worker threads currently alive in the pool (for diagnostics).
int pool_size();

// Diagnostics (tests, benchmarks). Threads (the caller included) that the calling thread's last
// parallel_for ran on: 1 when it ran serially (nthreads <= 1, one task, or the pool was busy).
int last_threads();
// The most threads that ran parallel_for tasks at the same time (calling threads plus pool workers)
// since the last reset_threads_high_water().
int threads_high_water();
void reset_threads_high_water();

}  // namespace bnb_cpu
