// PyTorch checkpoint files without Python: a pickle reader that builds values but never
// calls anything (only an allowlist of globals may appear; the torch rebuild functions are
// interpreted, not called), the zip and legacy containers, safetensors, and a pickle writer.
#include <sinsr/checkpoint.hpp>
#include <sinsr/sdk.hpp>

#include <caffe2/serialize/inline_container.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <unordered_map>

#include <unistd.h>

namespace sinsr {
namespace ckpt {
namespace {

using sdk::Error;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(SINSR_ERR_FORMAT, path + ": " + what);
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(SINSR_ERR_IO, path + ": cannot open for reading");
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw Error(SINSR_ERR_IO, path + ": read error");
  return buf.str();
}

// ---- pickle values ------------------------------------------------------------------

struct Node;
using Value = std::shared_ptr<Node>;

struct Node {
  enum Kind { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Tensor, Global, Storage, Object, Mark };
  Kind kind = None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                                  // Str, Bytes; Global/Object: "module.name"
  std::vector<Value> items;                       // Tuple, List; Object: reduce arguments
  std::vector<std::pair<Value, Value>> entries;   // Dict
  at::Tensor tensor;                              // Tensor, Storage (1-D, storage dtype)
};

Value make(Node::Kind k) {
  auto v = std::make_shared<Node>();
  v->kind = k;
  return v;
}
Value make_int(int64_t i) {
  auto v = make(Node::Int);
  v->i = i;
  return v;
}
Value make_str(std::string s, Node::Kind k = Node::Str) {
  auto v = make(k);
  v->s = std::move(s);
  return v;
}

at::ScalarType storage_dtype(const std::string& global) {
  static const std::map<std::string, at::ScalarType> types = {
      {"torch.FloatStorage", at::kFloat},   {"torch.DoubleStorage", at::kDouble},
      {"torch.HalfStorage", at::kHalf},     {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},     {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},     {"torch.BoolStorage", at::kBool},
      {"torch.UntypedStorage", at::kByte},
  };
  auto it = types.find(global);
  if (it == types.end()) throw std::runtime_error("unsupported storage type " + global);
  return it->second;
}

// Supplies the bytes behind a persistent storage id.
using StorageLoader = std::function<at::Tensor(const std::string& key, at::ScalarType dtype, int64_t numel)>;

class Unpickler {
 public:
  Unpickler(const std::string& path, const char* data, size_t size, StorageLoader loader)
      : path_(path), p_(data), end_(data + size), loader_(std::move(loader)) {}

  size_t consumed() const { return size_t(p_ - begin_()); }

