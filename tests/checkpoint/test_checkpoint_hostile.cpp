// Regressions for the outside fuzzing run against the checkpoint reader: each hostile file is
// built here byte by byte (pickle protocol 2), so the suite runs in milliseconds. Every one
// must be refused with the SDK's FORMAT error naming the file (and the limit where one is
// hit), or load correctly; no crash, no out-of-bounds view, no foreign exception type.
#include "../../plugins/src/checkpoint_internal.hpp"

#include <sinsr/checkpoint.hpp>
#include <sinsr/sdk.hpp>

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <utility>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

namespace {

namespace limits = sinsr::ckpt::limits;

std::string le(uint64_t v, int n) {
  std::string s;
  for (int k = 0; k < n; ++k) s += char((v >> (8 * k)) & 0xff);
  return s;
}

// Protocol-2 pickle opcodes, written by hand.
struct Pickle {
  std::string b = std::string("\x80\x02", 2);
  Pickle& raw(const std::string& s) {
    b += s;
    return *this;
  }
  template <size_t N>
  Pickle& raw(const char (&s)[N]) {  // a literal, embedded NUL bytes included
    b.append(s, N - 1);
    return *this;
  }
  Pickle& text(const std::string& s) {
    b += 'X' + le(s.size(), 4) + s;
    return *this;
  }
  Pickle& i64(int64_t v) {
    b += "\x8a\x08" + le(uint64_t(v), 8);
    return *this;
  }  // LONG1, 8 bytes
  Pickle& global(const std::string& mod, const std::string& name) {
    b += "c" + mod + "\n" + name + "\n";
    return *this;
  }
  Pickle& ints(const std::vector<int64_t>& xs) {
    b += '(';
    for (auto x : xs) i64(x);
    b += 't';
    return *this;
  }
  Pickle& storage(const std::string& key, int64_t numel, const std::string& type = "FloatStorage") {
    b += '(';
    text("storage").global("torch", type).text(key).text("cpu").i64(numel);
    b += "tQ";
    return *this;
  }
  // torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())
  Pickle& tensor(int64_t numel, int64_t offset, const std::vector<int64_t>& size, const std::vector<int64_t>& stride,
                 const std::string& key = "0") {
    global("torch._utils", "_rebuild_tensor_v2");
    b += '(';
    storage(key, numel).i64(offset).ints(size).ints(stride);
    b += '\x89';
    global("collections", "OrderedDict");
    b += ")Rt"
         "R";
    return *this;
  }
  std::string done() const { return b + '.'; }
};

std::string floats(int n) {
  std::string s;
  for (int k = 0; k < n; ++k) {
    float f = float(k);
    s += std::string(reinterpret_cast<const char*>(&f), 4);
  }
  return s;
}

class Hostile : public ::testing::Test {
 protected:
  void TearDown() override {
    for (auto& p : made_) std::remove(p.c_str());
  }
  std::string path(const std::string& name) {
    std::string p = ::testing::TempDir() + "/sinsr_hostile_" + std::to_string(::getpid()) + "_" + name;
    made_.push_back(p);
    return p;
  }
  std::string file(const std::string& name, const std::string& bytes) {
    std::string p = path(name);
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  // A torch.save zip holding `pkl` as data.pkl and `records` as data/<key>.
  std::string zip(const std::string& name, const std::string& pkl,
                  const std::vector<std::pair<std::string, std::string>>& records = {}) {
    std::string p = path(name);
    std::ofstream f(p, std::ios::binary);
    caffe2::serialize::PyTorchStreamWriter w([&](const void* b, size_t k) {
      f.write(static_cast<const char*>(b), std::streamsize(k));
      return k;
    });
    w.writeRecord("data.pkl", pkl.data(), pkl.size());
    for (auto& [key, bytes] : records) w.writeRecord("data/" + key, bytes.data(), bytes.size());
    w.writeEndOfFile();
    return p;
  }
  // A pre-1.6 torch.save stream: magic, protocol, sys_info, `root`, the key list, storages.
  static std::string legacy(const std::string& root, const std::vector<std::pair<std::string, std::string>>& storages,
                            int elem = 4) {
    std::string out = std::string("\x80\x02\x8a\x0a", 4) +
                      "\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
                      "." +
                      std::string("\x80\x02M\xe9\x03.", 6) + std::string("\x80\x02}.", 4) + root;
    Pickle keys;
    keys.raw("](");
    for (auto& s : storages) keys.text(s.first);
    out += keys.raw("e").done();
    for (auto& s : storages) out += le(s.second.size() / size_t(elem), 8) + s.second;
    return out;
  }
  static std::string safetensors(const std::string& header, const std::string& data = "") {
    return le(header.size(), 8) + header + data;
  }

  std::vector<std::string> made_;
};

// Refused with the SDK's FORMAT error naming the file and containing `needle`.
void expect_refused(const std::string& path, const std::string& needle) {
  try {
    sinsr::ckpt::read_file(path);
    ADD_FAILURE() << "loaded " << path << " (expected a refusal mentioning '" << needle << "')";
  } catch (const sinsr::sdk::Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(e.code(), SINSR_ERR_FORMAT) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "expected '" << needle << "' in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "foreign exception escaped for " << path << ": " << e.what();
  }
}

std::string repeat(char c, size_t n) { return std::string(n, c); }

TEST_F(Hostile, DeepPickle10000IsRefusedAtTheDepthLimit) {
  const std::string lists = Pickle().raw(repeat(']', 10000) + repeat('a', 9999)).done();
  const std::string tuples = Pickle().raw(")" + repeat('\x85', 10000)).done();
  const std::string marks = Pickle().raw(repeat('(', 10000) + repeat('t', 10000)).done();
  std::string dicts = Pickle().b + "}";  // d0[1] = d1, d1[1] = d2, ...
  for (int k = 0; k < 10000; ++k) dicts += "K\x01}";
  dicts += repeat('s', 10000) + ".";
  for (auto& [name, pkl] : std::vector<std::pair<std::string, std::string>>{
           {"lists", lists}, {"tuples", tuples}, {"marks", marks}, {"dicts", dicts}})
    expect_refused(zip("deep_" + name + ".pth", pkl), "kMaxDepth = 1000");
  // Exactly at the limit still loads.
  auto ok =
      sinsr::ckpt::read_file(zip("deep_ok.pth", Pickle().raw(")" + repeat('\x85', limits::kMaxDepth - 1)).done()));
  EXPECT_TRUE(ok.isTuple());
}

// Reached before the legacy magic number is even checked.
TEST_F(Hostile, Nesting100000IsRefusedBeforeTheLegacyMagic) {
  expect_refused(file("deep_legacy_tuples.pth", Pickle().raw(")" + repeat('\x85', 100000)).done()), "kMaxDepth");
  expect_refused(file("deep_legacy_lists.pth", Pickle().raw(repeat(']', 100000) + repeat('a', 99999)).done()),
                 "kMaxDepth");
}

// The teardown and the conversion of values have no recursion left to overflow, whatever the
// reader's limits let through.
TEST_F(Hostile, DeepValuesAreFreedAndConvertedWithoutRecursion) {
  using sinsr::ckpt::detail::Node;
  auto chain = [](int n) {
    auto root = std::make_shared<Node>();
    root->kind = Node::List;
    Node* at = root.get();
    for (int k = 0; k < n; ++k) {
      auto next = std::make_shared<Node>();
      next->kind = k % 2 ? Node::List : Node::Dict;
      if (at->kind == Node::List)
        at->items.push_back(next);
      else
        at->entries.emplace_back(std::make_shared<Node>(), next);
      at = next.get();
    }
    return root;
  };
  chain(300000).reset();  // recursive destructors overflowed near 100,000
  try {
    sinsr::ckpt::detail::to_ivalue(chain(100000), "chain");
    ADD_FAILURE() << "converted a 100,000-deep chain";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_NE(std::string(e.what()).find("kMaxDepth"), std::string::npos) << e.what();
  }
}

// A list holding the previous list twice, 60 times: 2^60 leaves if expanded. Shared values
// are converted once and stay shared.
TEST_F(Hostile, SharedValuesAreConvertedOnce) {
  Pickle p;
  p.raw("]q\x00");
  for (int k = 1; k <= 60; ++k) p.raw("](h" + le(k - 1, 1) + "h" + le(k - 1, 1) + "eq" + le(k, 1));
  auto t0 = std::chrono::steady_clock::now();
  auto v = sinsr::ckpt::read_file(zip("shared.pth", p.done()));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  auto l = v.toList();
  ASSERT_EQ(l.size(), 2u);
  EXPECT_TRUE(l.get(0).is(l.get(1)));
}

TEST_F(Hostile, SelfReferentialContainersAreRefused) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"dict_setitem", Pickle().raw("}q\x00K\x01h\x00s").done()},    // d[1] = d via the memo
      {"dict_setitems", Pickle().raw("}q\x00(K\x01h\x00u").done()},  // d.update({1: d})
      {"list_memo", Pickle()
                        .raw("]q\x00h\x00"
                             "a")
                        .done()},                // l.append(l)
      {"list_dup", Pickle().raw("]2a").done()},  // l.append(l) via DUP
      {"list_extend", Pickle()
                          .raw("]q\x00(h\x00"
                               "e")
                          .done()},  // l.extend([l])
      // d = {}; l = [d]; d[1] = l
      {"indirect_dict", Pickle()
                            .raw("}q\x00]q\x01h\x00"
                                 "a0K\x01h\x01s")
                            .done()},
      // l = []; d = {1: l}; l.append(d)
      {"indirect_list", Pickle()
                            .raw("}q\x00K\x01]q\x01s0h\x01h\x00"
                                 "a")
                            .done()},
  };
  for (auto& [name, pkl] : cases) expect_refused(zip("cycle_" + name + ".pth", pkl), "self-referential");
}

