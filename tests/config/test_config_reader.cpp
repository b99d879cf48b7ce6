// config::Reader: typed getters with defaults and ranges, errors naming the component and the
// key, and the one unknown-key policy (unread keys refused, the known ones listed).
#include <sinsr/config.hpp>
#include <sinsr/sdk.hpp>
#include "errors.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace {

using sinsr::config::IntRange;
using sinsr::config::json;
using sinsr::config::Range;
using sinsr::config::Reader;

// The message of the sdk::Error `f` throws, which must carry `code`.
template <class F>
std::string reader_error(F&& f, sinsr_code code = SINSR_ERR_INVALID_ARGUMENT) {
  int got = SINSR_OK;
  const std::string message = sinsr_test::error_of(f, &got);
  EXPECT_FALSE(message.empty()) << "no sdk::Error thrown";
  EXPECT_EQ(got, code) << message;
  return message;
}

TEST(ConfigReader, DefaultsWhenAbsentOrNull) {
  Reader r("sampler 'ddpm'", json{{"steps", nullptr}});
  EXPECT_EQ(r.integer("steps", 1000, IntRange::at_least(1)), 1000);
  EXPECT_DOUBLE_EQ(r.number("beta", 0.5), 0.5);
  EXPECT_TRUE(r.boolean("clip", true));
  EXPECT_EQ(r.string("kind", "linear", {"linear", "cosine"}), "linear");
  EXPECT_EQ(r.integers("mult", {1, 2}), (std::vector<int64_t>{1, 2}));
  EXPECT_FALSE(r.has("steps"));
  r.finish();
  Reader empty("x", json());  // null = {}
  empty.finish();
}

