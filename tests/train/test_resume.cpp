// Training runs as a user runs them: a run killed mid-way and resumed ends with exactly the
// weights of an uninterrupted run; a diverging run stops naming the step and the loss term and
// leaves the last checkpoint intact; the checkpoint loads for inference.
#include "host_run.hpp"
#include "parity.hpp"

#include <sinsr/checkpoint.hpp>

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

namespace fs = std::filesystem;

namespace {

using Result = sinsr_test::HostRun;

Result train(const std::string& out, const std::string& extra) {
  return sinsr_test::run_host("train --data " + sinsr_test::data_dir() + "/set5/hr --out " + out +
                              " --codec none --backbone-config " + sinsr_test::parity_file("tiny-unet.yaml") +
                              " --backbone-weights " + sinsr_test::parity_file("unet_tiny.pth") +
                              " --gt-size 32 --batch 2 --warmup 0 --threads 2 --log-every 1 " + extra);
}

std::string tmp(const std::string& name) { return sinsr_test::fresh_dir("train_" + name, false).string(); }

TEST(Training, KilledAndResumedEqualsUninterrupted) {
  if (!fs::exists(sinsr_test::data_dir() + "/set5/hr")) GTEST_SKIP();
  std::string a = tmp("a"), b = tmp("b");
  ASSERT_EQ(train(a, "--max-steps 4 --save-every 2 --lr 1e-3").code, 0);
  Result killed = train(b, "--max-steps 4 --save-every 2 --lr 1e-3 --crash-at 3");
  ASSERT_NE(killed.code, 0);  // aborted before step 3
  ASSERT_TRUE(fs::exists(b + "/ckpt_00000002.pth"));
  ASSERT_FALSE(fs::exists(b + "/ckpt_00000004.pth"));
  Result resumed = train(b, "--max-steps 4 --save-every 2 --lr 1e-3 --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed"), std::string::npos);
  auto wa = sinsr::ckpt::read_state_dict(a + "/ckpt_00000004.pth");
  auto wb = sinsr::ckpt::read_state_dict(b + "/ckpt_00000004.pth");
  ASSERT_EQ(wa.size(), wb.size());
  for (size_t i = 0; i < wa.size(); ++i) {
    EXPECT_EQ(wa[i].first, wb[i].first);
    EXPECT_TRUE(sinsr_test::all_close(wa[i].second, wb[i].second, 1e-7)) << wa[i].first;
  }
  // The weights moved (the comparison above is not between two untouched copies).
  auto init = sinsr::ckpt::read_state_dict(sinsr_test::parity_file("unet_tiny.pth"));
  std::map<std::string, at::Tensor> start(init.begin(), init.end());
  EXPECT_FALSE(wa[0].second.equal(start.at(wa[0].first)));
}

// A wall-time budget (a cluster job's limit, a lent GPU's minutes) pauses the run at a step with a
// checkpoint, off the --save-every period; the same line with --resume ends where an
// uninterrupted run ends.
TEST(Training, ATimeBudgetPausesWithACheckpointAndResumeFinishes) {
  if (!fs::exists(sinsr_test::data_dir() + "/set5/hr")) GTEST_SKIP();
  std::string a = tmp("budget_a"), b = tmp("budget_b");
  ASSERT_EQ(train(a, "--max-steps 5 --save-every 5 --lr 1e-3").code, 0);
  // 0.0001 min is 6 ms: used up by loading the data, so the first step is the last.
  Result paused = train(b, "--max-steps 5 --save-every 5 --lr 1e-3 --max-minutes 0.0001");
  ASSERT_EQ(paused.code, 0) << paused.output;
  EXPECT_NE(paused.output.find("paused: " + b + " at step 1 of 5 (--max-minutes 0.0001 used up)"), std::string::npos)
      << paused.output;
  EXPECT_TRUE(fs::exists(b + "/ckpt_00000001.pth"));
  EXPECT_TRUE(fs::exists(b + "/ema.pth"));
  EXPECT_FALSE(fs::exists(b + "/ckpt_00000005.pth"));
  Result resumed = train(b, "--max-steps 5 --save-every 5 --lr 1e-3 --resume --max-minutes 60");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("done: " + b + " (step 5)"), std::string::npos) << resumed.output;
  auto wa = sinsr::ckpt::read_state_dict(a + "/ckpt_00000005.pth");
  auto wb = sinsr::ckpt::read_state_dict(b + "/ckpt_00000005.pth");
  ASSERT_EQ(wa.size(), wb.size());
  for (size_t i = 0; i < wa.size(); ++i)
    EXPECT_TRUE(sinsr_test::all_close(wa[i].second, wb[i].second, 1e-7)) << wa[i].first;
}

// Validation scores the network the way it runs: a regression network through the `direct`
// sampler (it used to go unvalidated), a diffusion network through its sampler; both land in the
// log as `eval` would score them.
TEST(Training, ValidationScoresRegressionAndDiffusionRuns) {
  const std::string lr = sinsr_test::data_dir() + "/set5/lr_x4", hr = sinsr_test::data_dir() + "/set5/hr";
  if (!fs::exists(lr) || !fs::exists(hr)) GTEST_SKIP();
  for (const std::string objective : {"regress", "diffusion"}) {
    std::string out = tmp("val_" + objective);
    Result r = train(out, "--max-steps 2 --save-every 2 --lr 1e-3 --objective " + objective + " --val-lr " + lr +
                              " --val-hr " + hr + " --val-every 2 --val-limit 1 --sampler-config '{\"steps\": 2}'");
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("validation at step 2: "), std::string::npos) << objective << "\n" << r.output;
    std::ifstream log(out + "/train_log.jsonl");
    bool scored = false;
    for (std::string line; std::getline(log, line);) {
      auto j = nlohmann::json::parse(line);
      if (j.contains("val")) scored = j["val"].contains("psnr") && j["val"]["psnr"].get<double>() > 5;
    }
    EXPECT_TRUE(scored) << objective;
  }
}

