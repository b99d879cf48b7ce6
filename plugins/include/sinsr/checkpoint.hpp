// Reading and writing PyTorch checkpoints without Python and without executing anything
// from the file: zip and legacy torch.save formats, safetensors, and a pickle reader that
// only accepts an allowlist of globals (the equivalent of torch.load(weights_only=True)).
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>

#include <string>
#include <utility>
#include <vector>

namespace torch { namespace nn { class Module; } }

namespace sinsr {
namespace ckpt {

// Name -> tensor in file order (state dicts are ordered).
using StateDict = std::vector<std::pair<std::string, at::Tensor>>;

// Any supported file as a generic value (dicts, lists, tensors, numbers, strings).
// OrderedDicts come back as GenericDict; nn.Parameter as its tensor. Throws sinsr::sdk::Error
// (SINSR_ERR_IO / SINSR_ERR_FORMAT) naming the file and the problem.
c10::IValue read_file(const std::string& path);

// The state dict in a checkpoint: the top-level dict itself, or the first of the usual
// nesting keys that holds one ("state_dict", "model", "ema", "params_ema", ...; `key`, when
// non-empty, forces one). Prefixes "module." and "_orig_mod." are stripped.
StateDict read_state_dict(const std::string& path, const std::string& key = "");

struct LoadReport {
  std::vector<std::string> missing;     // in the module, absent from the file
  std::vector<std::string> unexpected;  // in the file, absent from the module
  std::vector<std::string> mismatched;  // "name: file [a,b] vs module [c,d]"
};

// Copies a state dict into the module's parameters and buffers (official key names).
// strict: any missing / unexpected / mismatched entry is an error listing all of them by
// name; otherwise the matching entries are loaded and the report says what was skipped.
LoadReport load_into(torch::nn::Module& module, const StateDict& state, bool strict = true);

// The module's parameters and buffers in registration order with their dotted names.
StateDict state_of(const torch::nn::Module& module);

// Writes a zip-format .pth holding a plain dict name -> tensor (Python's torch.load reads it;
// the official classes' load_state_dict accepts it). Written to a temporary file and renamed.
void save_state_dict(const std::string& path, const StateDict& state);

// Writes any IValue (nested dicts of tensors and numbers) as a zip-format .pth, atomically.
void save_file(const std::string& path, const c10::IValue& value);

}  // namespace ckpt
}  // namespace sinsr
