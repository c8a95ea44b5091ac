// CUDA managed memory for paged optimizer state (torch-free, host only). The state of a paged optimizer lives in
// one managed allocation per tensor: the driver evicts its pages to host memory when the GPU runs short and
// faults them back on access; bnb_core prefetches them to the GPU on the current stream before each step
// (managed_prefetch) and can move them to the host on request. See docs/architecture.md "Paged optimizers".
//
// The runtime API (cudaMallocManaged) is used, not the driver API (cuMemAllocManaged): the allocation then lives
// in the device's primary context, the one torch uses, the module needs no link against libcuda, errors come back
// as cudaError_t like every other entry point, and the HIP build maps it one to one (hipMallocManaged).
// Every function returns a Status (status.h); nothing here synchronizes except managed_free (cudaFree waits
// for the device, as it must before memory that running kernels may use is released).
#pragma once

#include <stdint.h>

namespace bnb_cuda {

// Free and total bytes of `device` (cudaMemGetInfo with the device current).
int mem_get_info(int device, uint64_t* free_bytes, uint64_t* total_bytes);

// managed: the device can allocate managed memory (cudaDevAttrManagedMemory); concurrent: pages migrate on
// demand, can be evicted under memory pressure and be prefetched or advised (cudaDevAttrConcurrentManagedAccess;
// Linux on Pascal and later). Without `concurrent` managed memory still works but moves wholesale at kernel
// launch, and prefetch/advise are not allowed.
int managed_caps(int device, int* managed, int* concurrent);

// cudaMallocManaged(nbytes, cudaMemAttachGlobal) with `device` current; nbytes > 0.
int managed_alloc(int device, uint64_t nbytes, void** out);
// cudaFree; null is a no-op. (ManagedBuffer's destructor ignores the status: at process teardown the runtime may
// already be unloading, and the driver reclaims the memory.)
int managed_free(void* ptr);

// Location: a device index >= 0, or -1 for host memory.
// Asynchronous prefetch of [ptr, ptr + nbytes) to `location` on `stream` (a stream of `device`).
int managed_prefetch(void* ptr, uint64_t nbytes, int location, int device, void* stream);
// Preferred location advice for [ptr, ptr + nbytes): location >= 0 a device, -1 the host, -2 unset.
int managed_advise_preferred(void* ptr, uint64_t nbytes, int location);

}  // namespace bnb_cuda
