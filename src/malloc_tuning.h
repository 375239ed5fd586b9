// glibc malloc set for tensor traffic. A training step frees and allocates the same activation buffers
// (hundreds of KB to MB) over and over; glibc's defaults give each one back to the kernel when freed
// (trimmed off the top of the heap, or unmapped) and take it again on the next allocation, so every step
// pays a page fault per 4 KB touched (expensive in a VM: the demo's step took 86 ms against 54 ms with
// the buffers kept). Here allocations below 64 MiB come from the heap and up to 256 MiB of free heap top
// is kept. Peak memory is unchanged: only memory already used once is kept for reuse.
#pragma once
#include <string>

namespace tl {

// Applies the setting once per process (glibc only), unless TORCH_LORA_MALLOC=default or GLIBC_TUNABLES
// sets malloc itself; returns what is in effect, in words.
const std::string& tuneMallocForTensors();

}  // namespace tl
