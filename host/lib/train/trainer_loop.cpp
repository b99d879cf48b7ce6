// run_training: data, per-step noise, logging, validation, checkpoints and data parallelism
// around a Trainer. Every random draw is a pure function of (seed, rank, step), so a resumed
// run continues exactly where an uninterrupted one would be.
#include "runtime/registry.hpp"
#include "runtime/seed.hpp"
#include "train/distributed.hpp"
#include "train/trainer.hpp"
#include "train/validation.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <regex>
#include <sstream>
#include <vector>

namespace sinsr {
namespace train {

namespace fs = std::filesystem;
using sdk::Error;
using sdk::require;

namespace {

std::string checkpoint_name(int64_t step) {
  std::ostringstream s;
  s << "ckpt_" << std::setw(8) << std::setfill('0') << step << ".pth";
  return s.str();
}

// Every checkpoint of a folder, newest first.
std::vector<std::string> checkpoints_newest_first(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  static const std::regex pattern("ckpt_[0-9]{8}\\.pth");
  for (auto& e : fs::directory_iterator(dir, ec))
    if (std::regex_match(e.path().filename().string(), pattern)) out.push_back(e.path().string());
  std::sort(out.rbegin(), out.rend());
  return out;
}

// The newest ckpt_*.pth in a folder, or "".
std::string latest_checkpoint(const std::string& dir) {
  const auto all = checkpoints_newest_first(dir);
  return all.empty() ? std::string() : all.front();
}

std::string format_eta(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  int64_t s = int64_t(seconds);
  std::ostringstream o;
  if (s >= 3600) o << s / 3600 << "h";
  o << std::setw(2) << std::setfill('0') << (s % 3600) / 60 << "m" << std::setw(2) << s % 60 << "s";
  return o.str();
}

// A folder holds a run when a checkpoint or a training log is in it.
std::string run_evidence(const std::string& dir) {
  std::string ckpt = latest_checkpoint(dir);
  if (!ckpt.empty()) return ckpt;
  std::error_code ec;
  fs::path log = fs::path(dir) / "train_log.jsonl";
  return fs::exists(log, ec) ? log.string() : std::string();
}

// Renames dir to the first free "<dir>.old-N"; nothing is deleted.
std::string move_aside(const std::string& dir) {
  std::string base = fs::path(dir).lexically_normal().string();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  for (int n = 1; n < 10000; ++n) {
    std::string target = base + ".old-" + std::to_string(n);
    std::error_code ec;
    if (fs::exists(target, ec)) continue;
    fs::rename(base, target, ec);
    if (ec) throw Error(SINSR_ERR_IO, dir + ": cannot move the earlier run aside to " + target + ": " + ec.message());
    return target;
  }
  throw Error(SINSR_ERR_IO, dir + ": no free name to move the earlier run aside");
}

// Temporary files a killed run left in its folder (sinsr::ckpt writes "<name>.tmp.<pid>.<n>" and
// renames it): no run is writing there when a new one starts, so they are removed.
size_t remove_stale_temporaries(const std::string& dir) {
  static const std::regex pattern(".+\\.pth\\.tmp\\.[0-9]+\\.[0-9]+");
  std::error_code ec;
  size_t n = 0;
  for (auto& e : fs::directory_iterator(dir, ec))
    if (std::regex_match(e.path().filename().string(), pattern) && fs::remove(e.path(), ec)) ++n;
  return n;
}

// The log keeps the lines of the steps the resumed run will not repeat: a run killed after its
// last checkpoint logged steps that the resumed run logs again.
void truncate_log(const fs::path& log, int64_t last_step) {
  std::ifstream in(log);
  if (!in) return;
  std::vector<std::string> kept;
  bool dropped = false;
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() > last_step)
      dropped = true;
    else
      kept.push_back(line);
  }
  in.close();
  if (!dropped) return;
  const fs::path tmp = log.string() + ".rewrite";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (auto& l : kept) out << l << "\n";
    if (!out) throw Error(SINSR_ERR_IO, log.string() + ": cannot rewrite the training log");
  }
  fs::rename(tmp, log);
}

}  // namespace

