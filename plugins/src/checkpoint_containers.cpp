// The containers around the pickle: zip (torch.save since 1.6), the legacy torch.save
// stream, and safetensors. Sizes the file declares are checked against the bytes actually
// there, and against sinsr::ckpt::limits, before any buffer is allocated for them.
#include "checkpoint_internal.hpp"

#include <sinsr/config.hpp>

#include <caffe2/serialize/in_memory_adapter.h>
#include <caffe2/serialize/inline_container.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <tuple>

namespace sinsr {
namespace ckpt {
namespace detail {

using sdk::Error;

FileBytes::FileBytes(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(SINSR_ERR_IO, path + ": cannot open for reading (" + std::strerror(errno) + ")");
  struct stat st {};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  // Mapped, not read: weights stay in the page cache, which costs no fresh memory (see tensor()).
  // Populated read-only, then made writable: populating a writable private mapping would copy
  // every page at once.
  if (regular && st.st_size > 0) {
    const size_t n = size_t(st.st_size);
    void* m = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (m != MAP_FAILED && ::mprotect(m, n, PROT_READ | PROT_WRITE) != 0) {
      ::munmap(m, n);
      m = MAP_FAILED;
    }
    if (m != MAP_FAILED) {
      map_ = m;
      size_ = size_t(st.st_size);
      ::close(fd);
      return;
    }
  }
  // A pipe, an empty file, or a file system that cannot map: read it.
  char chunk[1 << 16];
  for (;;) {
    const ssize_t got = ::read(fd, chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const int err = errno;
      ::close(fd);
      throw Error(SINSR_ERR_IO, path + ": read error (" + std::strerror(err) + ")");
    }
    if (got == 0) break;
    read_.append(chunk, size_t(got));
  }
  ::close(fd);
}

FileBytes::~FileBytes() {
  if (map_) ::munmap(map_, size_);
}

std::string_view FileBytes::view() const {
  return map_ ? std::string_view(static_cast<const char*>(map_), size_) : std::string_view(read_);
}

namespace {

// Copies `nbytes` into the (already sized) tensor; an empty tensor may have no buffer at all.
void fill(at::Tensor& t, const char* src, size_t nbytes) {
  if (nbytes == 0) return;
  std::memcpy(t.data_ptr(), src, nbytes);
  // Any byte but 0 and 1 in a bool is undefined behaviour when read: normalize.
  if (t.scalar_type() == at::kBool) {
    auto* b = static_cast<uint8_t*>(t.data_ptr());
    for (size_t k = 0; k < nbytes; ++k) b[k] = b[k] != 0;
  }
}

// SINSR_NO_MMAP=1: every tensor a copy, for files that may be truncated in place while a run
// reads them (a mapped page of a truncated file faults with SIGBUS).
bool alias_allowed() {
  static const bool allowed = [] {
    const char* env = std::getenv("SINSR_NO_MMAP");
    return !env || !*env || std::strcmp(env, "0") == 0;
  }();
  return allowed;
}

}  // namespace

at::Tensor FileBytes::tensor(const char* p, size_t nbytes, at::IntArrayRef shape, at::ScalarType dtype) const {
  const size_t elem = c10::elementSize(dtype);
  // Bools are normalized (a copy); a misaligned element would be undefined behaviour to read.
  if (map_ && nbytes > 0 && dtype != at::kBool && reinterpret_cast<uintptr_t>(p) % elem == 0 && alias_allowed()) {
    std::shared_ptr<const FileBytes> keep = shared_from_this();
    return at::from_blob(
        const_cast<char*>(p), shape, [keep](void*) {}, at::TensorOptions().dtype(dtype));
  }
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
  fill(t, p, nbytes);
  return t;
}

namespace {

uint64_t rd(std::string_view z, uint64_t at, int n) { return sdk::read_uint(z.data() + at, n); }

// Walks the zip's central directory (the one miniz will use: the last end record, zip64 when
// its locator is there) and checks every record's declared size against the file, because
// PyTorchStreamReader allocates whatever a record declares before reading it.
struct ZipDirectory {
  std::string archive;                     // the first record's folder, as PyTorchStreamReader takes it
  std::map<std::string, uint64_t> stored;  // uncompressed records (full names) and their sizes
};

ZipDirectory check_zip_directory(const std::string& path, std::string_view z) {
  const uint64_t n = z.size();
  if (n < 22) fail(path, "unreadable zip checkpoint: truncated archive");
  uint64_t eocd = n;
  for (uint64_t k = n - 22 + 1, lo = n > 22 + 65535 ? n - 22 - 65535 : 0; k-- > lo;)
    if (rd(z, k, 4) == 0x06054b50) {
      eocd = k;
      break;
    }
  if (eocd == n) fail(path, "unreadable zip checkpoint: no end of central directory");
  uint64_t count = rd(z, eocd + 10, 2), cd_size = rd(z, eocd + 12, 4), cd_off = rd(z, eocd + 16, 4);
  if (eocd >= 20 && rd(z, eocd - 20, 4) == 0x07064b50) {  // zip64 locator -> zip64 end record
    uint64_t rec = rd(z, eocd - 20 + 8, 8);
    if (rec > n || n - rec < 56 || rd(z, rec, 4) != 0x06064b50)
      fail(path, "unreadable zip checkpoint: bad zip64 record");
    count = rd(z, rec + 32, 8);
    cd_size = rd(z, rec + 40, 8);
    cd_off = rd(z, rec + 48, 8);
  }
  if (cd_off > n || cd_size > n - cd_off) fail(path, "unreadable zip checkpoint: central directory outside the file");
  if (count > limits::kMaxItems) fail_limit(path, "zip archive with too many records", "kMaxItems", limits::kMaxItems);
  const uint64_t end = cd_off + cd_size;
  ZipDirectory dir;
  uint64_t p = cd_off;
  uint64_t inflated = 0;
  for (uint64_t k = 0; k < count; ++k) {
    if (end - p < 46 || rd(z, p, 4) != 0x02014b50) fail(path, "unreadable zip checkpoint: corrupt central directory");
    uint64_t method = rd(z, p + 10, 2), comp = rd(z, p + 20, 4), uncomp = rd(z, p + 24, 4);
    uint64_t name_len = rd(z, p + 28, 2), extra_len = rd(z, p + 30, 2), comment_len = rd(z, p + 32, 2);
    if (end - p - 46 < name_len + extra_len + comment_len)
      fail(path, "unreadable zip checkpoint: corrupt central directory");
    std::string name(z.substr(size_t(p + 46), size_t(name_len)));
    if (uncomp == 0xFFFFFFFF || comp == 0xFFFFFFFF) {
      // zip64 extended information: the 8-byte values of the saturated fields, in order.
      uint64_t x = p + 46 + name_len, x_end = x + extra_len;
      for (bool found = false; x_end - x >= 4 && !found;) {
        uint64_t id = rd(z, x, 2), len = rd(z, x + 2, 2);
        if (x_end - x - 4 < len) break;
        if (id == 1) {
          uint64_t q = x + 4, q_end = q + len;
          for (uint64_t* field : {&uncomp, &comp}) {
            if (*field != 0xFFFFFFFF) continue;
            if (q_end - q < 8) fail(path, "unreadable zip checkpoint: short zip64 field of " + excerpt(name));
            *field = rd(z, q, 8);
            q += 8;
          }
          found = true;
        }
        x += 4 + len;
      }
    }
    bool plausible =
        comp <= n && ((method == 0 && uncomp == comp) || (method == 8 && uncomp / limits::kMaxZipExpansion <= comp));
    if (!plausible) {
      if (method == 8)
        fail_limit(path,
                   "zip record " + excerpt(name) + " declares " + std::to_string(uncomp) +
                       " bytes, more than its compressed data can hold",
                   "kMaxZipExpansion", limits::kMaxZipExpansion);
      fail(path, "zip record " + excerpt(name) + " declares " + std::to_string(uncomp) + " bytes, but the file has " +
                     std::to_string(n) + (method == 0 ? "" : " (or an unsupported compression)"));
    }
    if (method == 8) {
      inflated += uncomp;
      const uint64_t budget = limits::kMaxFileExpansion * n + limits::kInflatedAllowance;
      if (inflated > budget)
        fail_limit(path,
                   "its deflated records expand to more than " + std::to_string(budget >> 20) + " MB (" +
                       std::to_string(limits::kMaxFileExpansion) + " times the file, plus " +
                       std::to_string(limits::kInflatedAllowance >> 20) + " MB)",
                   "kMaxFileExpansion", limits::kMaxFileExpansion);
    }
    if (k == 0) dir.archive = name.substr(0, name.find('/'));
    if (method == 0) dir.stored[name] = uncomp;
    p += 46 + name_len + extra_len + comment_len;
  }
  return dir;
}

}  // namespace

Value read_zip(const std::string& path, const FileBytes& file) {
  const std::string_view bytes = file.view();
  const ZipDirectory dir = check_zip_directory(path, bytes);
  try {
    caffe2::serialize::PyTorchStreamReader reader(
        std::make_shared<caffe2::serialize::MemoryReadAdapter>(bytes.data(), bytes.size()));
    std::map<std::string, at::Tensor> cache;
    auto loader = [&](const std::string& key, at::ScalarType dtype, int64_t) {
      auto it = cache.find(key);
      if (it != cache.end()) return it->second;
      std::string record = "data/" + key;
      if (!reader.hasRecord(record)) fail(path, "missing tensor record " + excerpt(record));
      const size_t elem = c10::elementSize(dtype);
      auto numel = [&](size_t nbytes) {
        if (nbytes % elem)
          fail(path, "storage " + excerpt(key) + " has a size that is not a multiple of its element size");
        return int64_t(nbytes / elem);
      };
      at::Tensor t;
      auto st = dir.stored.find(dir.archive + "/" + record);
      if (st != dir.stored.end()) {
        // Uncompressed (torch.save's records are, 64-byte aligned): the mapped pages themselves.
        const uint64_t at = reader.getRecordOffset(record), nbytes = st->second;
        if (at > bytes.size() || nbytes > bytes.size() - at) fail(path, "truncated tensor record " + excerpt(record));
        t = file.tensor(bytes.data() + at, size_t(nbytes), {numel(size_t(nbytes))}, dtype);
      } else {
        auto rec = reader.getRecord(record);  // its declared size was checked above
        t = at::empty({numel(std::get<1>(rec))}, at::TensorOptions().dtype(dtype));
        fill(t, static_cast<const char*>(std::get<0>(rec).get()), std::get<1>(rec));
      }
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
Value read_legacy(const std::string& path, std::string_view bytes) {
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
  // The storages' bytes follow the object, so tensors are views of buffers filled afterwards;
  // all of them together cannot be larger than what is left of the file.
  std::map<std::string, at::Tensor> storages;
  std::map<std::string, bool> filled;
  const uint64_t room = bytes.size() - pos;
  uint64_t declared = 0;
  Value root = next([&](const std::string& key, at::ScalarType dtype, int64_t numel) {
    auto it = storages.find(key);
    if (it != storages.end()) return it->second;
    uint64_t nbytes = 0;
    if (numel < 0 || __builtin_mul_overflow(uint64_t(numel), c10::elementSize(dtype), &nbytes) ||
        __builtin_add_overflow(declared, nbytes, &declared) || declared > room)
      fail(path, "truncated file or bad storage size: storage " + excerpt(key) + " declares " + std::to_string(numel) +
                     " elements, more than the file holds");
    auto t = at::empty({numel}, at::TensorOptions().dtype(dtype));
    storages[key] = t;
    filled[key] = false;
    return t;
  });
  Value keys = next(no_storage);
  if (keys->kind != Node::List) fail(path, "legacy checkpoint without a storage key list");
  for (auto& k : keys->items) {
    if (k->kind != Node::Str && k->kind != Node::Int) fail(path, "legacy storage key is not a string");
    std::string key = k->kind == Node::Int ? std::to_string(k->i) : k->s;
    auto it = storages.find(key);
    if (it == storages.end()) fail(path, "storage " + excerpt(key) + " is listed but never used");
    if (bytes.size() - pos < 8) fail(path, "truncated storage " + excerpt(key));
    int64_t numel = int64_t(rd(bytes, pos, 8));
    pos += 8;
    at::Tensor& t = it->second;
    if (numel != t.numel()) fail(path, "inconsistent size of storage " + excerpt(key));
    size_t nbytes = t.nbytes();  // the allocation, checked against the file above
    if (bytes.size() - pos < nbytes) fail(path, "truncated storage " + excerpt(key));
    fill(t, bytes.data() + pos, nbytes);
    filled[key] = true;
    pos += nbytes;
  }
  for (auto& [key, ok] : filled)
    if (!ok) fail(path, "storage " + excerpt(key) + " is used but its bytes are missing");
  return root;
}

// ---- safetensors --------------------------------------------------------------------------

namespace {

at::ScalarType safetensors_dtype(const std::string& name, const std::string& path) {
  static const std::map<std::string, at::ScalarType> types = {
      {"F32", at::kFloat}, {"F64", at::kDouble}, {"F16", at::kHalf}, {"BF16", at::kBFloat16}, {"I64", at::kLong},
      {"I32", at::kInt},   {"I16", at::kShort},  {"I8", at::kChar},  {"U8", at::kByte},       {"BOOL", at::kBool},
  };
  auto it = types.find(name);
  if (it == types.end()) fail(path, "unsupported safetensors dtype " + excerpt(name));
  return it->second;
}

// A JSON integer in [0, max]; floats (-1.5, 1e300) and negatives are refused, never converted.
uint64_t json_count(const sdk::json& j, uint64_t max, const std::string& path, const std::string& what) {
  uint64_t v = 0;
  if (j.is_number_unsigned())
    v = j.get<uint64_t>();
  else if (j.is_number_integer() && j.get<int64_t>() >= 0)
    v = uint64_t(j.get<int64_t>());
  else
    fail(path, what + " is not a non-negative integer");
  if (v > max) fail(path, what + " is out of range");
  return v;
}

struct Entry {
  uint64_t begin, end;
  std::string name;
  at::ScalarType dtype;
  std::vector<int64_t> shape;
};

// The header, every entry validated against the data that follows it (sorted by offset = file
// order), and where that data starts.
struct Layout {
  std::vector<Entry> entries;
  sdk::json metadata;  // __metadata__, or null
  uint64_t data_start = 0;
};

Layout safetensors_layout(const std::string& path, std::string_view bytes) {
  if (bytes.size() < 8) fail(path, "truncated safetensors header");
  uint64_t n = rd(bytes, 0, 8);
  if (n > bytes.size() - 8) fail(path, "truncated safetensors header");
  if (n > limits::kMaxSafetensorsHeaderBytes)
    fail_limit(path, "safetensors header too large", "kMaxSafetensorsHeaderBytes", limits::kMaxSafetensorsHeaderBytes);
  sdk::json header;
  try {
    // Its own bounds (not a config's): depth kMaxDepth, as many values as tensors allow.
    config::ParseLimits bounds;
    bounds.max_bytes = size_t(n);
    bounds.max_depth = int(limits::kMaxDepth);
    bounds.max_nodes = size_t(limits::kMaxItems) * 8;
    header = config::parse_json(std::string_view(bytes.data() + 8, size_t(n)), "safetensors header", bounds);
  } catch (const std::exception& e) {
    fail(path, std::string("bad safetensors header: ") + e.what());
  }
  if (!header.is_object()) fail(path, "safetensors header is not a JSON object");
  if (header.size() > limits::kMaxItems) fail_limit(path, "too many tensors", "kMaxItems", limits::kMaxItems);
  const uint64_t data_size = bytes.size() - 8 - n;
  Layout layout;
  layout.data_start = 8 + n;
  std::vector<Entry>& entries = layout.entries;
  for (auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      layout.metadata = info;
      continue;
    }
    const std::string what = "tensor " + excerpt(name);
    if (!info.is_object()) fail(path, what + " is not described by a JSON object");
    auto dt = info.find("dtype"), sh = info.find("shape"), off = info.find("data_offsets");
    if (dt == info.end() || !dt->is_string()) fail(path, what + " has no dtype");
    if (sh == info.end() || !sh->is_array()) fail(path, what + " has no shape");
    if (off == info.end() || !off->is_array() || off->size() != 2) fail(path, what + " has no data_offsets pair");
    Entry e{json_count((*off)[0], data_size, path, what + " data_offsets[0]"),
            json_count((*off)[1], data_size, path, what + " data_offsets[1]"),
            name,
            safetensors_dtype(dt->get<std::string>(), path),
            {}};
    if (sh->size() > limits::kMaxTensorDims)
      fail_limit(path, what + " has too many dimensions", "kMaxTensorDims", limits::kMaxTensorDims);
    int64_t numel = 1, nbytes = 0;
    for (auto& s : *sh) {
      e.shape.push_back(int64_t(json_count(s, uint64_t(INT64_MAX), path, what + " shape")));
      if (__builtin_mul_overflow(numel, e.shape.back(), &numel)) fail(path, what + " element count overflows 64 bits");
    }
    if (__builtin_mul_overflow(numel, int64_t(c10::elementSize(e.dtype)), &nbytes))
      fail(path, what + " byte count overflows 64 bits");
    if (e.end < e.begin || e.end - e.begin != uint64_t(nbytes)) fail(path, what + " has inconsistent data_offsets");
    entries.push_back(std::move(e));
  }
  // The header is a JSON object (unordered here); order tensors by their offsets = file order.
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return std::tie(a.begin, a.name) < std::tie(b.begin, b.name); });
  return layout;
}

}  // namespace

c10::IValue read_safetensors(const std::string& path, const FileBytes& file) {
  // Everything is validated before the first tensor is allocated.
  const Layout layout = safetensors_layout(path, file.view());
  const char* data = file.view().data() + layout.data_start;
  c10::impl::GenericDict d(c10::StringType::get(), c10::AnyType::get());
  for (auto& e : layout.entries)
    d.insert(e.name, file.tensor(data + e.begin, size_t(e.end - e.begin), e.shape, e.dtype));
  return d;
}

std::optional<SafetensorsHeader> read_safetensors_header(const std::string& path, const FileBytes& file) {
  const std::string_view bytes = file.view();
  if (bytes.size() < 10 || bytes[8] != '{') return std::nullopt;
  const Layout layout = safetensors_layout(path, bytes);
  SafetensorsHeader out;
  for (const auto& e : layout.entries) out.shapes.emplace_back(e.name, e.shape);
  if (layout.metadata.is_object())
    for (auto& [key, value] : layout.metadata.items())
      if (value.is_string()) out.metadata.emplace_back(key, value.get<std::string>());
  return out;
}

}  // namespace detail
}  // namespace ckpt
}  // namespace sinsr
