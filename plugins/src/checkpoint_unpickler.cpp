// The pickle reader. Every count, length and depth the file declares is checked against the
// input and against sinsr::ckpt::limits before anything is allocated, and arithmetic on
// declared numbers is overflow-checked.
#include "checkpoint_internal.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <map>

namespace sinsr {
namespace ckpt {
namespace detail {

namespace {

at::ScalarType storage_dtype(const std::string& global, const std::string& path) {
  static const std::map<std::string, at::ScalarType> types = {
      {"torch.FloatStorage", at::kFloat},       {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong},     {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},       {"torch.CharStorage", at::kChar},     {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool},         {"torch.UntypedStorage", at::kByte},
  };
  auto it = types.find(global);
  if (it == types.end()) fail(path, "unsupported storage type " + excerpt(global));
  return it->second;
}

}  // namespace

Unpickler::Unpickler(std::string path, const char* data, size_t size, StorageLoader loader)
    : path_(std::move(path)), begin_(data), p_(data), end_(data + size), loader_(std::move(loader)) {}

Value Unpickler::run() {
  while (true) {
    uint8_t op = u8();
    if (op == '.') return pop();  // STOP
    dispatch(op);
  }
}

void Unpickler::dispatch(uint8_t op) {
  switch (op) {
    case 0x80: u8(); break;     // PROTO
    case 0x95: take(8); break;  // FRAME
    case '(': mark(); break;
    case 'N': push(node(Node::None)); break;
    case 0x88:
    case 0x89: {
      auto v = node(Node::Bool);
      v->b = op == 0x88;
      push(v);
      break;
    }
    case 'J': push(int_node(int32_t(le(4)))); break;
    case 'K': push(int_node(int64_t(le(1)))); break;
    case 'M': push(int_node(int64_t(le(2)))); break;
    case 0x8a: {  // LONG1; wider than 64 bits only in the legacy magic number: kept as bytes
      uint8_t n = u8();
      push(n > 8 ? str_node(str(n), Node::Bytes) : int_node(long_bytes(n)));
      break;
    }
    case 0x8b: push(int_node(long_bytes(le(4)))); break;  // LONG4
    case 'I':
    case 'L': push(text_int(line())); break;
    case 'G': {
      const uint64_t bits = sdk::read_uint(take(8), 8, /*big=*/true);
      auto v = node(Node::Float);
      std::memcpy(&v->f, &bits, 8);
      push(v);
      break;
    }
    case 'X':
    case 'T': push(str_node(str(le(4)), Node::Str)); break;  // T: py2 str, text in practice
    case 0x8c:
    case 'U': push(str_node(str(u8()), Node::Str)); break;
    case 0x8d: push(str_node(str(le(8)), Node::Str)); break;
    case 'B': push(str_node(str(le(4)), Node::Bytes)); break;
    case 'C': push(str_node(str(u8()), Node::Bytes)); break;
    case 0x8e: push(str_node(str(le(8)), Node::Bytes)); break;
    case 'V': push(str_node(line(), Node::Str)); break;  // UNICODE (raw text)
    case '}': push(node(Node::Dict)); break;
    case ']': push(node(Node::List)); break;
    case ')': push(node(Node::Tuple)); break;
    case 'd': {
      auto xs = pop_mark();
      if (xs.size() % 2) fail(path_, "malformed pickle (odd number of dict items)");
      auto d = node(Node::Dict);
      for (size_t k = 0; k < xs.size(); k += 2) set_item(d, xs[k], xs[k + 1]);
      push(d);
      break;
    }
    case 'l': push(sequence(Node::List, pop_mark())); break;
    case 't': push(sequence(Node::Tuple, pop_mark())); break;
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1..3
      size_t n = op - 0x84;
      need(n);
      std::vector<Value> xs(stack_.end() - n, stack_.end());
      stack_.resize(stack_.size() - n);
      push(sequence(Node::Tuple, std::move(xs)));
      break;
    }
    case 'q': memo_put(le(1)); break;
    case 'r': memo_put(le(4)); break;
    case 'p': memo_put(line_uint()); break;
    case 0x94: memo_put(memo_.size()); break;  // MEMOIZE
    case 'h': push(memo_get(le(1))); break;
    case 'j': push(memo_get(le(4))); break;
    case 'g': push(memo_get(line_uint())); break;
    case 'a': {
      auto x = pop();
      append(top(), x);
      break;
    }
    case 'e': {
      auto xs = pop_mark();
      for (auto& x : xs) append(top(), x);
      break;
    }
    case 's': {
      auto v = pop();
      auto k = pop();
      set_item(top(), k, v);
      break;
    }
    case 'u': {
      auto xs = pop_mark();
      if (xs.size() % 2) fail(path_, "malformed pickle (odd number of dict items)");
      for (size_t k = 0; k < xs.size(); k += 2) set_item(top(), xs[k], xs[k + 1]);
      break;
    }
    case '0':  // POP: like Python, an empty frame pops its mark
      if (stack_.size() > (marks_.empty() ? 0 : marks_.back()))
        stack_.pop_back();
      else
        pop_mark();
      break;
    case '1': pop_mark(); break;
    case '2': push(top()); break;
    case 'c': {
      auto mod = line();
      auto name = line();
      push(global(mod + "." + name));
      break;
    }
    case 0x93: {  // STACK_GLOBAL
      auto name = pop(), mod = pop();
      if (mod->kind != Node::Str || name->kind != Node::Str)
        fail(path_, "malformed pickle (STACK_GLOBAL of non-strings)");
      push(global(mod->s + "." + name->s));
      break;
    }
    case 'R':
    case 0x81: {
      auto args = pop();
      auto fn = pop();
      push(reduce(fn, args));
      break;
    }
    case 'b':
      pop();
      top();
      break;  // BUILD: object states carry nothing a tensor map needs
    case 'Q': push(persistent(pop())); break;
    case 'P': push(persistent(str_node(line(), Node::Str))); break;
    default: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "unsupported pickle opcode 0x%02x at byte %zu", op, consumed() - 1);
      fail(path_, buf);
    }
  }
}