  Value run() {
    while (true) {
      uint8_t op = u8();
      switch (op) {
        case 0x80: u8(); break;                       // PROTO
        case 0x95: take(8); break;                    // FRAME
        case '.': return pop();                       // STOP
        case '(': push(make(Node::Mark)); break;      // MARK
        case 'N': push(make(Node::None)); break;
        case 0x88: case 0x89: { auto v = make(Node::Bool); v->b = op == 0x88; push(v); break; }
        case 'J': push(make_int(int32_t(le(4)))); break;
        case 'K': push(make_int(int64_t(le(1)))); break;
        case 'M': push(make_int(int64_t(le(2)))); break;
        case 0x8a: {                                            // LONG1
          uint8_t n = u8();
          // Wider than 64 bits (only the legacy magic number): keep the raw bytes.
          push(n > 8 ? make_str(str(n), Node::Bytes) : make_int(long_bytes(n)));
          break;
        }
        case 0x8b: push(make_int(long_bytes(le(4)))); break;  // LONG4
        case 'I': case 'L': push(text_int(line())); break;
        case 'G': {
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | u8();
          auto v = make(Node::Float);
          std::memcpy(&v->f, &bits, 8);
          push(v);
          break;
        }
        case 'X': push(make_str(str(le(4)))); break;
        case 0x8c: push(make_str(str(u8()))); break;
        case 0x8d: push(make_str(str(le(8)))); break;
        case 'T': push(make_str(str(le(4)))); break;   // py2 str: text in practice
        case 'U': push(make_str(str(u8()))); break;
        case 'B': push(make_str(str(le(4)), Node::Bytes)); break;
        case 'C': push(make_str(str(u8()), Node::Bytes)); break;
        case 0x8e: push(make_str(str(le(8)), Node::Bytes)); break;
        case 'V': push(make_str(line())); break;        // UNICODE (raw text)
        case '}': push(make(Node::Dict)); break;
        case ']': push(make(Node::List)); break;
        case ')': push(make(Node::Tuple)); break;
        case 'd': { auto v = make(Node::Dict); auto xs = since_mark(); pair_into(v, xs); push(v); break; }
        case 'l': { auto v = make(Node::List); v->items = since_mark(); push(v); break; }
        case 't': { auto v = make(Node::Tuple); v->items = since_mark(); push(v); break; }
        case 0x85: case 0x86: case 0x87: {
          size_t n = op - 0x84;
          auto v = make(Node::Tuple);
          need(n);
          v->items.assign(stack_.end() - n, stack_.end());
          stack_.resize(stack_.size() - n);
          push(v);
          break;
        }
        case 'q': memo_[le(1)] = top(); break;
        case 'r': memo_[le(4)] = top(); break;
        case 'p': memo_[std::stoull(line())] = top(); break;
        case 0x94: memo_[memo_.size()] = top(); break;  // MEMOIZE
        case 'h': push(memo(le(1))); break;
        case 'j': push(memo(le(4))); break;
        case 'g': push(memo(std::stoull(line()))); break;
        case 'a': { auto x = pop(); list_of(top())->items.push_back(x); break; }
        case 'e': { auto xs = since_mark(); auto l = list_of(top()); l->items.insert(l->items.end(), xs.begin(), xs.end()); break; }
        case 's': { auto v = pop(); auto k = pop(); dict_of(top())->entries.emplace_back(k, v); break; }
        case 'u': { auto xs = since_mark(); pair_into(dict_of(top()), xs); break; }
        case '0': pop(); break;
        case '1': since_mark(); break;
        case '2': push(top()); break;
        case 'c': { auto mod = line(); auto name = line(); push(global(mod + "." + name)); break; }
        case 0x93: {                                   // STACK_GLOBAL
          auto name = pop(), mod = pop();
          push(global(mod->s + "." + name->s));
          break;
        }
        case 'R': case 0x81: { auto args = pop(); auto fn = pop(); push(reduce(fn, args)); break; }
        case 'b': { auto state = pop(); build(top(), state); break; }
        case 'Q': push(persistent(pop())); break;
        case 'P': push(persistent(make_str(line()))); break;
        default: {
          char buf[64];
          std::snprintf(buf, sizeof buf, "unsupported pickle opcode 0x%02x at byte %zu", op, size_t(p_ - begin_()) - 1);
          fail(path_, buf);
        }
      }
    }
  }

 private:
  const char* begin_() const { return end_ - size_; }