TEST_F(Hostile, ShortOrEmptyStrideTupleIsRefused) {
  std::vector<std::pair<std::string, std::string>> data = {{"0", floats(16)}};
  auto good = sinsr::ckpt::read_file(zip("stride_ok.pth", Pickle().tensor(16, 0, {4, 4}, {4, 1}).done(), data));
  EXPECT_TRUE(good.toTensor().equal(at::arange(16, at::kFloat).view({4, 4})));
  expect_refused(zip("stride_short.pth", Pickle().tensor(16, 0, {4, 4}, {1}).done(), data), "2 sizes but 1 strides");
  expect_refused(zip("stride_empty.pth", Pickle().tensor(16, 0, {4, 4}, {}).done(), data), "2 sizes but 0 strides");
  expect_refused(zip("stride_negative.pth", Pickle().tensor(16, 15, {4}, {-1}).done(), data), "negative");
  expect_refused(zip("size_negative.pth", Pickle().tensor(16, 0, {-4}, {1}).done(), data), "negative");
}

TEST_F(Hostile, WrappedStorageOffsetIsRefused) {
  std::vector<std::pair<std::string, std::string>> data = {{"0", floats(16)}};
  const int64_t max = INT64_MAX;
  // offset + 15 wraps negative: the old check passed and LibTorch got a view far outside.
  expect_refused(zip("offset_wrap.pth", Pickle().tensor(16, max - 7, {16}, {1}).done(), data), "overflows");
  expect_refused(zip("offset_wrap2.pth", Pickle().tensor(16, max - 1, {2}, {max}).done(), data), "overflows");
  // (size-1)*stride itself overflows.
  expect_refused(zip("stride_overflow.pth", Pickle().tensor(16, 0, {4}, {int64_t(1) << 62}).done(), data), "overflows");
  expect_refused(zip("offset_past.pth", Pickle().tensor(16, max, {1}, {1}).done(), data), "past its storage");
  expect_refused(zip("offset_past_empty.pth", Pickle().tensor(16, int64_t(1) << 62, {0}, {1}).done(), data),
                 "past its storage");
  const int64_t g = int64_t(1) << 32;
  expect_refused(zip("numel_overflow.pth", Pickle().tensor(16, 0, {g, g}, {0, 0}).done(), data), "overflows 64 bits");
  // An expanded (stride 0) view inside the storage is fine.
  auto v = sinsr::ckpt::read_file(zip("expanded_ok.pth", Pickle().tensor(16, 15, {3, 5}, {0, 0}).done(), data));
  EXPECT_TRUE(v.toTensor().equal(at::full({3, 5}, 15.0f)));
}

