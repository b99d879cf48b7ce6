// Reading and writing PyTorch checkpoints without Python and without executing anything
// from the file: zip and legacy torch.save formats, safetensors, and a pickle reader that
// only accepts an allowlist of globals (the equivalent of torch.load(weights_only=True)).
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace torch {
namespace nn {
class Module;
}
}  // namespace torch

namespace sinsr {
namespace ckpt {

// What the reader accepts from a file before it allocates anything. A file beyond any of
// these is refused with SINSR_ERR_FORMAT naming the file and the limit; real checkpoints stay
// far below them (a state dict nests about 3 deep and holds a few thousand values per 1 MB).
namespace limits {
// Nesting of pickle containers, pickle marks and the safetensors JSON header.
constexpr uint32_t kMaxDepth = 1000;
// Values one pickle may create (each costs ~150 bytes: caps the memory at ~2.5 GB).
constexpr uint64_t kMaxValues = uint64_t(1) << 24;
// Items of one container, entries of the pickle stack, records of a zip, tensors of a
// safetensors header.
constexpr uint64_t kMaxItems = uint64_t(1) << 24;
// One pickled string or bytes object.
constexpr uint64_t kMaxStringBytes = uint64_t(1) << 30;
// Dimensions of one tensor.
constexpr uint32_t kMaxTensorDims = 64;
// The safetensors JSON header (the Rust reference reader's own limit).
constexpr uint64_t kMaxSafetensorsHeaderBytes = uint64_t(100) << 20;
// Deflate cannot expand more than 1032:1, so a zip record declaring more is lying.
constexpr uint64_t kMaxZipExpansion = 1032;
// All deflated records of one file together: at most this many times the file, plus
// kInflatedAllowance. torch.save stores records uncompressed and weights deflate to ~0.9 of their
// size, so only a bomb comes near it (storages zero-padded to 1 GiB each took 6 GB from 9 MB).
constexpr uint64_t kMaxFileExpansion = 16;
constexpr uint64_t kInflatedAllowance = uint64_t(64) << 20;
// The memory one pickle's values may take, counted as ~160 bytes a value plus the bytes of its
// strings (16.7 M values of a 17 KB file took 3.9 GB; two 1 GiB strings 4.2 GB).
constexpr uint64_t kMaxPickleBytes = uint64_t(512) << 20;
}  // namespace limits

// Name -> tensor in file order (state dicts are ordered).
using StateDict = std::vector<std::pair<std::string, at::Tensor>>;

// Any supported file as a generic value (dicts, lists, tensors, numbers, strings).
// OrderedDicts come back as GenericDict; nn.Parameter as its tensor; values the pickle shares
// stay shared. Throws only sinsr::sdk::Error (SINSR_ERR_IO / SINSR_ERR_FORMAT, or
// SINSR_ERR_OUT_OF_MEMORY), naming the file and the problem or the limit (see `limits`).
c10::IValue read_file(const std::string& path);

// The header of a safetensors file without its tensors: each tensor's name and shape in file
// order, and the string values of __metadata__; nullopt when the file is not safetensors. Read,
// bounded and checked as read_file reads it (the one safetensors header reader); throws as it.
struct SafetensorsHeader {
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
  std::vector<std::pair<std::string, std::string>> metadata;
};
std::optional<SafetensorsHeader> read_safetensors_header(const std::string& path);

// The name a state-dict entry goes by: the wrapper prefixes "module." (DataParallel) and
// "_orig_mod." (torch.compile) stripped, however often they repeat.
std::string entry_name(std::string name);

// The state dict in a checkpoint: the top-level dict itself, or the first of the usual
// nesting keys that holds one ("state_dict", "model", "ema", "params_ema", ...; `key`, when
// non-empty, forces one). Prefixes "module." and "_orig_mod." are stripped. Throws as read_file.
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
// The same, taking the tensors over: a parameter or buffer whose file tensor has its dtype,
// device and dense layout, and owns its whole storage, adopts that storage instead of copying
// it, so weights just read are touched once, not twice (start-up on a cold machine pays for
// every fresh page). Use only for a state dict read for this module alone.
LoadReport load_into(torch::nn::Module& module, StateDict&& state, bool strict = true);

// The module's parameters and buffers in registration order with their dotted names.
StateDict state_of(const torch::nn::Module& module);

// Writes a zip-format .pth holding a plain dict name -> tensor (Python's torch.load reads it;
// the official classes' load_state_dict accepts it). Written to a temporary file and renamed.
void save_state_dict(const std::string& path, const StateDict& state);

// Writes any IValue (nested dicts of tensors and numbers) as a zip-format .pth, atomically.
void save_file(const std::string& path, const c10::IValue& value);

}  // namespace ckpt
}  // namespace sinsr