  uint8_t u8() {
    if (p_ >= end_) fail(path_, "truncated pickle");
    return uint8_t(*p_++);
  }
  const char* take(uint64_t n) {
    if (uint64_t(end_ - p_) < n) fail(path_, "truncated pickle");
    const char* at = p_;
    p_ += n;
    return at;
  }
  uint64_t le(int n) {
    const char* b = take(n);
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | uint8_t(b[k]);
    return v;
  }
  int64_t long_bytes(uint64_t n) {
    if (n > 8) fail(path_, "integer wider than 64 bits");
    const char* b = take(n);
    uint64_t v = 0;
    for (int k = int(n) - 1; k >= 0; --k) v = (v << 8) | uint8_t(b[k]);
    if (n > 0 && n < 8 && (uint8_t(b[n - 1]) & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
    return int64_t(v);
  }
  std::string str(uint64_t n) { return std::string(take(n), n); }
  std::string line() {
    const char* nl = static_cast<const char*>(std::memchr(p_, '\n', end_ - p_));
    if (!nl) fail(path_, "truncated pickle");
    std::string s(p_, nl);
    p_ = nl + 1;
    return s;
  }
  Value text_int(const std::string& s) {
    if (s == "00" || s == "01") {
      auto v = make(Node::Bool);
      v->b = s == "01";
      return v;
    }
    std::string digits = (!s.empty() && s.back() == 'L') ? s.substr(0, s.size() - 1) : s;
    return make_int(std::stoll(digits));
  }

  void push(Value v) { stack_.push_back(std::move(v)); }
  void need(size_t n) {
    if (stack_.size() < n) fail(path_, "malformed pickle (stack underflow)");
  }
  Value pop() {
    need(1);
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value& top() {
    need(1);
    return stack_.back();
  }
  Value memo(uint64_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) fail(path_, "malformed pickle (unknown memo entry)");
    return it->second;
  }
  std::vector<Value> since_mark() {
    for (size_t k = stack_.size(); k-- > 0;) {
      if (stack_[k]->kind == Node::Mark) {
        std::vector<Value> xs(stack_.begin() + k + 1, stack_.end());
        stack_.resize(k);
        return xs;
      }
    }
    fail(path_, "malformed pickle (no mark)");
  }
  Node* list_of(const Value& v) {
    if (v->kind != Node::List && v->kind != Node::Object) fail(path_, "malformed pickle (append to a non-list)");
    return v.get();
  }
  Node* dict_of(const Value& v) {
    // Objects (e.g. unknown dict subclasses) keep their items too, so nothing is lost.
    if (v->kind != Node::Dict && v->kind != Node::Object) fail(path_, "malformed pickle (setitem on a non-dict)");
    return v.get();
  }
  void pair_into(Node* d, const std::vector<Value>& xs) {
    if (xs.size() % 2) fail(path_, "malformed pickle (odd number of dict items)");
    for (size_t k = 0; k < xs.size(); k += 2) d->entries.emplace_back(xs[k], xs[k + 1]);
  }
  void pair_into(const Value& d, const std::vector<Value>& xs) { pair_into(d.get(), xs); }

  int64_t as_int(const Value& v, const char* what) {
    if (v->kind != Node::Int) fail(path_, std::string("expected an integer for ") + what);
    return v->i;
  }
  std::vector<int64_t> int_tuple(const Value& v, const char* what) {
    if (v->kind != Node::Tuple && v->kind != Node::List) fail(path_, std::string("expected a tuple for ") + what);
    std::vector<int64_t> out;
    for (auto& x : v->items) out.push_back(as_int(x, what));
    return out;
  }

  // The equivalent of torch.load(weights_only=True): only these names may appear at all.
  Value global(const std::string& name) {
    static const char* const allowed[] = {
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state", "_codecs.encode",
        "torch.device", "builtins.dict", "__builtin__.dict"};
    bool ok = std::find(std::begin(allowed), std::end(allowed), name) != std::end(allowed);
    if (!ok && name.rfind("torch.", 0) == 0 && name.size() > 13 && name.compare(name.size() - 7, 7, "Storage") == 0)
      ok = name.find('.', 6) == std::string::npos;  // torch.FloatStorage and friends
    if (!ok) fail(path_, "refusing to load: the pickle references '" + name + "', which is not a tensor, storage or dict");
    return make_str(name, Node::Global);
  }

  Value persistent(const Value& pid) {
    // ('storage', <StorageType global>, key, location, numel[, view_metadata])
    if (pid->kind != Node::Tuple || pid->items.size() < 5 || pid->items[0]->s != "storage" ||
        pid->items[1]->kind != Node::Global)
      fail(path_, "unsupported persistent id (not a tensor storage)");
    auto& key = pid->items[2];
    std::string k = key->kind == Node::Int ? std::to_string(key->i) : key->s;
    at::ScalarType dtype;
    try {
      dtype = storage_dtype(pid->items[1]->s);
    } catch (const std::exception& e) {
      fail(path_, e.what());
    }
    auto v = make(Node::Storage);
    v->tensor = loader_(k, dtype, as_int(pid->items[4], "storage size"));
    if (pid->items.size() >= 6 && pid->items[5]->kind == Node::Tuple) {
      // Legacy view of a larger storage: (view_key, offset, size).
      auto& view = pid->items[5]->items;
      if (view.size() == 3) v->tensor = v->tensor.narrow(0, as_int(view[1], "view offset"), as_int(view[2], "view size"));
    }
    return v;
  }

  Value rebuild_tensor(const std::vector<Value>& a) {
    if (a.size() < 4 || a[0]->kind != Node::Storage) fail(path_, "malformed tensor record");
    int64_t offset = as_int(a[1], "storage offset");
    auto size = int_tuple(a[2], "tensor size");
    auto stride = int_tuple(a[3], "tensor stride");
    const at::Tensor& storage = a[0]->tensor;
    int64_t needed = 1;
    for (size_t d = 0; d < size.size(); ++d)
      if (size[d] == 0) needed = 0;
    if (needed) {
      int64_t last = offset;
      for (size_t d = 0; d < size.size(); ++d) last += (size[d] - 1) * stride[d];
      if (last >= storage.numel() || offset < 0) fail(path_, "tensor extends past its storage");
    }
    auto v = make(Node::Tensor);
    v->tensor = storage.as_strided(size, stride, offset);
    return v;
  }

  Value reduce(const Value& fn, const Value& args) {
    if (fn->kind != Node::Global) fail(path_, "malformed pickle (call of a non-global)");
    const std::string& g = fn->s;
    auto& a = args->items;
    if (g == "torch._utils._rebuild_tensor_v2" || g == "torch._utils._rebuild_tensor") return rebuild_tensor(a);
    if (g == "torch._utils._rebuild_parameter" || g == "torch._utils._rebuild_parameter_with_state") {
      if (a.empty() || a[0]->kind != Node::Tensor) fail(path_, "malformed parameter record");
      return a[0];
    }
    if (g == "collections.OrderedDict" || g == "builtins.dict" || g == "__builtin__.dict") {
      auto d = make(Node::Dict);
      if (!a.empty() && a[0]->kind == Node::List)
        for (auto& kv : a[0]->items)
          if (kv->kind == Node::Tuple && kv->items.size() == 2) d->entries.emplace_back(kv->items[0], kv->items[1]);
      return d;
    }
    if (g == "_codecs.encode" && !a.empty() && a[0]->kind == Node::Str) return make_str(a[0]->s, Node::Bytes);
    if (g == "torch.device" && !a.empty()) return a[0];
    fail(path_, "refusing to call '" + g + "'");
  }

  void build(const Value& target, const Value& state) {
    (void)target;  // OrderedDict._metadata and object states carry nothing a tensor map needs
    (void)state;
  }

  std::string path_;
  const char* p_;
  const char* end_;
  size_t size_ = size_t(end_ - p_);
  StorageLoader loader_;
  std::vector<Value> stack_;
  std::unordered_map<uint64_t, Value> memo_;
};

c10::IValue to_ivalue(const Value& v) {
  switch (v->kind) {
    case Node::None: return c10::IValue();
    case Node::Bool: return c10::IValue(v->b);
    case Node::Int: return c10::IValue(v->i);
    case Node::Float: return c10::IValue(v->f);
    case Node::Str: case Node::Bytes: return c10::IValue(v->s);
    case Node::Tensor: return c10::IValue(v->tensor);
    case Node::Storage: return c10::IValue(v->tensor);
    case Node::Tuple: {
      std::vector<c10::IValue> xs;
      for (auto& x : v->items) xs.push_back(to_ivalue(x));
      return c10::ivalue::Tuple::create(std::move(xs));
    }
    case Node::List: {
      c10::impl::GenericList l(c10::AnyType::get());
      for (auto& x : v->items) l.push_back(to_ivalue(x));
      return l;
    }
    case Node::Dict: {
      c10::impl::GenericDict d(c10::AnyType::get(), c10::AnyType::get());
      for (auto& kv : v->entries) d.insert_or_assign(to_ivalue(kv.first), to_ivalue(kv.second));
      return d;
    }
    case Node::Global: case Node::Object: return c10::IValue("<" + v->s + ">");
    case Node::Mark: break;
  }
  return c10::IValue();
}

// ---- containers -------------------------------------------------------------------------

at::Tensor bytes_to_storage(const char* data, size_t nbytes, at::ScalarType dtype, const std::string& path,
                            const std::string& key) {
  size_t elem = c10::elementSize(dtype);
  if (nbytes % elem) fail(path, "storage " + key + " has a size that is not a multiple of its element size");
  auto t = at::empty({int64_t(nbytes / elem)}, at::TensorOptions().dtype(dtype));
  if (nbytes) std::memcpy(t.data_ptr(), data, nbytes);
  return t;
}

Value read_zip(const std::string& path) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    std::map<std::string, at::Tensor> cache;
    auto loader = [&](const std::string& key, at::ScalarType dtype, int64_t) {
      auto it = cache.find(key);
      if (it != cache.end()) return it->second;
      std::string record = "data/" + key;
      if (!reader.hasRecord(record)) fail(path, "missing tensor record " + record);
      auto rec = reader.getRecord(record);
      auto t = bytes_to_storage(static_cast<const char*>(std::get<0>(rec).get()), std::get<1>(rec), dtype, path, key);
      cache[key] = t;
      return t;
    };
    if (!reader.hasRecord("data.pkl")) fail(path, "zip archive without data.pkl (not a torch.save file)");
    auto rec = reader.getRecord("data.pkl");
    Unpickler u(path, static_cast<const char*>(std::get<0>(rec).get()), std::get<1>(rec), loader);
    return u.run();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    fail(path, "unreadable zip checkpoint: " + msg.substr(0, msg.find('\n')));
  }
}

// Pre-1.6 torch.save: magic, protocol, sys_info, the object, storage keys, raw storages.
Value read_legacy(const std::string& path, const std::string& bytes) {
  size_t pos = 0;
  auto no_storage = [&](const std::string&, at::ScalarType, int64_t) -> at::Tensor {
    fail(path, "unexpected tensor in a legacy header");
  };
  auto next = [&](StorageLoader loader) {
    Unpickler u(path, bytes.data() + pos, bytes.size() - pos, std::move(loader));
    Value v = u.run();
    pos += u.consumed();
    return v;
  };
  Value magic = next(no_storage);
  static const char kMagic[] = "\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";  // 0x1950a86a20f9469cfc6c, LE
  if (magic->kind != Node::Bytes || magic->s != std::string(kMagic, 10))
    fail(path, "not a PyTorch checkpoint (neither zip nor legacy torch.save format)");
  next(no_storage);  // protocol version
  next(no_storage);  // sys_info
  // The storages' bytes follow the object, so tensors are views of buffers filled afterwards.
  std::map<std::string, at::Tensor> storages;
  Value root = next([&](const std::string& key, at::ScalarType dtype, int64_t numel) {
    auto it = storages.find(key);
    if (it != storages.end()) return it->second;
    if (numel < 0) fail(path, "negative storage size");
    auto t = at::empty({numel}, at::TensorOptions().dtype(dtype));
    storages[key] = t;
    return t;
  });
  Value keys = next(no_storage);
  if (keys->kind != Node::List) fail(path, "legacy checkpoint without a storage key list");
  for (auto& k : keys->items) {
    std::string key = k->s;
    auto it = storages.find(key);
    if (it == storages.end()) fail(path, "storage " + key + " is listed but never used");
    if (bytes.size() - pos < 8) fail(path, "truncated storage " + key);
    int64_t numel = 0;
    std::memcpy(&numel, bytes.data() + pos, 8);
    pos += 8;
    at::Tensor& t = it->second;
    size_t nbytes = size_t(numel) * t.element_size();
    if (numel != t.numel() || bytes.size() - pos < nbytes) fail(path, "truncated or inconsistent storage " + key);
    std::memcpy(t.data_ptr(), bytes.data() + pos, nbytes);
    pos += nbytes;
  }
  return root;
}

at::ScalarType safetensors_dtype(const std::string& name, const std::string& path) {
  static const std::map<std::string, at::ScalarType> types = {
      {"F32", at::kFloat}, {"F64", at::kDouble}, {"F16", at::kHalf}, {"BF16", at::kBFloat16},
      {"I64", at::kLong},  {"I32", at::kInt},    {"I16", at::kShort}, {"I8", at::kChar},
      {"U8", at::kByte},   {"BOOL", at::kBool},
  };
  auto it = types.find(name);
  if (it == types.end()) fail(path, "unsupported safetensors dtype " + name);
  return it->second;
}

c10::IValue read_safetensors(const std::string& path, const std::string& bytes) {
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  if (n > bytes.size() - 8) fail(path, "truncated safetensors header");
  sdk::json header;
  try {
    header = sdk::json::parse(bytes.substr(8, n));
  } catch (const std::exception& e) {
    fail(path, std::string("bad safetensors header: ") + e.what());
  }
  const char* data = bytes.data() + 8 + n;
  size_t data_size = bytes.size() - 8 - n;
  // The header is a JSON object (unordered here); order tensors by their offsets = file order.
  std::vector<std::pair<uint64_t, std::string>> order;
  for (auto& [name, info] : header.items())
    if (name != "__metadata__") order.emplace_back(info.at("data_offsets").at(0).get<uint64_t>(), name);
  std::sort(order.begin(), order.end());
  c10::impl::GenericDict d(c10::StringType::get(), c10::AnyType::get());
  for (auto& [offset, name] : order) {
    auto& info = header[name];
    auto dtype = safetensors_dtype(info.at("dtype").get<std::string>(), path);
    auto shape = info.at("shape").get<std::vector<int64_t>>();
    uint64_t b = info["data_offsets"][0], e = info["data_offsets"][1];
    int64_t numel = 1;
    for (auto s : shape) numel *= s;
    if (e < b || e > data_size || (e - b) != uint64_t(numel) * c10::elementSize(dtype))
      fail(path, "tensor " + name + " has inconsistent offsets");
    auto t = at::empty(shape, at::TensorOptions().dtype(dtype));
    if (e > b) std::memcpy(t.data_ptr(), data + b, e - b);
    d.insert(name, t);
  }
  return d;
}

// ---- writing ------------------------------------------------------------------------------

// Protocol-2 pickle of dicts / lists / tuples / numbers / strings / tensors, in the shape
// torch.save produces, so Python's torch.load (also weights_only) reads it.
class Pickler {
 public:
  std::string out;
  std::vector<at::Tensor> storages;

