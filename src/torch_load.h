#pragma once
#include <ATen/ATen.h>
#include <string>
#include <vector>

namespace tl {

// The tensors of a state dict, in the file's order.
struct NamedTensors {
  std::vector<std::string> names;
  std::vector<at::Tensor> tensors;
};

// Reads a file written by torch.save (the zip layout of PyTorch >= 1.6: <archive>/data.pkl, data/<key>,
// version, byteorder) whose object is a dict or collections.OrderedDict of str -> tensor, such as
// pytorch_model.bin or adapter_model.bin. The zip container is read by libtorch's PyTorchStreamReader;
// data.pkl by a restricted unpickler that builds values and never runs code (it knows the few globals
// torch.save writes for tensors, like torch.load(weights_only=True)). libtorch's own jit unpickler is
// not used: it turns every collections.OrderedDict into None, so it cannot read model.state_dict()
// files, and it asserts on malformed input. Tensors that shared a storage in the file share one here;
// the tensors are then moved to `device` when it is not the CPU.
NamedTensors loadTorchStateDict(const std::string& path, const at::Device& device);

}  // namespace tl
