// The writer: a protocol-2 pickle in the shape torch.save produces, inside a zip written to a
// temporary file and renamed, so Python's torch.load (also weights_only) reads the result.
#include "checkpoint_internal.hpp"

#include <caffe2/serialize/inline_container.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <fcntl.h>
#include <unistd.h>

namespace sinsr {
namespace ckpt {
namespace detail {

using sdk::Error;

namespace {

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
    if (v.isNone())
      op('N');
    else if (v.isBool())
      op(v.toBool() ? 0x88 : 0x89);
    else if (v.isInt())
      integer(v.toInt());
    else if (v.isDouble()) {
      op('G');
      double d = v.toDouble();
      uint64_t bits;
      std::memcpy(&bits, &d, 8);
      for (int k = 7; k >= 0; --k) out.push_back(char((bits >> (8 * k)) & 0xff));
    } else if (v.isString())
      text(v.toStringRef());
    else if (v.isTensor())
      tensor(v.toTensor());
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

}  // namespace

// Temporary file in the same directory, fsync, rename: a crash never leaves a torn file, and
// the previous file stays whole until the new one is complete.
void write_atomic(const std::string& path, const c10::IValue& value) {
  Pickler p;
  p.dump(value);
  // pid + counter: two threads (or processes) saving the same path never share a temporary.
  static std::atomic<unsigned> counter{0};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  try {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error(SINSR_ERR_IO, path + ": cannot open " + tmp + " for writing");
    bool ok = true;
    {
      // A failed write is remembered, not reported to LibTorch's writer: it would throw, and
      // its destructor then finishes the archive and throws again, which terminates the process
      // (found by the disk-full test). The error is raised once the writer is gone.
      caffe2::serialize::PyTorchStreamWriter writer([&](const void* buf, size_t n) -> size_t {
        if (ok) f.write(static_cast<const char*>(buf), std::streamsize(n));
        if (!f) ok = false;
        return n;
      });
      writer.writeRecord("data.pkl", p.out.data(), p.out.size());
      for (size_t k = 0; k < p.storages.size(); ++k) {
        const auto& t = p.storages[k];
        writer.writeRecord("data/" + std::to_string(k), t.data_ptr(), t.nbytes());
      }
      writer.writeEndOfFile();
    }
    f.flush();
    if (!f || !ok) throw Error(SINSR_ERR_IO, path + ": write failed (disk full?)");
  } catch (const Error&) {
    std::remove(tmp.c_str());
    throw;
  } catch (const std::exception& e) {  // LibTorch's writer reports a failed write as c10::Error
    std::remove(tmp.c_str());
    throw Error(SINSR_ERR_IO, path + ": write failed: " + e.what());
  }
  if (FILE* fh = std::fopen(tmp.c_str(), "rb")) {
    ::fsync(fileno(fh));
    std::fclose(fh);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(SINSR_ERR_IO, path + ": cannot replace the file");
  }
  // The rename itself reaches the disk with the folder's entry.
  const std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/') + 1);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace detail
}  // namespace ckpt
}  // namespace sinsr