  void dump(const c10::IValue& v) {
    op(0x80);
    op(2);
    value(v);
    op('.');
  }

 private:
  void op(uint8_t c) { out.push_back(char(c)); }
  void le(uint64_t v, int n) {
    for (int k = 0; k < n; ++k) out.push_back(char((v >> (8 * k)) & 0xff));
  }
  void text(const std::string& s) {
    op('X');
    le(s.size(), 4);
    out += s;
  }
  void global(const std::string& mod, const std::string& name) {
    op('c');
    out += mod + "\n" + name + "\n";
  }
  void integer(int64_t i) {
    if (i >= 0 && i < 256) {
      op('K');
      le(uint64_t(i), 1);
    } else if (i >= INT32_MIN && i <= INT32_MAX) {
      op('J');
      le(uint64_t(uint32_t(int32_t(i))), 4);
    } else {
      op(0x8a);
      op(8);
      le(uint64_t(i), 8);
    }
  }
  void int_tuple(at::IntArrayRef xs) {
    op('(');
    for (auto x : xs) integer(x);
    op('t');
  }
  static const char* storage_name(at::ScalarType t) {
    switch (t) {
      case at::kFloat: return "FloatStorage";
      case at::kDouble: return "DoubleStorage";
      case at::kHalf: return "HalfStorage";
      case at::kBFloat16: return "BFloat16Storage";
      case at::kLong: return "LongStorage";
      case at::kInt: return "IntStorage";
      case at::kShort: return "ShortStorage";
      case at::kChar: return "CharStorage";
      case at::kByte: return "ByteStorage";
      case at::kBool: return "BoolStorage";
      default: throw Error(SINSR_ERR_INVALID_ARGUMENT, std::string("cannot save tensors of type ") + c10::toString(t));
    }
  }
  void tensor(const at::Tensor& t0) {
    at::Tensor t = t0.detach().to(at::kCPU).contiguous();
    std::string key = std::to_string(storages.size());
    storages.push_back(t);
    global("torch._utils", "_rebuild_tensor_v2");
    op('(');
    // persistent id ('storage', torch.XStorage, key, 'cpu', numel)
    op('(');
    text("storage");
    global("torch", storage_name(t.scalar_type()));
    text(key);
    text("cpu");
    integer(t.numel());
    op('t');
    op('Q');
    integer(0);
    int_tuple(t.sizes());
    int_tuple(t.strides());
    op(0x89);
    global("collections", "OrderedDict");
    op(')');
    op('R');
    op('t');
    op('R');
  }
  void value(const c10::IValue& v) {
    if (v.isNone()) op('N');
    else if (v.isBool()) op(v.toBool() ? 0x88 : 0x89);
    else if (v.isInt()) integer(v.toInt());
    else if (v.isDouble()) {
      op('G');
      double d = v.toDouble();
      uint64_t bits;
      std::memcpy(&bits, &d, 8);
      for (int k = 7; k >= 0; --k) out.push_back(char((bits >> (8 * k)) & 0xff));
    } else if (v.isString()) text(v.toStringRef());
    else if (v.isTensor()) tensor(v.toTensor());
    else if (v.isTuple()) {
      op('(');
      for (auto& x : v.toTupleRef().elements()) value(x);
      op('t');
    } else if (v.isList()) {
      op(']');
      op('(');
      for (const c10::IValue x : v.toListRef()) value(x);
      op('e');
    } else if (v.isGenericDict()) {
      op('}');
      op('(');
      for (auto& kv : v.toGenericDict()) {
        value(kv.key());
        value(kv.value());
      }
      op('u');
    } else {
      throw Error(SINSR_ERR_INVALID_ARGUMENT, "cannot save a value of type " + v.tagKind());
    }
  }
};

// Temporary file in the same directory, fsync, rename: a crash never leaves a torn file.
void write_atomic(const std::string& path, const c10::IValue& value) {
  Pickler p;
  p.dump(value);
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error(SINSR_ERR_IO, path + ": cannot open " + tmp + " for writing");
    bool ok = true;
    {
      caffe2::serialize::PyTorchStreamWriter writer([&](const void* buf, size_t n) -> size_t {
        f.write(static_cast<const char*>(buf), std::streamsize(n));
        if (!f) ok = false;
        return ok ? n : 0;
      });
      writer.writeRecord("data.pkl", p.out.data(), p.out.size());
      for (size_t k = 0; k < p.storages.size(); ++k) {
        const auto& t = p.storages[k];
        writer.writeRecord("data/" + std::to_string(k), t.data_ptr(), t.nbytes());
      }
      writer.writeEndOfFile();
    }
    f.flush();
    if (!f || !ok) {
      f.close();
      std::remove(tmp.c_str());
      throw Error(SINSR_ERR_IO, path + ": write failed (disk full?)");
    }
  }
  if (FILE* fh = std::fopen(tmp.c_str(), "rb")) {
    ::fsync(fileno(fh));
    std::fclose(fh);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(SINSR_ERR_IO, path + ": cannot replace the file");
  }
}

bool all_tensors(const c10::impl::GenericDict& d) {
  if (d.size() == 0) return false;
  for (auto& kv : d)
    if (!kv.key().isString() || !kv.value().isTensor()) return false;
  return true;
}

std::string strip_prefixes(std::string name) {
  for (const char* prefix : {"module.", "_orig_mod."})
    while (name.rfind(prefix, 0) == 0) name = name.substr(std::strlen(prefix));
  return name;
}

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

}  // namespace
}  // namespace ckpt
}  // namespace sinsr

