// The checkpoint reader (zip, legacy torch.save, safetensors; the pickle inside): any file gives
// a value or sdk::Error. Every tensor read is touched end to end, so a view outside its storage
// shows up under ASan.
#include "fuzz_common.hpp"

#include <sinsr/checkpoint.hpp>

#include <ATen/core/Dict.h>

#include <vector>

namespace {

// Visits every tensor without recursion (the value may be deep).
double touch(const c10::IValue& root) {
  double sum = 0;
  std::vector<c10::IValue> todo{root};
  size_t visited = 0;
  while (!todo.empty() && ++visited < 100000) {
    c10::IValue v = std::move(todo.back());
    todo.pop_back();
    if (v.isTensor()) {
      at::Tensor t = v.toTensor();
      if (t.numel() > 0 && t.numel() < (1 << 22)) sum += t.to(at::kDouble).sum().item<double>();
    } else if (v.isGenericDict()) {
      for (const auto& kv : v.toGenericDict()) todo.push_back(kv.value());
    } else if (v.isList()) {
      for (const auto& x : v.toListRef()) todo.push_back(x);
    } else if (v.isTuple()) {
      for (const auto& x : v.toTupleRef().elements()) todo.push_back(x);
    }
  }
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sinsr_fuzz::init_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sinsr_fuzz::write_temp(data, size, ".pth");
  bool read = false;
  sinsr_fuzz::expect_sdk_errors_only("read_file", [&] {
    touch(sinsr::ckpt::read_file(path));
    read = true;
  });
  // The state-dict policy (nesting keys, prefixes) on what the reader accepted.
  if (read)
    sinsr_fuzz::expect_sdk_errors_only("read_state_dict", [&] {
      for (auto& kv : sinsr::ckpt::read_state_dict(path)) touch(kv.second);
    });
  return 0;
}