// ---- raw input --------------------------------------------------------------------------

uint8_t Unpickler::u8() {
  if (p_ >= end_) fail(path_, "truncated pickle");
  return uint8_t(*p_++);
}

const char* Unpickler::take(uint64_t n) {
  if (uint64_t(end_ - p_) < n) fail(path_, "truncated pickle");
  const char* at = p_;
  p_ += n;
  return at;
}

uint64_t Unpickler::le(int n) { return sdk::read_uint(take(uint64_t(n)), n); }

int64_t Unpickler::long_bytes(uint64_t n) {
  if (n > 8) fail(path_, "integer wider than 64 bits");
  const char* b = take(n);
  uint64_t v = sdk::read_uint(b, int(n));
  if (n > 0 && n < 8 && (uint8_t(b[n - 1]) & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
  return int64_t(v);
}

std::string Unpickler::str(uint64_t n) {
  if (n > limits::kMaxStringBytes)
    fail_limit(path_, "pickled string too long", "kMaxStringBytes", limits::kMaxStringBytes);
  const char* at = take(n);  // checks n against what is left of the input first
  charge(n);
  return std::string(at, size_t(n));
}

std::string Unpickler::line() {
  const char* nl = static_cast<const char*>(std::memchr(p_, '\n', size_t(end_ - p_)));
  if (!nl) fail(path_, "truncated pickle");
  std::string s(p_, nl);
  p_ = nl + 1;
  return s;
}

uint64_t Unpickler::line_uint() {
  std::string s = line();
  uint64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size())
    fail(path_, "malformed pickle (bad memo key '" + excerpt(s) + "')");
  return v;
}

Value Unpickler::text_int(std::string s) {
  if (s == "00" || s == "01") {  // protocol 0 booleans
    auto v = node(Node::Bool);
    v->b = s == "01";
    return v;
  }
  std::string text = s;
  if (!s.empty() && s.back() == 'L') s.pop_back();
  int64_t i = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), i);
  if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size())
    fail(path_, "malformed or out-of-range integer '" + excerpt(text) + "' (64-bit integers only)");
  return int_node(i);
}