namespace sinsr {
namespace ckpt {

c10::IValue read_file(const std::string& path) {
  std::string bytes = read_bytes(path);
  if (bytes.size() >= 4 && bytes.compare(0, 4, "PK\x03\x04", 4) == 0) return to_ivalue(read_zip(path));
  if (bytes.size() >= 2 && uint8_t(bytes[0]) == 0x80) return to_ivalue(read_legacy(path, bytes));
  if (bytes.size() >= 10 && bytes[8] == '{') return read_safetensors(path, bytes);
  if (bytes.empty()) fail(path, "empty file");
  fail(path, "not a PyTorch checkpoint (expected a zip or legacy torch.save file, or safetensors)");
}

StateDict read_state_dict(const std::string& path, const std::string& key) {
  c10::IValue root = read_file(path);
  if (!root.isGenericDict()) fail(path, "top level is not a dict");
  auto dict = root.toGenericDict();
  auto lookup = [&](const std::string& k) -> c10::optional<c10::impl::GenericDict> {
    auto it = dict.find(c10::IValue(k));
    if (it == dict.end() || !it->value().isGenericDict()) return c10::nullopt;
    return it->value().toGenericDict();
  };
  c10::optional<c10::impl::GenericDict> chosen;
  if (!key.empty()) {
    chosen = lookup(key);
    if (!chosen) fail(path, "no dict under key '" + key + "'");
  } else if (all_tensors(dict)) {
    chosen = dict;
  } else {
    // Where training scripts usually nest the weights (ResShift/SinSR use "state_dict").
    for (const char* k : {"state_dict", "params_ema", "ema", "model", "model_state_dict", "net", "params", "network"}) {
      if ((chosen = lookup(k)) && all_tensors(*chosen)) break;
      chosen = c10::nullopt;
    }
    if (!chosen) {
      std::string keys;
      for (auto& kv : dict) keys += (keys.empty() ? "" : ", ") + (kv.key().isString() ? kv.key().toStringRef() : "?");
      fail(path, "no state dict found (top-level keys: " + keys + "); pass the key explicitly");
    }
  }
  StateDict out;
  for (auto& kv : *chosen) {
    if (!kv.key().isString() || !kv.value().isTensor())
      fail(path, "state dict entry " + (kv.key().isString() ? kv.key().toStringRef() : std::string("?")) + " is not a tensor");
    out.emplace_back(strip_prefixes(kv.key().toStringRef()), kv.value().toTensor());
  }
  return out;
}

namespace {
// PyTorch's order: a module's own parameters, then its buffers, then its children (pre-order).
// Walks children directly: named_modules() needs the root to be held by a shared_ptr.
void collect(const torch::nn::Module& module, const std::string& prefix, StateDict& out) {
  for (auto& p : module.named_parameters(/*recurse=*/false)) out.emplace_back(prefix + p.key(), p.value());
  for (auto& b : module.named_buffers(/*recurse=*/false)) out.emplace_back(prefix + b.key(), b.value());
  for (auto& c : module.named_children()) collect(*c.value(), prefix + c.key() + ".", out);
}
}  // namespace

StateDict state_of(const torch::nn::Module& module) {
  StateDict out;
  collect(module, "", out);
  return out;
}

LoadReport load_into(torch::nn::Module& module, const StateDict& state, bool strict) {
  LoadReport report;
  std::map<std::string, at::Tensor> mine;
  for (auto& kv : state_of(module)) mine.emplace(kv.first, kv.second);
  std::map<std::string, bool> seen;
  std::vector<std::pair<at::Tensor, at::Tensor>> copies;
  for (auto& [name, src] : state) {
    auto it = mine.find(name);
    if (it == mine.end()) {
      report.unexpected.push_back(name);
      continue;
    }
    seen[name] = true;
    if (it->second.sizes() != src.sizes()) {
      report.mismatched.push_back(name + ": file " + shape_str(src.sizes()) + " vs module " + shape_str(it->second.sizes()));
      continue;
    }
    copies.emplace_back(it->second, src);
  }
  for (auto& kv : state_of(module))
    if (!seen.count(kv.first)) report.missing.push_back(kv.first);
  bool bad = !report.missing.empty() || !report.unexpected.empty() || !report.mismatched.empty();
  if (strict && bad) {
    std::ostringstream msg;
    msg << "state dict does not match the network";
    auto list = [&](const char* what, const std::vector<std::string>& xs) {
      if (xs.empty()) return;
      msg << "; " << xs.size() << " " << what << ": ";
      for (size_t k = 0; k < xs.size() && k < 8; ++k) msg << (k ? ", " : "") << xs[k];
      if (xs.size() > 8) msg << ", ...";
    };
    list("missing", report.missing);
    list("unexpected", report.unexpected);
    list("with another shape", report.mismatched);
    throw Error(SINSR_ERR_FORMAT, msg.str());
  }
  // Copy only after the whole file checked out, so a failed strict load changes nothing.
  at::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src);
  return report;
}

void save_state_dict(const std::string& path, const StateDict& state) {
  c10::impl::GenericDict d(c10::StringType::get(), c10::AnyType::get());
  for (auto& [name, t] : state) d.insert(name, t);
  write_atomic(path, d);
}

void save_file(const std::string& path, const c10::IValue& value) { write_atomic(path, value); }

}  // namespace ckpt
}  // namespace sinsr