TEST_F(Hostile, LegacyStorageSizesAreCheckedBeforeAllocating) {
  std::string root = Pickle().tensor(4, 0, {4}, {1}).done();
  auto ok = sinsr::ckpt::read_file(file("legacy_ok.pth", legacy(root, {{"0", floats(4)}})));
  EXPECT_TRUE(ok.toTensor().equal(at::arange(4, at::kFloat)));
  std::string huge = Pickle().tensor(int64_t(1) << 60, 0, {4}, {1}).done();
  expect_refused(file("legacy_huge.pth", legacy(huge, {{"0", floats(4)}})), "more than the file holds");
  expect_refused(file("legacy_unfilled.pth", legacy(root, {})), "bytes are missing");
  // A view (view_key, offset, size) past its storage.
  Pickle view;
  view.global("torch._utils", "_rebuild_tensor_v2").raw("((").text("storage").global("torch", "FloatStorage");
  view.text("0").text("cpu").i64(4).raw("(").text("v").i64(2).i64(8).raw("ttQ").i64(0).ints({2}).ints({1});
  view.raw("\x89")
      .global("collections", "OrderedDict")
      .raw(
          ")Rt"
          "R");
  expect_refused(file("legacy_view.pth", legacy(view.done(), {{"0", floats(4)}})), "extends past its storage");
}