// ---- values -----------------------------------------------------------------------------

void Unpickler::charge(uint64_t bytes) {
  bytes_ += bytes;
  if (bytes_ > limits::kMaxPickleBytes)
    fail_limit(path_, "pickle values would take more memory than allowed", "kMaxPickleBytes", limits::kMaxPickleBytes);
}

Value Unpickler::node(Node::Kind k) {
  if (++values_ > limits::kMaxValues)
    fail_limit(path_, "pickle creates too many values", "kMaxValues", limits::kMaxValues);
  charge(160);
  auto v = std::make_shared<Node>();
  v->kind = k;
  return v;
}

Value Unpickler::int_node(int64_t i) {
  auto v = node(Node::Int);
  v->i = i;
  return v;
}

Value Unpickler::str_node(std::string s, Node::Kind k) {
  auto v = node(k);
  v->s = std::move(s);
  return v;
}

void Unpickler::adopt(Node& parent, const Value& child) {
  if (child.get() == &parent) fail(path_, "refusing a self-referential pickle (a container inside itself)");
  if (child->height >= limits::kMaxDepth) fail_limit(path_, "pickle nested too deeply", "kMaxDepth", limits::kMaxDepth);
  child->contained = true;
  parent.height = std::max(parent.height, child->height + 1);
}

Value Unpickler::sequence(Node::Kind k, std::vector<Value> xs) {
  auto v = node(k);
  for (auto& x : xs) adopt(*v, x);
  v->items = std::move(xs);
  return v;
}

void Unpickler::append(const Value& list, const Value& x) {
  if (list->kind != Node::List) fail(path_, "malformed pickle (append to a non-list)");
  if (list->contained)
    fail(path_, "refusing a pickle that grows a list already placed elsewhere (it could become self-referential)");
  if (list->items.size() >= limits::kMaxItems) fail_limit(path_, "list too long", "kMaxItems", limits::kMaxItems);
  adopt(*list, x);
  list->items.push_back(x);
}

void Unpickler::set_item(const Value& dict, const Value& k, const Value& v) {
  if (dict->kind != Node::Dict) fail(path_, "malformed pickle (setitem on a non-dict)");
  if (dict->contained)
    fail(path_, "refusing a pickle that grows a dict already placed elsewhere (it could become self-referential)");
  if (dict->entries.size() >= limits::kMaxItems) fail_limit(path_, "dict too large", "kMaxItems", limits::kMaxItems);
  adopt(*dict, k);
  adopt(*dict, v);
  dict->entries.emplace_back(k, v);
}

// ---- stack, marks, memo -----------------------------------------------------------------

void Unpickler::push(Value v) {
  if (stack_.size() >= limits::kMaxItems) fail_limit(path_, "pickle stack too deep", "kMaxItems", limits::kMaxItems);
  stack_.push_back(std::move(v));
}

void Unpickler::need(size_t n) {
  // Values below the innermost mark belong to an enclosing frame (as in Python).
  if (stack_.size() - (marks_.empty() ? 0 : marks_.back()) < n) fail(path_, "malformed pickle (stack underflow)");
}

Value Unpickler::pop() {
  need(1);
  Value v = std::move(stack_.back());
  stack_.pop_back();
  return v;
}

const Value& Unpickler::top() {
  need(1);
  return stack_.back();
}

void Unpickler::mark() {
  if (marks_.size() >= limits::kMaxDepth)
    fail_limit(path_, "pickle marks nested too deeply", "kMaxDepth", limits::kMaxDepth);
  marks_.push_back(stack_.size());
}

