// The config readers: text -> config::parse (JSON or YAML, bounded) -> each in-tree component's
// options reader, directly and through the official-YAML adapter. Only sdk::Error may escape.
#include "fuzz_common.hpp"

#include "backbones/unet_swin/unet_swin.hpp"
#include "codecs/vq_f4/vq_f4.hpp"
#include "losses/pointwise/losses.hpp"
#include "samplers/resshift/schedule.hpp"

#include <sinsr/config.hpp>

namespace {

using sinsr::config::json;
namespace official = sinsr::config::official;

// Every component reader on one params object.
void read_all(const json& p) {
  sinsr_fuzz::expect_sdk_errors_only("unet_swin", [&] { sinsr::unet_swin::Options::from_json(p); });
  sinsr_fuzz::expect_sdk_errors_only("vq_f4", [&] { sinsr::vq_f4::Options::from_json(p); });
  sinsr_fuzz::expect_sdk_errors_only("resshift", [&] {
    sinsr::resshift::ScheduleOptions o = sinsr::resshift::ScheduleOptions::from_json(p);
    // The schedule itself is cheap for the step counts the reader allows.
    if (o.steps <= 4096 && o.given_sqrt_etas.size() <= 4096) sinsr::resshift::Schedule s(o);
  });
  for (auto kind : {sinsr::losses::Kind::MSE, sinsr::losses::Kind::Charbonnier})
    sinsr_fuzz::expect_sdk_errors_only("pointwise", [&] { sinsr::losses::parse_options(kind, p); });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sinsr_fuzz::init_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  json j;
  try {
    j = sinsr::config::parse(text, "fuzz");
  } catch (const sinsr::sdk::Error&) {
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "parse: foreign exception escaped: %s\n", e.what());
    std::abort();
  }
  // The file system is not the input: a config_file key would read whatever path it names.
  if (j.is_object()) j.erase("config_file");
  read_all(j);
  for (auto section : {official::Section::Model, official::Section::Autoencoder, official::Section::Diffusion})
    sinsr_fuzz::expect_sdk_errors_only("official", [&] {
      read_all(official::params(j, section, {"image_size", "embed_dim", "ddconfig", "steps", "kappa", "scale_factor"}));
    });
  // Errors quote values: they must render whatever the text held.
  sinsr_fuzz::expect_sdk_errors_only("reader", [&] {
    sinsr::config::Reader r("fuzz", j.is_object() ? j : json::object());
    for (auto it = j.begin(); j.is_object() && it != j.end(); ++it) r.string(it.key(), "");
    r.finish();
  });
  return 0;
}
