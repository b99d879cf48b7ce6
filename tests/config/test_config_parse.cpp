// config::parse: bounded against hostile text (nesting, alias bombs, self-referential aliases,
// size), every failure an sdk::Error naming the origin.
#include <sinsr/config.hpp>
#include <sinsr/sdk.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <string>

namespace {

using sinsr::config::json;
using sinsr::config::parse;

std::string parse_error(const std::string& text) {
  try {
    parse(text, "hostile.yaml");
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_INVALID_ARGUMENT) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind("hostile.yaml: ", 0), 0u) << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "foreign exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "accepted";
  return "";
}

TEST(ConfigParse, JsonAndYaml) {
  EXPECT_EQ(parse(R"({"a": [1, 2.5, "x", null, true]})"), json::parse(R"({"a": [1, 2.5, "x", null, true]})"));
  json y = parse("a: 1\nb: 2.5\nc: x\nd: ~\ne: true\nf: [1, 2]\ng: \"3\"\n");
  EXPECT_EQ(y, json::parse(R"({"a": 1, "b": 2.5, "c": "x", "d": null, "e": true, "f": [1, 2], "g": "3"})"));
}

TEST(ConfigParse, DeepJsonRefused) {
  // 200,000 nested arrays used to crash sinsr-host.
  std::string deep = std::string(200000, '[') + std::string(200000, ']');
  EXPECT_NE(parse_error(deep).find("nesting deeper than 128"), std::string::npos);
  std::string ok = std::string(100, '[') + std::string(100, ']');
  EXPECT_NO_THROW(parse(ok));
}

TEST(ConfigParse, DeepYamlRefused) {
  std::string deep = std::string(1000, '[') + std::string(1000, ']');
  // yaml-cpp's own guard or ours; either way an sdk::Error naming the file.
  parse_error(deep);
  std::string block;
  for (int i = 0; i < 200; ++i) block += std::string(i, ' ') + "k:\n";
  EXPECT_NE(parse_error(block).find("nesting deeper"), std::string::npos);
}

TEST(ConfigParse, SelfReferentialAliasRefused) {
  EXPECT_NE(parse_error("a: &x [1, *x]\n").find("self-reference"), std::string::npos);
  EXPECT_NE(parse_error("&x {a: *x}\n").find("self-reference"), std::string::npos);
}

// 10^11 values if expanded: refused at the node limit, so the work is bounded by the limit, not
// by the bomb (no timing here: sanitizer builds run it several times slower).
TEST(ConfigParse, AliasBombRefusedAtTheNodeLimit) {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  std::string prev = "a";
  for (char c = 'b'; c <= 'k'; ++c) {
    std::string name(1, c);
    bomb += name + ": &" + name + " [";
    for (int i = 0; i < 10; ++i) bomb += (i ? ", *" : "*") + prev;
    bomb += "]\n";
    prev = name;
  }
  EXPECT_NE(parse_error(bomb).find("more than 1000000 values"), std::string::npos);
  // Aliases used a few times are fine.
  EXPECT_EQ(parse("a: &a [1, 2]\nb: *a\n"), json::parse(R"({"a": [1, 2], "b": [1, 2]})"));
}

TEST(ConfigParse, SizeAndLimitsOverridable) {
  auto& limits = sinsr::config::parse_limits();
  const auto saved = limits;
  limits.max_bytes = 16;
  EXPECT_NE(parse_error("{\"a\": \"0123456789abcdef\"}").find("exceeds the limit of 16"), std::string::npos);
  limits = saved;
  limits.max_depth = 300;
  EXPECT_NO_THROW(parse(std::string(250, '[') + std::string(250, ']')));
  limits = saved;
}

TEST(ConfigParse, MalformedTextIsAnSdkError) {
  for (const char* text : {"{", "[1,", "a: [1", "{\"a\": 1} x", "a: b: c", "? [a]\n: 1\n", "a: {b: 1"}) {
    SCOPED_TRACE(text);
    parse_error(text);
  }
}

TEST(ConfigParse, MissingFileIsNotFound) {
  try {
    sinsr::config::load_file("no/such/config.yaml");
    FAIL();
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_NOT_FOUND);
    EXPECT_NE(std::string(e.what()).find("no/such/config.yaml"), std::string::npos);
  }
}

}  // namespace

namespace {

// A config path naming a device must not read forever (found by the config fuzzer's
// {"config_file": ...} inputs).
TEST(ConfigParse, DevicesAndHugeFilesRefused) {
  try {
    sinsr::config::load_file("/dev/zero");
    FAIL();
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_IO);
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
  auto& limits = sinsr::config::parse_limits();
  const auto saved = limits;
  limits.max_bytes = 10;
  const std::string path = ::testing::TempDir() + "big.yaml";
  { std::ofstream(path) << "a: 1\nb: 2\nc: 3\n"; }
  EXPECT_THROW(sinsr::config::load_file(path), sinsr::sdk::Error);
  limits = saved;
  EXPECT_EQ(sinsr::config::load_file(path), json::parse(R"({"a": 1, "b": 2, "c": 3})"));
}

}  // namespace

namespace {

// A key written twice in one object is refused by name (it used to keep the last silently); the
// same key in two objects is fine.
TEST(ConfigParse, DuplicateJsonKeysRefused) {
  EXPECT_NE(parse_error(R"({"steps": 1, "scale": 4, "steps": 15})").find("duplicate key 'steps'"), std::string::npos);
  EXPECT_NE(parse_error(R"({"a": {"x": 1, "x": 2}})").find("duplicate key 'x'"), std::string::npos);
  EXPECT_NO_THROW(parse(R"({"a": {"x": 1}, "b": {"x": 2}, "c": [{"x": 1}, {"x": 2}], "s": "x,\"y\": {"})"));
}

// 200,000 keys (a 3 MB config) parse in one pass: the callback parser used before took 116 s.
TEST(ConfigParse, LongObjectsParseInLinearTime) {
  std::string text = "{";
  for (int k = 0; k < 200000; ++k) text += (k ? ",\"k" : "\"k") + std::to_string(k) + "\":" + std::to_string(k);
  text += "}";
  auto& limits = sinsr::config::parse_limits();
  const auto saved = limits;
  limits.max_bytes = text.size() + 1;
  json j = parse(text);
  limits = saved;
  EXPECT_EQ(j.size(), 200000u);
  EXPECT_EQ(j["k199999"], 199999);
}

}  // namespace