std::vector<Value> Unpickler::pop_mark() {
  if (marks_.empty()) fail(path_, "malformed pickle (no mark)");
  size_t k = marks_.back();
  marks_.pop_back();
  std::vector<Value> xs(std::make_move_iterator(stack_.begin() + std::ptrdiff_t(k)),
                        std::make_move_iterator(stack_.end()));
  stack_.resize(k);
  return xs;
}

void Unpickler::memo_put(uint64_t key) {
  if (memo_.size() >= limits::kMaxValues && !memo_.count(key))
    fail_limit(path_, "pickle memo too large", "kMaxValues", limits::kMaxValues);
  memo_[key] = top();
}

Value Unpickler::memo_get(uint64_t key) {
  auto it = memo_.find(key);
  if (it == memo_.end()) fail(path_, "malformed pickle (unknown memo entry)");
  return it->second;
}

// ---- interpretation ---------------------------------------------------------------------

int64_t Unpickler::as_int(const Value& v, const char* what) {
  if (v->kind != Node::Int) fail(path_, std::string("expected an integer for ") + what);
  return v->i;
}

std::vector<int64_t> Unpickler::int_tuple(const Value& v, const char* what) {
  if (v->kind != Node::Tuple && v->kind != Node::List) fail(path_, std::string("expected a tuple for ") + what);
  if (v->items.size() > limits::kMaxTensorDims)
    fail_limit(path_, std::string("too many dimensions in ") + what, "kMaxTensorDims", limits::kMaxTensorDims);
  std::vector<int64_t> out;
  for (auto& x : v->items) out.push_back(as_int(x, what));
  return out;
}

// The equivalent of torch.load(weights_only=True): only these names may appear at all.
Value Unpickler::global(const std::string& name) {
  static const char* const allowed[] = {"collections.OrderedDict",
                                        "torch._utils._rebuild_tensor_v2",
                                        "torch._utils._rebuild_tensor",
                                        "torch._utils._rebuild_parameter",
                                        "torch._utils._rebuild_parameter_with_state",
                                        "_codecs.encode",
                                        "torch.device",
                                        "builtins.dict",
                                        "__builtin__.dict"};
  bool ok = std::find(std::begin(allowed), std::end(allowed), name) != std::end(allowed);
  if (!ok && name.rfind("torch.", 0) == 0 && name.size() > 13 && name.compare(name.size() - 7, 7, "Storage") == 0)
    ok = name.find('.', 6) == std::string::npos;  // torch.FloatStorage and friends
  if (!ok)
    fail(path_, "refusing to load: the pickle references '" + excerpt(name, 200) +
                    "', which is not a tensor, storage or dict");
  return str_node(name, Node::Global);
}

Value Unpickler::persistent(const Value& pid) {
  // ('storage', <StorageType global>, key, location, numel[, view_metadata])
  auto& it = pid->items;
  if (pid->kind != Node::Tuple || it.size() < 5 || it[0]->kind != Node::Str || it[0]->s != "storage" ||
      it[1]->kind != Node::Global || (it[2]->kind != Node::Str && it[2]->kind != Node::Int))
    fail(path_, "unsupported persistent id (not a tensor storage)");
  std::string key = it[2]->kind == Node::Int ? std::to_string(it[2]->i) : it[2]->s;
  at::ScalarType dtype = storage_dtype(it[1]->s, path_);
  int64_t numel = as_int(it[4], "storage size");
  if (numel < 0) fail(path_, "storage " + excerpt(key) + " has a negative size");
  auto v = node(Node::Storage);
  v->tensor = loader_(key, dtype, numel);
  if (it.size() >= 6 && it[5]->kind == Node::Tuple && it[5]->items.size() == 3) {
    // Legacy view of a larger storage: (view_key, offset, size).
    int64_t offset = as_int(it[5]->items[1], "view offset"), size = as_int(it[5]->items[2], "view size"), end = 0;
    if (offset < 0 || size < 0 || __builtin_add_overflow(offset, size, &end) || end > v->tensor.numel())
      fail(path_, "storage view " + excerpt(key) + " extends past its storage");
    v->tensor = v->tensor.narrow(0, offset, size);
  }
  return v;
}