// A zip checkpoint's bytes, and where the central directory entry of its data/0 record starts
// (npos when absent).
std::pair<std::string, size_t> zip_with_entry(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::string z((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t at = std::string::npos;
  for (size_t k = z.find("PK\x01\x02"); k != std::string::npos; k = z.find("PK\x01\x02", k + 1)) {
    size_t len = uint8_t(z[k + 28]) | (uint8_t(z[k + 29]) << 8);
    if (z.compare(k + 46 + len - 7, 7, "/data/0") == 0) at = k;
  }
  return {z, at};
}

TEST_F(Hostile, ZipRecordLargerThanTheFileIsRefused) {
  // The central directory entry of data/0: its uncompressed size to 2 GB.
  auto [z, at] = zip_with_entry(zip("zip_ok.pth", Pickle().tensor(4, 0, {4}, {1}).done(), {{"0", floats(4)}}));
  ASSERT_NE(at, std::string::npos);
  z.replace(at + 24, 4, le(0x7fffffff, 4));
  expect_refused(file("zip_record_huge.pth", z), "declares 2147483647 bytes");
}

// Deflated records are bounded per file, not only per record: each may expand 1032:1, so
// storages zero-padded to 1 GiB each took 6 GB from a 9 MB file.
TEST_F(Hostile, DeflatedRecordsAreBoundedPerFile) {
  const int64_t n = 25000;  // a 100 kB storage
  auto [z, at] =
      zip_with_entry(zip("zip_big.pth", Pickle().tensor(int(n), 0, {n}, {1}).done(), {{"0", floats(int(n))}}));
  ASSERT_NE(at, std::string::npos);
  // Declared deflated, expanding 1000:1 (plausible for one record): 100 MB from a 100 kB file.
  const uint64_t comp = uint8_t(z[at + 20]) | uint8_t(z[at + 21]) << 8 | uint64_t(uint8_t(z[at + 22])) << 16;
  z.replace(at + 10, 2, le(8, 2));
  z.replace(at + 24, 4, le(comp * 1000, 4));
  expect_refused(file("zip_inflated.pth", z), "kMaxFileExpansion");
}

// A pickle's values are counted by the memory they take (16.7 M values from 17 kB took 3.9 GB).
TEST_F(Hostile, PickleValuesAreCountedByTheirMemory) {
  std::string many = "\x80\x02]";  // a list, then 4 M Nones appended one by one
  for (int k = 0; k < 4000000; ++k) many += "Na";
  expect_refused(zip("many_values.pth", many + "."), "kMaxPickleBytes");
}

TEST_F(Hostile, SafetensorsNumelOverflowIsRefused) {
  auto header = [](const std::string& dtype, const std::string& shape) {
    return safetensors(R"({"t":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":[0,0]}})");
  };
  expect_refused(file("st_numel.safetensors", header("F32", "[4294967296,4294967296]")), "element count overflows");
  expect_refused(file("st_numel2.safetensors", header("U8", "[4611686018427387904,2]")), "element count overflows");
  expect_refused(file("st_bytes.safetensors", header("F32", "[2305843009213693952,2]")), "byte count overflows");
  std::string dims = "[1";
  for (uint32_t k = 0; k < limits::kMaxTensorDims; ++k) dims += ",1";
  expect_refused(file("st_dims.safetensors", header("F32", dims + "]")), "kMaxTensorDims");
  std::string deep = repeat('[', 5000) + repeat(']', 5000);
  expect_refused(file("st_deep.safetensors", safetensors(R"({"t":)" + deep + "}")), "nesting deeper than 1000");
}

