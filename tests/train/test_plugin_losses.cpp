// Losses that follow the header and nothing more train: the C loss (an ABI 1.0 plugin) and the
// out-of-tree example both return a 0-d batch loss, and `sinsr-host train` runs with either.
// The EMA it writes averages every floating tensor and leaves integer tables out.
#include "host_run.hpp"
#include "parity.hpp"

#include <sinsr/checkpoint.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

namespace fs = std::filesystem;

namespace {

sinsr_test::HostRun train_with(const std::string& loss, const std::string& out) {
  return sinsr_test::run_host("train --data " + sinsr_test::data_dir() + "/set5/hr --out " + out +
                              " --plugin " SINSR_TEST_PLUGIN_DIR "/" + loss + ".so --loss-x0 " + loss +
                              " --codec none --backbone-config " + sinsr_test::parity_file("tiny-unet.yaml") +
                              " --backbone-weights " + sinsr_test::parity_file("unet_tiny.pth") +
                              " --gt-size 32 --batch 2 --warmup 0 --threads 1 --log-every 1 --max-steps 2"
                              " --save-every 2 --lr 1e-3");
}

void expect_trains(const std::string& loss) {
  if (!fs::exists(sinsr_test::data_dir() + "/set5/hr")) GTEST_SKIP() << "no Set5 in " << sinsr_test::data_dir();
  std::string out = sinsr_test::fresh_dir("loss_" + loss, false).string();
  auto r = train_with(loss, out);
  ASSERT_EQ(r.code, 0) << r.output;

  // Every step logged a finite, positive x0 term.
  std::ifstream log(out + "/train_log.jsonl");
  std::string line;
  int steps = 0;
  while (std::getline(log, line)) {
    auto j = nlohmann::json::parse(line);
    if (!j.contains("losses")) continue;
    double x0 = j["losses"]["x0"].get<double>();
    EXPECT_TRUE(std::isfinite(x0) && x0 > 0) << line;
    ++steps;
  }
  EXPECT_EQ(steps, 2);

  // The weights moved.
  auto trained = sinsr::ckpt::read_state_dict(out + "/ckpt_00000002.pth");
  auto init = sinsr::ckpt::read_state_dict(sinsr_test::parity_file("unet_tiny.pth"));
  std::map<std::string, at::Tensor> start(init.begin(), init.end());
  bool moved = false;
  for (auto& [name, value] : trained)
    if (start.count(name) && value.is_floating_point()) moved = moved || !value.equal(start.at(name));
  EXPECT_TRUE(moved);

  // EMA: exactly the floating entries of the state (float buffers included), no integer table.
  c10::IValue root = sinsr::ckpt::read_file(out + "/ckpt_00000002.pth");
  auto dict = root.toGenericDict();
  std::set<std::string> ema, floating;
  for (auto& kv : dict.at("ema").toGenericDict()) {
    EXPECT_TRUE(kv.value().toTensor().is_floating_point()) << kv.key().toStringRef();
    ema.insert(kv.key().toStringRef());
  }
  for (auto& kv : dict.at("state_dict").toGenericDict())
    if (kv.value().toTensor().is_floating_point()) floating.insert(kv.key().toStringRef());
  EXPECT_EQ(ema, floating);
  EXPECT_GT(dict.at("state_dict").toGenericDict().size(), floating.size());  // the Swin index tables
}

TEST(PluginLosses, TheCLossTrains) { expect_trains("l1_c"); }
TEST(PluginLosses, TheExampleLossTrains) { expect_trains("example_l2"); }

}  // namespace