TEST(Training, DivergenceStopsAndKeepsTheLastCheckpoint) {
  if (!fs::exists(sinsr_test::data_dir() + "/set5/hr")) GTEST_SKIP();
  std::string d = tmp("nan");
  Result r = train(d, "--max-steps 6 --save-every 1 --lr 1e30");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("loss term 'x0'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("step "), std::string::npos);
  std::string last;
  for (auto& e : fs::directory_iterator(d))
    if (e.path().filename().string().rfind("ckpt_", 0) == 0 && e.path().string() > last) last = e.path().string();
  ASSERT_FALSE(last.empty());
  EXPECT_NO_THROW(sinsr::ckpt::read_state_dict(last));  // intact and loadable
  EXPECT_NE(r.output.find(last), std::string::npos) << r.output;
}

// A fresh run never writes into an earlier one: refused unless resumed, or moved aside whole.
TEST(Training, AUsedRunFolderIsRefusedOrMovedAside) {
  if (!fs::exists(sinsr_test::data_dir() + "/set5/hr")) GTEST_SKIP();
  std::string d = tmp("used");
  fs::remove_all(d + ".old-1");
  ASSERT_EQ(train(d, "--max-steps 1 --save-every 1").code, 0);
  const std::string ckpt = d + "/ckpt_00000001.pth";
  auto before = fs::last_write_time(ckpt);
  Result again = train(d, "--max-steps 1 --save-every 1");
  EXPECT_EQ(again.code, 1) << again.output;
  EXPECT_NE(again.output.find("already holds a training run"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("--resume"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("--overwrite"), std::string::npos) << again.output;
  EXPECT_EQ(fs::last_write_time(ckpt), before);  // untouched

  Result over = train(d, "--max-steps 1 --save-every 1 --overwrite");
  ASSERT_EQ(over.code, 0) << over.output;
  EXPECT_TRUE(fs::exists(d + ".old-1/ckpt_00000001.pth"));  // the earlier run, whole
  EXPECT_TRUE(fs::exists(ckpt));
  fs::remove_all(d + ".old-1");
}

TEST(Training, RefusesNumbersTheLoopCannotUseByFlag) {
  // Each is refused before anything is loaded or written, naming the flag (no LibTorch trace).
  const std::pair<const char*, const char*> cases[] = {
      {"--batch 0", "--batch"},
      {"--lr -1e-4", "--lr"},
      {"--max-steps 0", "--max-steps"},
      {"--ema 1", "--ema"},
      {"--save-every 0", "--save-every"},
      {"--max-side -1", "--max-side"},
      {"--max-side 512,x", "--max-side"},
      {"--max-side 512,", "--max-side"},
      {"--lr-schedule linear", "--lr-schedule"},
      {"--lr-min 1", "--lr-min"},
      {"--max-minutes -1", "--max-minutes"},
  };
  for (const auto& [flags, name] : cases) {
    std::string out = tmp("refused");
    Result r = train(out, flags);
    EXPECT_EQ(r.code, 2) << flags << "\n" << r.output;
    EXPECT_NE(r.output.find(name), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("frame #"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(out)) << flags;
  }
}

}  // namespace

namespace {

// A run that was killed leaves temporary files, a half-written newest checkpoint and log lines
// past its last checkpoint: the next start removes the first, --resume falls back past the
// second with a warning, and the log holds each step once.
TEST(Training, ResumeCleansUpAfterAKilledRun) {
  if (!fs::exists(sinsr_test::data_dir() + "/set5/hr")) GTEST_SKIP();
  std::string d = tmp("killed");
  ASSERT_EQ(train(d, "--max-steps 3 --save-every 2 --lr 1e-3").code, 0);  // checkpoints at steps 2 and 3
  std::ofstream(d + "/ckpt_00000002.pth.tmp.4242.0") << "half a checkpoint";
  const auto good = fs::file_size(d + "/ckpt_00000002.pth");
  {  // the newest checkpoint cut short
    std::string bytes = sinsr_test::read_bytes(d + "/ckpt_00000003.pth");
    std::ofstream(d + "/ckpt_00000003.pth", std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  }
  Result r = train(d, "--max-steps 4 --save-every 2 --lr 1e-3 --resume");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("removed 1 temporary file"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ckpt_00000003.pth"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resumed from " + d + "/ckpt_00000002.pth at step 2"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(d + "/ckpt_00000002.pth.tmp.4242.0"));
  EXPECT_EQ(fs::file_size(d + "/ckpt_00000002.pth"), good);
  std::ifstream log(d + "/train_log.jsonl");
  std::map<int64_t, int> seen;
  for (std::string line; std::getline(log, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("losses")) ++seen[j["step"].get<int64_t>()];
  }
  for (int64_t s = 1; s <= 4; ++s) EXPECT_EQ(seen[s], 1) << "step " << s;
}

}  // namespace