TEST_F(Hostile, SafetensorsFractionalOrHugeOffsetsAreRefused) {
  for (const char* offsets :
       {"[-1.5,0]", "[0,1e300]", "[-1,0]", "[0,18446744073709551615]", "[0]", "[\"0\",4]", "[4,0]"}) {
    std::string h = std::string(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":)") + offsets + "}}";
    expect_refused(file("st_offsets.safetensors", safetensors(h, floats(1))), "data_offsets");
  }
  auto ok = sinsr::ckpt::read_file(
      file("st_ok.safetensors", safetensors(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", floats(1))));
  EXPECT_EQ(sinsr::ckpt::read_state_dict(path("st_ok.safetensors"))[0].second.numel(), 1);
  EXPECT_TRUE(ok.isGenericDict());
}

// Valid empty tensors have no buffer (data_ptr() may be null): they load, in every container.
TEST_F(Hostile, EmptyTensorsWithNullDataLoad) {
  auto st = sinsr::ckpt::read_state_dict(
      file("empty.safetensors", safetensors(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                                            R"("b":{"dtype":"I64","shape":[3,0],"data_offsets":[0,0]}})")));
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].second.numel(), 0);
  EXPECT_EQ(st[1].second.sizes(), at::IntArrayRef({3, 0}));
  auto z = sinsr::ckpt::read_file(zip("empty_zip.pth", Pickle().tensor(0, 0, {0}, {1}).done(), {{"0", ""}}));
  EXPECT_EQ(z.toTensor().numel(), 0);
  std::string legacy_empty = legacy(Pickle().tensor(0, 0, {2, 0}, {0, 1}).done(), {{"0", ""}});
  auto l = sinsr::ckpt::read_file(file("empty_legacy.pth", legacy_empty));
  EXPECT_EQ(l.toTensor().sizes(), at::IntArrayRef({2, 0}));
  std::string saved = path("empty_saved.pth");
  sinsr::ckpt::save_state_dict(saved, {{"e", at::empty({0, 4})}});
  EXPECT_EQ(sinsr::ckpt::read_state_dict(saved)[0].second.sizes(), at::IntArrayRef({0, 4}));
}

// A header of 200 000 empty tensors (13 MB) took minutes when its parse was quadratic: it reads
// in linear time (a quadratic parse runs past the test's timeout).
TEST_F(Hostile, SafetensorsHeaderOfManyTensorsReadsInLinearTime) {
  std::string h = "{";
  for (int k = 0; k < 200000; ++k)
    h += (k ? ",\"t" : "\"t") + std::to_string(k) + R"(":{"dtype":"F32","shape":[0],"data_offsets":[0,0]})";
  h += "}";
  auto st = sinsr::ckpt::read_state_dict(file("many.safetensors", safetensors(h)));
  ASSERT_EQ(st.size(), 200000u);
  EXPECT_EQ(st.back().first, "t99999");  // all empty: ordered by name
}

