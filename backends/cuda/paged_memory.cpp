// CUDA managed memory for paged optimizer state (see paged_memory.h).
#include "paged_memory.h"

#include "status.h"

namespace bnb_cuda {
namespace {

// Makes `device` current for the scope and restores the previous one (host-only twin of common.cuh's guard).
class HostDeviceGuard {
 public:
  explicit HostDeviceGuard(int device) {
    err_ = cudaGetDevice(&prev_);
    if (err_ == cudaSuccess && prev_ != device) err_ = cudaSetDevice(device);
    if (err_ != cudaSuccess) prev_ = -1;
  }
  ~HostDeviceGuard() {
    int cur = -1;
    if (prev_ >= 0 && cudaGetDevice(&cur) == cudaSuccess && cur != prev_) (void)cudaSetDevice(prev_);
  }
  cudaError_t error() const { return err_; }

 private:
  int prev_ = -1;
  cudaError_t err_ = cudaSuccess;
};

// CUDA 13 takes a cudaMemLocation where CUDA 12 (and HIP) take a device ordinal (cudaCpuDeviceId = host).
#if defined(CUDART_VERSION) && CUDART_VERSION >= 13000
#define BNB_MEM_LOCATION_API 1
cudaMemLocation to_location(int location) {
  cudaMemLocation loc;
  loc.type = location < 0 ? cudaMemLocationTypeHost : cudaMemLocationTypeDevice;
  loc.id = location < 0 ? 0 : location;
  return loc;
}
#else
#define BNB_MEM_LOCATION_API 0
int to_location(int location) { return location < 0 ? cudaCpuDeviceId : location; }
#endif

// Records a failed call's error and clears this thread's last error, so the next kernel launch check does not
// report it again (a failed allocation or prefetch is not a broken context).
int fail(cudaError_t e) {
  if (e == cudaSuccess) return kOk;
  (void)cudaGetLastError();
  return record_cuda_error(e);
}

}  // namespace

int mem_get_info(int device, uint64_t* free_bytes, uint64_t* total_bytes) {
  if (device < 0) return kBadDevice;
  if (!free_bytes || !total_bytes) return kNullPointer;
  HostDeviceGuard guard(device);
  if (guard.error() != cudaSuccess) return record_cuda_error(guard.error());
  size_t f = 0, t = 0;
  if (cudaError_t e = cudaMemGetInfo(&f, &t)) return fail(e);
  *free_bytes = f;
  *total_bytes = t;
  return kOk;
}

int managed_caps(int device, int* managed, int* concurrent) {
  if (device < 0) return kBadDevice;
  if (!managed || !concurrent) return kNullPointer;
  int m = 0, c = 0;
  if (cudaError_t e = cudaDeviceGetAttribute(&m, cudaDevAttrManagedMemory, device)) return fail(e);
  if (cudaError_t e = cudaDeviceGetAttribute(&c, cudaDevAttrConcurrentManagedAccess, device)) return fail(e);
  *managed = m;
  *concurrent = c;
  return kOk;
}

int managed_alloc(int device, uint64_t nbytes, void** out) {
  if (device < 0) return kBadDevice;
  if (!out) return kNullPointer;
  *out = nullptr;
  if (nbytes == 0) return kBadSize;
  HostDeviceGuard guard(device);
  if (guard.error() != cudaSuccess) return record_cuda_error(guard.error());
  void* p = nullptr;
  if (cudaError_t e = cudaMallocManaged(&p, (size_t)nbytes, cudaMemAttachGlobal)) return fail(e);
  *out = p;
  return kOk;
}

int managed_free(void* ptr) {
  if (!ptr) return kOk;
  return fail(cudaFree(ptr));  // at process teardown (runtime unloading) the driver reclaims the memory anyway
}

int managed_prefetch(void* ptr, uint64_t nbytes, int location, int device, void* stream) {
  if (device < 0 || location < -1) return kBadDevice;
  if (!ptr) return kNullPointer;
  if (nbytes == 0) return kOk;
  HostDeviceGuard guard(device);
  if (guard.error() != cudaSuccess) return record_cuda_error(guard.error());
  cudaStream_t st = static_cast<cudaStream_t>(stream);
#if BNB_MEM_LOCATION_API
  return fail(cudaMemPrefetchAsync(ptr, (size_t)nbytes, to_location(location), 0, st));
#else
  return fail(cudaMemPrefetchAsync(ptr, (size_t)nbytes, to_location(location), st));
#endif
}

int managed_advise_preferred(void* ptr, uint64_t nbytes, int location) {
  if (location < -2) return kBadDevice;
  if (!ptr) return kNullPointer;
  if (nbytes == 0) return kOk;
  const cudaMemoryAdvise advice =
      location == -2 ? cudaMemAdviseUnsetPreferredLocation : cudaMemAdviseSetPreferredLocation;
  const int where = location == -2 ? -1 : location;  // ignored by "unset"
  return fail(cudaMemAdvise(ptr, (size_t)nbytes, advice, to_location(where)));
}

}  // namespace bnb_cuda
