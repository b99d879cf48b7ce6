// Pickle values: errors, the iterative teardown of nodes, and the conversion to IValues,
// all without recursion, so no file can exhaust the stack whatever it nests.
#include "checkpoint_internal.hpp"

#include <unordered_set>

namespace sinsr {
namespace ckpt {
namespace detail {

using sdk::Error;

void fail(const std::string& path, const std::string& what) { throw Error(SINSR_ERR_FORMAT, path + ": " + what); }

void fail_limit(const std::string& path, const std::string& what, const char* name, uint64_t value) {
  fail(path, what + " (limit sinsr::ckpt::limits::" + name + " = " + std::to_string(value) + ")");
}

std::string excerpt(const std::string& s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return s.size() > max ? out + "..." : out;
}

Node::~Node() {
  if (items.empty() && entries.empty()) return;
  // Children this node alone owns are emptied into `work` before they die, so every
  // destructor below finds its node childless and returns at once.
  std::vector<Value> work;
  auto strip = [&work](Node& n) {
    for (auto& x : n.items) work.push_back(std::move(x));
    for (auto& kv : n.entries) {
      work.push_back(std::move(kv.first));
      work.push_back(std::move(kv.second));
    }
    n.items.clear();
    n.entries.clear();
  };
  strip(*this);
  while (!work.empty()) {
    Value v = std::move(work.back());
    work.pop_back();
    if (v && v.use_count() == 1) strip(*v);
  }
}

namespace {

size_t child_count(const Node& n) {
  if (n.kind == Node::Tuple || n.kind == Node::List) return n.items.size();
  if (n.kind == Node::Dict) return 2 * n.entries.size();
  return 0;
}

const Node* child(const Node& n, size_t k) {
  if (n.kind == Node::Dict) return (k % 2 ? n.entries[k / 2].second : n.entries[k / 2].first).get();
  return n.items[k].get();
}

}  // namespace

// Post-order over an explicit stack; `done` converts each shared node once. The reader
// builds no cycles and nothing taller than kMaxDepth; the checks below only back that up.
c10::IValue to_ivalue(const Value& root, const std::string& path) {
  std::unordered_map<const Node*, c10::IValue> done;
  std::unordered_set<const Node*> open;
  struct Frame {
    const Node* n;
    size_t next;
  };
  std::vector<Frame> stack{{root.get(), 0}};
  open.insert(root.get());
  auto get = [&](const Node* n) -> const c10::IValue& { return done.at(n); };
  while (!stack.empty()) {
    Frame& f = stack.back();
    const Node& n = *f.n;
    if (f.next < child_count(n)) {
      const Node* c = child(n, f.next++);
      if (done.count(c)) continue;
      if (open.count(c)) fail(path, "refusing a self-referential pickle");
      if (stack.size() > limits::kMaxDepth)
        fail_limit(path, "pickle nested too deeply", "kMaxDepth", limits::kMaxDepth);
      open.insert(c);
      stack.push_back({c, 0});
      continue;
    }
    c10::IValue out;
    switch (n.kind) {
      case Node::None: break;
      case Node::Bool: out = c10::IValue(n.b); break;
      case Node::Int: out = c10::IValue(n.i); break;
      case Node::Float: out = c10::IValue(n.f); break;
      case Node::Str:
      case Node::Bytes: out = c10::IValue(n.s); break;
      case Node::Tensor:
      case Node::Storage: out = c10::IValue(n.tensor); break;
      case Node::Global: out = c10::IValue("<" + n.s + ">"); break;
      case Node::Tuple: {
        std::vector<c10::IValue> xs;
        xs.reserve(n.items.size());
        for (auto& x : n.items) xs.push_back(get(x.get()));
        out = c10::ivalue::Tuple::create(std::move(xs));
        break;
      }
      case Node::List: {
        c10::impl::GenericList l(c10::AnyType::get());
        l.reserve(n.items.size());
        for (auto& x : n.items) l.push_back(get(x.get()));
        out = l;
        break;
      }
      case Node::Dict: {
        c10::impl::GenericDict d(c10::AnyType::get(), c10::AnyType::get());
        for (auto& kv : n.entries) {
          const c10::IValue& key = get(kv.first.get());
          // What c10's dict can hash; anything else would throw from inside LibTorch.
          if (!(key.isBool() || key.isInt() || key.isDouble() || key.isString() || key.isTensor()))
            fail(path, "dict key of unsupported type " + key.tagKind());
          d.insert_or_assign(key, get(kv.second.get()));
        }
        out = d;
        break;
      }
    }
    open.erase(f.n);
    done.emplace(f.n, std::move(out));
    stack.pop_back();
  }
  return done.at(root.get());
}

}  // namespace detail
}  // namespace ckpt
}  // namespace sinsr