TrainingReport run_training(host::Runtime& runtime, TrainerOptions options, LoopOptions loop) {
  const auto t_call = std::chrono::steady_clock::now();  // the budget counts data loading too
  TrainingReport report;
  auto dist = Distributed::from_env(loop.backend);
  const bool main_rank = dist->is_main();
  if (dist->world_size() > 1 && options.device.rfind("cuda", 0) == 0 && options.device == "cuda")
    options.device = "cuda:" + std::to_string(dist->local_rank());
  // Validation samples through the sampler; a regression run has no chain to sample.

  std::error_code ec;
  if (main_rank && loop.resume.empty()) {
    std::string used = run_evidence(loop.out_dir);
    if (!used.empty() && loop.existing == LoopOptions::Existing::Refuse)
      throw RunInUse(SINSR_ERR_INVALID_ARGUMENT, loop.out_dir + " already holds a training run (" + used + ")");
    if (!used.empty()) report.moved_aside = move_aside(loop.out_dir);
  }
  if (main_rank) {
    fs::create_directories(loop.out_dir, ec);
    if (ec) throw Error(SINSR_ERR_IO, loop.out_dir + ": cannot create the output folder: " + ec.message());
  }
  if (main_rank)
    if (size_t n = remove_stale_temporaries(loop.out_dir))
      host::log(SINSR_LOG_INFO, "train",
                "removed " + std::to_string(n) + " temporary file(s) a stopped run left in " + loop.out_dir);
  at::manual_seed(options.seed);  // networks without weights start from a seeded initialisation
  Trainer trainer(runtime, options);

  if (loop.resume == "auto") {
    // The newest checkpoint that reads; a damaged one (a kill mid-write on a filesystem without
    // atomic rename, a full disk) is named and the one before it taken.
    const auto all = checkpoints_newest_first(loop.out_dir);
    bool loaded = all.empty();
    for (const auto& ckpt : all) {
      try {
        trainer.load(ckpt);
        if (main_rank)
          host::log(SINSR_LOG_INFO, "train",
                    "resumed from " + ckpt + " at step " + std::to_string(trainer.iteration()));
        loaded = true;
        break;
      } catch (const Error& e) {
        if (main_rank)
          host::log(SINSR_LOG_WARNING, "train", std::string(e.what()) + "; trying the checkpoint before it");
      }
    }
    require(loaded, SINSR_ERR_FORMAT, loop.out_dir + ": no checkpoint there can be read; nothing to resume");
  } else if (!loop.resume.empty()) {
    trainer.load(loop.resume);
    if (main_rank)
      host::log(SINSR_LOG_INFO, "train",
                "resumed from " + loop.resume + " at step " + std::to_string(trainer.iteration()));
  }
  if (main_rank && trainer.iteration() > 0)
    truncate_log(fs::path(loop.out_dir) / "train_log.jsonl", trainer.iteration());
  if (dist->world_size() > 1) {
    // Every rank starts from rank 0's weights, then averages gradients before each update.
    std::vector<at::Tensor> values;
    for (auto& s : trainer.model().state()) values.push_back(s.value);
    dist->broadcast(values);
    trainer.set_gradient_hook([&](const std::vector<at::Tensor>& grads) { dist->allreduce_mean(grads); });
  }

  DatasetOptions data = loop.data;
  data.scale = options.scale;
  data.seed = options.seed;
  data.rank = dist->rank();
  data.world_size = dist->world_size();
  Dataset dataset(data);
  require(dataset.size() > 0, SINSR_ERR_NOT_FOUND, "no usable training images for this rank");

  std::ofstream log;
  if (main_rank) {
    log.open(fs::path(loop.out_dir) / "train_log.jsonl", std::ios::app);
    if (!log) throw Error(SINSR_ERR_IO, loop.out_dir + "/train_log.jsonl: cannot open for writing");
  }
  auto t_start = std::chrono::steady_clock::now();
  const int64_t first = trainer.iteration() + 1;
  for (int64_t step = first; step <= loop.max_steps; ++step) {
    if (loop.crash_at == step) std::abort();  // test hook: a hard kill between two steps
    Batch batch = dataset.batch(step);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(
        mix_seed(options.seed, mix_seed(uint64_t(dist->rank()), uint64_t(step))));
    StepResult r;
    try {
      r = trainer.step(batch.lr, batch.hr, Draws::from(gen));
    } catch (const Error& e) {
      std::string last = latest_checkpoint(loop.out_dir);
      throw Error(e.code(), std::string("training stopped: ") + e.what() +
                                (last.empty() ? std::string() : "; the last checkpoint is intact: " + last));
    }
    if (dist->world_size() > 1)
      for (auto& [k, v] : r.losses) v = dist->allreduce_sum(v) / dist->world_size();

    if (main_rank && (step % loop.log_every == 0 || step == loop.max_steps || step == first)) {
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
      double its = double(step - first + 1) / std::max(secs, 1e-9);
      std::ostringstream line;
      line << "step " << step << "/" << loop.max_steps << "  " << std::fixed << std::setprecision(2) << its << " it/s";
      for (auto& [k, v] : r.losses) line << "  " << k << " " << std::scientific << std::setprecision(4) << v;
      line << "  lr " << std::scientific << std::setprecision(2) << r.lr << "  eta "
           << format_eta(double(loop.max_steps - step) / its);
      std::cerr << line.str() << "\n";
      json j = {{"step", step}, {"lr", r.lr}, {"it_per_s", its}, {"losses", r.losses}};
      log << j.dump() << "\n" << std::flush;
    }
    if (main_rank && trainer.can_validate() && loop.val_every > 0 && step % loop.val_every == 0 &&
        !loop.val_lr.empty()) {
      auto v = validate(trainer, options, loop.val_lr, loop.val_hr, loop.val_limit);
      std::cerr << "validation at step " << step << ": " << v.summary << "\n";
      log << json{{"step", step}, {"val", v.metrics}}.dump() << "\n" << std::flush;
    }
    // Every rank stops at the same step: one rank alone out of time would leave the others
    // waiting in the next all-reduce.
    bool out_of_time = false;
    if (loop.max_seconds > 0 && step < loop.max_steps) {
      out_of_time =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t_call).count() >= loop.max_seconds;
      if (dist->world_size() > 1) out_of_time = dist->allreduce_sum(out_of_time ? 1.0 : 0.0) > 0;
    }
    if (main_rank && (step % loop.save_every == 0 || step == loop.max_steps || out_of_time)) {
      std::string path = (fs::path(loop.out_dir) / checkpoint_name(step)).string();
      trainer.save(path, loop.config);
      trainer.save_ema((fs::path(loop.out_dir) / "ema.pth").string());
      report.last_checkpoint = path;
    }
    report.last_step = step;
    if (out_of_time) {
      report.out_of_time = true;
      break;
    }
  }
  dist->barrier();
  if (report.last_step == 0) report.last_step = trainer.iteration();
  return report;
}

}  // namespace train
}  // namespace sinsr