TEST(ConfigReader, TypedValues) {
  Reader r("backbone 'b'", json::parse(R"({"n": 32, "f": 2.0, "x": 0.25, "on": false, "s": "cosine",
                                          "l": [1, 2, 4], "one": 3, "d": [0.5, 1]})"));
  EXPECT_EQ(r.integer("n", 0), 32);
  EXPECT_EQ(r.integer("f", 0), 2);  // an integral float is an integer
  EXPECT_DOUBLE_EQ(r.number("x", 0, Range::between(0, 1)), 0.25);
  EXPECT_FALSE(r.boolean("on", true));
  EXPECT_EQ(r.string("s", "linear", {"linear", "cosine"}), "cosine");
  EXPECT_EQ(r.integers("l", {}, IntRange::at_least(1), 1, 8), (std::vector<int64_t>{1, 2, 4}));
  EXPECT_EQ(r.integers("one", {}, {}, 0, 8, 2), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(r.numbers("d", {}), (std::vector<double>{0.5, 1.0}));
  r.finish();
}

TEST(ConfigReader, ErrorsNameComponentKeyAndExpectation) {
  Reader r("sampler 'ddpm'", json{{"steps", "x"}});
  EXPECT_EQ(reader_error([&] { r.integer("steps", 1000, IntRange::at_least(1)); }),
            "sampler 'ddpm': 'steps' must be an integer >= 1, got \"x\"");
}

TEST(ConfigReader, IntegersStayIntegers) {
  // The issue's cases: 2^32 + 32 and 32.9 used to become 32.
  for (json v : {json(4294967328LL), json(32.9), json(true), json("32"), json(1e300),
                 json(std::numeric_limits<uint64_t>::max()), json(std::nan(""))}) {
    Reader r("backbone 'unet_swin'", json{{"model_channels", v}});
    std::string e = reader_error([&] { r.integer("model_channels", 160, IntRange::at_least(1)); });
    EXPECT_NE(e.find("backbone 'unet_swin': 'model_channels' must be an integer >= 1"), std::string::npos) << e;
  }
  Reader r("c", json{{"k", 4294967328LL}});
  EXPECT_NE(reader_error([&] { r.integer("k", 0); }).find("at most 2147483647"), std::string::npos);
  Reader wide("c", json{{"k", 4294967328LL}});
  EXPECT_EQ(wide.integer("k", 0, {0, std::numeric_limits<int64_t>::max()}), 4294967328LL);
}

TEST(ConfigReader, Ranges) {
  Reader r("backbone 'unet_swin'", json{{"swin_depth", -1}, {"w", 65}, {"lo", -3}});
  EXPECT_EQ(reader_error([&] { r.integer("swin_depth", 2, IntRange::at_least(0)); }),
            "backbone 'unet_swin': 'swin_depth' must be an integer >= 0, got -1");
  EXPECT_EQ(reader_error([&] { r.integer("w", 4, IntRange::between(1, 64)); }),
            "backbone 'unet_swin': 'w' must be an integer in [1, 64], got 65");
  EXPECT_EQ(reader_error([&] {
              r.integer("lo", 0, {std::numeric_limits<int32_t>::min(), -5});
            }),
            "backbone 'unet_swin': 'lo' must be an integer <= -5, got -3");
}

TEST(ConfigReader, NumbersAreFiniteAndInRange) {
  Reader r("backbone 'unet_swin'",
           json{{"mlp_ratio", std::nan("")}, {"inf", INFINITY}, {"eps", 0}, {"p", 1.5}, {"s", "4"}});
  EXPECT_EQ(reader_error([&] { r.number("mlp_ratio", 4); }),
            "backbone 'unet_swin': 'mlp_ratio' must be a finite number, got nan");
  EXPECT_EQ(reader_error([&] { r.number("inf", 4); }), "backbone 'unet_swin': 'inf' must be a finite number, got inf");
  EXPECT_EQ(reader_error([&] { r.number("eps", 1e-3, Range::above(0)); }),
            "backbone 'unet_swin': 'eps' must be a number > 0, got 0");
  EXPECT_EQ(reader_error([&] { r.number("p", 0, Range::between(0, 1)); }),
            "backbone 'unet_swin': 'p' must be a number in [0, 1], got 1.5");
  EXPECT_EQ(reader_error([&] { r.number("s", 0, Range::at_least(0)); }),
            "backbone 'unet_swin': 's' must be a number >= 0, got \"4\"");
}

TEST(ConfigReader, BooleansAndStrings) {
  Reader r("loss 'mse'", json{{"b", 1}, {"reduction", "avg"}, {"t", 3}});
  EXPECT_EQ(reader_error([&] { r.boolean("b", false); }), "loss 'mse': 'b' must be true or false, got 1");
  EXPECT_EQ(reader_error([&] {
              r.string("reduction", "mean", {"mean", "sum", "per_sample"});
            }),
            "loss 'mse': 'reduction' must be one of 'mean', 'sum', 'per_sample', got \"avg\"");
  EXPECT_EQ(reader_error([&] { r.string("t", ""); }), "loss 'mse': 't' must be a string, got 3");
}

TEST(ConfigReader, Lists) {
  Reader r("b", json{{"e", json::array()}, {"bad", {1, "2"}}, {"neg", {1, -2}}, {"scalar", 2}, {"obj", {{"a", 1}}}});
  EXPECT_EQ(reader_error([&] { r.integers("e", {1}, IntRange::at_least(1), 1, 8); }),
            "b: 'e' must be a list of 1 to 8 integers, got []");
  EXPECT_EQ(reader_error([&] { r.integers("bad", {}); }), "b: 'bad' entry 1 must be an integer, got \"2\"");
  EXPECT_EQ(reader_error([&] { r.integers("neg", {}, IntRange::at_least(0)); }),
            "b: 'neg' entry 1 must be an integer >= 0, got -2");
  EXPECT_NE(reader_error([&] { r.integers("scalar", {}); }).find("must be a list"), std::string::npos);
  EXPECT_NE(reader_error([&] { r.numbers("obj", {}); }).find("'obj' must be a list of at most"), std::string::npos);
}

TEST(ConfigReader, UnknownKeysRefusedNamingKeyAndKnownOnes) {
  Reader r("sampler 'ddpm'", json{{"steps", 10}, {"stpes", 4}});
  r.integer("steps", 1000);
  r.number("beta_start", 1e-4);
  EXPECT_EQ(reader_error([&] { r.finish(); }), "sampler 'ddpm': unknown key 'stpes' (known: beta_start, steps)");
  Reader none("codec 'x'", json{{"a", 1}});
  EXPECT_EQ(reader_error([&] { none.finish(); }), "codec 'x': unknown key 'a' (it takes no keys)");
}

TEST(ConfigReader, HasRawAndIgnoreCountAsKnown) {
  Reader r("c", json{{"use_fp16", true}, {"form", {1, "a"}}, {"lq_size", 64}});
  r.ignore({"use_fp16"});
  EXPECT_EQ(r.raw("form"), (json{1, "a"}));
  EXPECT_TRUE(r.has("lq_size"));
  EXPECT_TRUE(r.raw("absent").is_null());
  r.finish();
}

TEST(ConfigReader, NestedObjectsUsePathsAndShareFinish) {
  Reader r("codec 'vq_f4'", json::parse(R"({"embed_dim": 3, "ddconfig": {"ch": 33, "typo": 1}})"));
  r.integer("embed_dim", 3);
  Reader dd = r.object("ddconfig");
  EXPECT_EQ(reader_error([&] { dd.integer("ch", 128, IntRange::at_least(64)); }),
            "codec 'vq_f4': 'ddconfig.ch' must be an integer >= 64, got 33");
  EXPECT_EQ(reader_error([&] { r.finish(); }), "codec 'vq_f4': unknown key 'ddconfig.typo' (known: ch)");
  Reader bad("c", json{{"dd", 3}});
  EXPECT_EQ(reader_error([&] { bad.object("dd"); }), "c: 'dd' must be an object (a mapping), got 3");
  Reader absent("c", json::object());
  Reader sub = absent.object("dd");
  EXPECT_EQ(sub.integer("x", 7), 7);
  absent.finish();
}

TEST(ConfigReader, NotAnObject) {
  EXPECT_EQ(reader_error([] {
              Reader("loss 'l1'", json{1, 2});
            }),
            "loss 'l1': the config must be a JSON object (a mapping), got [1,2]");
}

TEST(ConfigReader, FailHelpersAndCodes) {
  Reader r("backbone 'b'", json::object());
  EXPECT_EQ(reader_error([&] { r.fail("dims", "must be 2", SINSR_ERR_UNSUPPORTED); }, SINSR_ERR_UNSUPPORTED),
            "backbone 'b': 'dims' must be 2");
  EXPECT_EQ(reader_error([&] { r.fail(std::string("channels do not split")); }), "backbone 'b': channels do not split");
}

TEST(ConfigReader, ErrorValuesAreShortAndValidText) {
  std::string longs(500, 'a');
  std::string bad_utf8 = "\xff\xfe";
  Reader r("c", json{{"a", longs}, {"b", bad_utf8}});
  std::string e = reader_error([&] { r.integer("a", 0); });
  EXPECT_LT(e.size(), 200u);
  EXPECT_NO_THROW(reader_error([&] { r.integer("b", 0); }));
}

TEST(ConfigSchema, Keys) {
  EXPECT_EQ(sinsr::config::schema_keys(R"({"a": {"type": "integer", "doc": "x"}, "b": {}})"),
            (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(sinsr::config::schema_keys("").empty());
  EXPECT_THROW(sinsr::config::schema_keys("[1]"), sinsr::sdk::Error);
}

}  // namespace
