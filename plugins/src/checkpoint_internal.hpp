// Internals of the checkpoint reader and writer, shared by checkpoint*.cpp (not installed).
//
// checkpoint_unpickler.cpp  the pickle reader: bounded, builds values, never calls anything
// checkpoint_values.cpp     errors, the iterative node teardown, values -> IValues
// checkpoint_containers.cpp the zip / legacy torch.save / safetensors containers
// checkpoint_writer.cpp     the pickle writer and the atomic zip writer
// checkpoint.cpp            the public entry points and the state-dict policy
#pragma once

#include <sinsr/checkpoint.hpp>
#include <sinsr/sdk.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sinsr {
namespace ckpt {
namespace detail {

// SINSR_ERR_FORMAT "<path>: <what>".
[[noreturn]] void fail(const std::string& path, const std::string& what);
// SINSR_ERR_FORMAT "<path>: <what> (limit sinsr::ckpt::limits::<name> = <value>)".
[[noreturn]] void fail_limit(const std::string& path, const std::string& what, const char* name, uint64_t value);
// At most `max` bytes of untrusted text, for messages.
std::string excerpt(const std::string& s, size_t max = 64);

// ---- pickle values ------------------------------------------------------------------

struct Node;
using Value = std::shared_ptr<Node>;

struct Node {
  enum Kind { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Tensor, Global, Storage };
  Kind kind = None;
  bool b = false;
  // Set once the node is inside a container; from then on it is never mutated, which is what
  // makes cycles impossible (a cycle needs a container to grow after it was placed).
  bool contained = false;
  // 1 + the height of the tallest child. Exact, because only uncontained nodes ever grow.
  uint32_t height = 1;
  int64_t i = 0;
  double f = 0;
  std::string s;                                 // Str, Bytes; Global: "module.name"
  std::vector<Value> items;                      // Tuple, List
  std::vector<std::pair<Value, Value>> entries;  // Dict
  at::Tensor tensor;                             // Tensor, Storage (1-D, storage dtype)

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  // Iterative: a chain of any length is freed without recursion.
  ~Node();
};

// Supplies the bytes behind a persistent storage id; `numel` is what the pickle declares.
using StorageLoader = std::function<at::Tensor(const std::string& key, at::ScalarType dtype, int64_t numel)>;

// One pickle (protocols 0-5, the opcodes torch.save emits), read without executing anything:
// only an allowlist of globals may appear, and the torch rebuild functions are interpreted.
class Unpickler {
 public:
  Unpickler(std::string path, const char* data, size_t size, StorageLoader loader);
  Value run();
  size_t consumed() const { return size_t(p_ - begin_); }

 private:
  void dispatch(uint8_t op);
  // raw input
  uint8_t u8();
  const char* take(uint64_t n);
  uint64_t le(int n);
  int64_t long_bytes(uint64_t n);
  std::string str(uint64_t n);
  std::string line();
  uint64_t line_uint();
  Value text_int(std::string s);
  // values
  Value node(Node::Kind k);
  Value int_node(int64_t i);
  Value str_node(std::string s, Node::Kind k);
  void adopt(Node& parent, const Value& child);
  Value sequence(Node::Kind k, std::vector<Value> xs);
  void append(const Value& list, const Value& x);
  void set_item(const Value& dict, const Value& k, const Value& v);
  // the stack, its marks and the memo
  void push(Value v);
  void need(size_t n);
  Value pop();
  const Value& top();
  void mark();
  std::vector<Value> pop_mark();
  void memo_put(uint64_t key);
  Value memo_get(uint64_t key);
  // interpretation
  int64_t as_int(const Value& v, const char* what);
  std::vector<int64_t> int_tuple(const Value& v, const char* what);
  Value global(const std::string& name);
  Value persistent(const Value& pid);
  Value rebuild_tensor(const std::vector<Value>& a);
  Value reduce(const Value& fn, const Value& args);

  std::string path_;
  const char* begin_;
  const char* p_;
  const char* end_;
  StorageLoader loader_;
  std::vector<Value> stack_;
  std::vector<size_t> marks_;  // stack sizes at each MARK (Python's metastack)
  std::unordered_map<uint64_t, Value> memo_;
  uint64_t values_ = 0;
  uint64_t bytes_ = 0;  // the memory its values take, against limits::kMaxPickleBytes
  void charge(uint64_t bytes);
};

// The generic value; nodes shared in the pickle are converted once and stay shared.
c10::IValue to_ivalue(const Value& root, const std::string& path);

// ---- containers ---------------------------------------------------------------------

// A file's bytes, memory-mapped (read into memory where it cannot be mapped). Held by a
// shared_ptr: tensors made by tensor() may alias the mapping and keep it alive.
class FileBytes : public std::enable_shared_from_this<FileBytes> {
 public:
  explicit FileBytes(const std::string& path);
  ~FileBytes();
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;
  std::string_view view() const;
  // A tensor of `shape` over the nbytes at p (inside view(), bounds checked by the caller): the
  // mapped pages themselves where they can be (copy-on-write: a write copies that page and never
  // reaches the file), else a copy.
  at::Tensor tensor(const char* p, size_t nbytes, at::IntArrayRef shape, at::ScalarType dtype) const;

 private:
  void* map_ = nullptr;
  size_t size_ = 0;
  std::string read_;
};

Value read_zip(const std::string& path, const FileBytes& file);
Value read_legacy(const std::string& path, std::string_view bytes);
c10::IValue read_safetensors(const std::string& path, const FileBytes& file);
std::optional<SafetensorsHeader> read_safetensors_header(const std::string& path, const FileBytes& file);

// ---- writing ------------------------------------------------------------------------

// A zip-format .pth of `value`: temporary file, fsync, rename.
void write_atomic(const std::string& path, const c10::IValue& value);

}  // namespace detail
}  // namespace ckpt
}  // namespace sinsr