// What used to escape as std::invalid_argument / out_of_range (stoll), the JSON library's
// exceptions or c10::Error leaves as the SDK's error.
TEST_F(Hostile, ForeignExceptionsBecomeSdkErrors) {
  expect_refused(zip("int_range.pth", Pickle().raw("I99999999999999999999\n").done()), "out-of-range integer");
  expect_refused(zip("int_text.pth", Pickle().raw("Ione\n").done()), "integer");
  expect_refused(zip("memo_text.pth", Pickle().raw("Np-1\n").done()), "memo key");
  expect_refused(zip("memo_get.pth", Pickle().raw("gx\n").done()), "memo key");
  expect_refused(zip("list_key.pth", Pickle().raw("}(]K\x01u").done()), "dict key");
  expect_refused(zip("tuple_key.pth", Pickle().raw("}(]\x85K\x01u").done()), "dict key");  // runtime_error in c10
  expect_refused(zip("none_key.pth", Pickle().raw("}NK\x01s").done()), "dict key");
  expect_refused(zip("bad_storage.pth", Pickle().storage("0", 1, "NoSuchStorage").done()), "storage type");
  expect_refused(file("st_json.safetensors", safetensors("{\"t\":[1,")), "bad safetensors header");
  expect_refused(file("st_info.safetensors", safetensors(R"({"t":5})")), "JSON object");
  expect_refused(file("st_dtype.safetensors", safetensors(R"({"t":{"dtype":5,"shape":[],"data_offsets":[0,0]}})")),
                 "dtype");
  expect_refused(
      file("st_shape.safetensors", safetensors(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})")), "shape");
}

// Every truncation and many byte flips of a small valid file of each container: the read
// either succeeds or throws sinsr::sdk::Error; nothing else escapes, nothing crashes.
TEST_F(Hostile, MutatedFilesOnlyEverThrowSdkErrors) {
  Pickle root;
  root.raw("}(").text("w").tensor(6, 0, {2, 3}, {3, 1}).text("l").raw("](K\x01J\xff\xff\xff\xff").text("s");
  root.raw("eq\x00").text("again").raw("h\x00").text("i").tensor(6, 2, {2}, {2}).raw("u");
  const std::vector<std::pair<std::string, std::string>> originals = {
      {"legacy", legacy(root.done(), {{"0", floats(6)}})},
      {"safetensors", safetensors(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                                  R"("b":{"dtype":"BOOL","shape":[2],"data_offsets":[24,26]}})",
                                  floats(6) + "\x01\x07")},
  };
  const uint8_t flips[] = {0x00, 0x01, 0x7f, 0x80, 0xff, '(', 'q', 'h', '.', ']', 'a', 's', 'u', 'R'};
  size_t loaded = 0, refused = 0;
  // Thousands of reads: the mutants live in memory (a memfd) where there is one.
  int fd = ::memfd_create("sinsr_mutant", 0);
  auto attempt = [&](const std::string& bytes) {
    std::string p;
    if (fd >= 0 && ::ftruncate(fd, 0) == 0 && ::pwrite(fd, bytes.data(), bytes.size(), 0) == ssize_t(bytes.size()))
      p = "/proc/self/fd/" + std::to_string(fd);
    else
      p = file("mutant.pth", bytes);
    try {
      sinsr::ckpt::read_file(p);
      ++loaded;
    } catch (const sinsr::sdk::Error&) {
      ++refused;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "foreign exception: " << e.what();
    }
  };
  for (auto& [name, bytes] : originals) {
    EXPECT_NO_THROW(sinsr::ckpt::read_file(file(name + ".pth", bytes))) << name;
    for (size_t n = 0; n < bytes.size(); ++n) attempt(bytes.substr(0, n));
    for (size_t k = 0; k < bytes.size(); ++k)
      for (uint8_t f : flips) {
        std::string m = bytes;
        m[k] = char(f);
        attempt(m);
      }
  }
  if (fd >= 0) ::close(fd);
  EXPECT_GT(refused, 0u);
  EXPECT_GT(loaded, 0u);
  // BOOL bytes other than 0/1 are normalized, never loaded as invalid bools.
  auto st = sinsr::ckpt::read_state_dict(path("safetensors.pth"));
  EXPECT_TRUE(st[1].second.equal(at::ones({2}, at::kBool)));
}

}  // namespace
