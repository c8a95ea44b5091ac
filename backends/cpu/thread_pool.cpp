#include "thread_pool.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace bnb_cpu {
namespace {

constexpr int kMaxWorkers = 255;
// How long an idle worker keeps polling for the next parallel region before it blocks, and how long the
// caller polls for the workers' last tasks. Waking a blocked thread costs tens of microseconds (measured:
// two 100 us tasks on two threads took 170 us with condition variables alone), and model layers call
// these kernels back to back. The polling yields the CPU on every round, so a runnable thread (torch's
// own workers) is not kept off the core. BNB_CPU_SPIN_US sets it (0: block at once).
std::chrono::microseconds spin_time() {
  static const std::chrono::microseconds t = [] {
    const char* e = getenv("BNB_CPU_SPIN_US");
    long v = e && *e ? strtol(e, nullptr, 10) : 300;
    return std::chrono::microseconds(v < 0 ? 0 : (v > 100000 ? 100000 : v));
  }();
  return t;
}

inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  for (int i = 0; i < 16; ++i) __builtin_ia32_pause();
#endif
  std::this_thread::yield();
}

class Pool {
 public:
  explicit Pool(pid_t pid) : pid_(pid) {}

  pid_t pid() const { return pid_; }
  std::mutex& busy() { return busy_; }
  int size() {
    std::lock_guard<std::mutex> g(mu_);
    return (int)workers_.size();
  }

  // Called with busy_ held. Returns the number of threads that took part (the caller included).
  int run(int64_t ntasks, int nthreads, const std::function<void(int64_t)>& fn) {
    int want = nthreads - 1;
    if (want > kMaxWorkers) want = kMaxWorkers;
    grow(want);
    int nworkers;
    {
      std::lock_guard<std::mutex> g(mu_);
      nworkers = (int)workers_.size();
      if (nworkers > want) nworkers = want;
      if (nworkers > ntasks - 1) nworkers = (int)(ntasks - 1);
      fn_ = &fn;
      ntasks_ = ntasks;
      next_.store(0);
      active_ = nworkers;  // workers with index < active_ take part
      pending_.store(nworkers);
      generation_.fetch_add(1, std::memory_order_release);  // polling workers start here
    }
    cv_.notify_all();  // blocked workers start here
    work();
    const auto until = std::chrono::steady_clock::now() + spin_time();
    while (pending_.load(std::memory_order_acquire) != 0 && std::chrono::steady_clock::now() < until) relax();
    if (pending_.load(std::memory_order_acquire) != 0) {
      std::unique_lock<std::mutex> lk(mu_);
      done_cv_.wait(lk, [&] { return pending_.load() == 0; });
    }
    std::lock_guard<std::mutex> g(mu_);
    fn_ = nullptr;
    return nworkers + 1;
  }

 private:
  void grow(int want) {
    std::lock_guard<std::mutex> g(mu_);
    while ((int)workers_.size() < want) {
      int idx = (int)workers_.size();
      uint64_t gen0 = generation_.load();  // the thread must not miss a generation started after this
      try {
        workers_.emplace_back([this, idx, gen0] { loop(idx, gen0); });
      } catch (...) {
        break;  // could not create a thread: run with what we have
      }
    }
  }

  void work() {
    const std::function<void(int64_t)>& fn = *fn_;
    for (;;) {
      int64_t t = next_.fetch_add(1);
      if (t >= ntasks_) break;
      fn(t);
    }
  }

  void loop(int idx, uint64_t seen) {
    for (;;) {
      // poll for a new generation for a while, then block
      const auto until = std::chrono::steady_clock::now() + spin_time();
      while (generation_.load(std::memory_order_acquire) == seen && std::chrono::steady_clock::now() < until)
        relax();
      bool part;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return generation_.load() != seen; });
        seen = generation_.load();
        part = idx < active_;
      }
      if (!part) continue;
      work();
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> g(mu_);  // the caller may be about to block on done_cv_
        done_cv_.notify_one();
      }
    }
  }

  pid_t pid_;
  std::mutex busy_;  // one parallel region at a time
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t ntasks_ = 0;
  std::atomic<int64_t> next_{0};
  int active_ = 0;
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
};

// The pool is never destroyed (its threads block forever at process exit, which is harmless); after
// fork() the child's copy has no threads, so a new pool is made for the new pid and the old one is
// abandoned.
std::mutex g_pool_mu;
Pool* g_pool = nullptr;

Pool* get_pool() {
  std::lock_guard<std::mutex> g(g_pool_mu);
  pid_t pid = getpid();
  if (g_pool == nullptr || g_pool->pid() != pid) {
    try {
      g_pool = new Pool(pid);
    } catch (...) {
      g_pool = nullptr;
    }
  }
  return g_pool;
}

thread_local int t_last_threads = 0;
std::atomic<int> g_running{0};
std::atomic<int> g_high_water{0};

// Counts `k` threads as running tasks for the lifetime of the object (high-water mark diagnostic).
struct Running {
  int k;
  explicit Running(int k_) : k(k_) {
    int now = g_running.fetch_add(k) + k;
    int hw = g_high_water.load();
    while (now > hw && !g_high_water.compare_exchange_weak(hw, now)) {
    }
  }
  ~Running() { g_running.fetch_sub(k); }
};

}  // namespace

void parallel_for(int64_t ntasks, int nthreads, const std::function<void(int64_t)>& fn) {
  if (ntasks <= 0) return;
  Pool* pool = (nthreads > 1 && ntasks > 1) ? get_pool() : nullptr;
  if (pool != nullptr) {
    std::unique_lock<std::mutex> lk(pool->busy(), std::try_to_lock);
    if (lk.owns_lock()) {
      // the caller plus at most nthreads - 1 workers (run() may use fewer: count the upper bound)
      int k = nthreads;
      if (k > kMaxWorkers + 1) k = kMaxWorkers + 1;
      if (k > ntasks) k = (int)ntasks;
      Running r(k);
      t_last_threads = pool->run(ntasks, nthreads, fn);
      return;
    }
  }
  Running r(1);
  t_last_threads = 1;
  for (int64_t t = 0; t < ntasks; ++t) fn(t);
}

int last_threads() { return t_last_threads; }
int threads_high_water() { return g_high_water.load(); }
void reset_threads_high_water() { g_high_water.store(g_running.load()); }

int pool_size() {
  Pool* p = get_pool();
  return p ? p->size() : 0;
}

}  // namespace bnb_cpu