Value Unpickler::rebuild_tensor(const std::vector<Value>& a) {
  // (storage, storage_offset, size, stride, ...)
  if (a.size() < 4 || a[0]->kind != Node::Storage) fail(path_, "malformed tensor record");
  const at::Tensor& storage = a[0]->tensor;
  int64_t offset = as_int(a[1], "storage offset");
  auto size = int_tuple(a[2], "tensor size");
  auto stride = int_tuple(a[3], "tensor stride");
  if (stride.size() != size.size())
    fail(path_, "tensor record with " + std::to_string(size.size()) + " sizes but " + std::to_string(stride.size()) +
                    " strides");
  if (offset < 0) fail(path_, "tensor with a negative storage offset");
  // numel and its byte count must fit int64 (LibTorch computes them unchecked); the last
  // element addressed, offset + sum (size-1)*stride, must lie inside the storage.
  int64_t numel = 1, nbytes = 0, last = offset;
  for (size_t d = 0; d < size.size(); ++d) {
    if (size[d] < 0 || stride[d] < 0) fail(path_, "tensor with a negative size or stride");
    if (__builtin_mul_overflow(numel, size[d], &numel)) fail(path_, "tensor element count overflows 64 bits");
  }
  if (__builtin_mul_overflow(numel, int64_t(storage.element_size()), &nbytes))
    fail(path_, "tensor byte count overflows 64 bits");
  if (numel > 0) {
    for (size_t d = 0; d < size.size(); ++d) {
      int64_t span = 0;
      if (__builtin_mul_overflow(size[d] - 1, stride[d], &span) || __builtin_add_overflow(last, span, &last))
        fail(path_, "tensor extends past its storage (offset arithmetic overflows)");
    }
    if (last >= storage.numel()) fail(path_, "tensor extends past its storage");
  } else if (offset > storage.numel()) {
    fail(path_, "empty tensor with a storage offset past its storage");
  }
  auto v = node(Node::Tensor);
  // A legacy storage view starts inside its buffer: as_strided takes absolute offsets.
  v->tensor = storage.as_strided(size, stride, storage.storage_offset() + offset);
  return v;
}

Value Unpickler::reduce(const Value& fn, const Value& args) {
  if (fn->kind != Node::Global) fail(path_, "malformed pickle (call of a non-global)");
  if (args->kind != Node::Tuple) fail(path_, "malformed pickle (call arguments are not a tuple)");
  const std::string& g = fn->s;
  auto& a = args->items;
  if (g == "torch._utils._rebuild_tensor_v2" || g == "torch._utils._rebuild_tensor") return rebuild_tensor(a);
  if (g == "torch._utils._rebuild_parameter" || g == "torch._utils._rebuild_parameter_with_state") {
    if (a.empty() || a[0]->kind != Node::Tensor) fail(path_, "malformed parameter record");
    return a[0];
  }
  if (g == "collections.OrderedDict" || g == "builtins.dict" || g == "__builtin__.dict") {
    auto d = node(Node::Dict);
    if (!a.empty() && a[0]->kind == Node::List)
      for (auto& kv : a[0]->items)
        if (kv->kind == Node::Tuple && kv->items.size() == 2) set_item(d, kv->items[0], kv->items[1]);
    return d;
  }
  if (g == "_codecs.encode" && !a.empty() && a[0]->kind == Node::Str) return str_node(a[0]->s, Node::Bytes);
  if (g == "torch.device" && !a.empty()) return a[0];
  fail(path_, "refusing to call '" + g + "'");
}

}  // namespace detail
}  // namespace ckpt
}  // namespace sinsr
