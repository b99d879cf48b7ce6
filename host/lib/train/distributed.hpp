// Data-parallel training through PyTorch's c10d from C++: Gloo on CPU, NCCL on CUDA. Ranks and
// rendezvous from RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

namespace sinsr {
namespace train {

class Distributed {
 public:
  // world_size 1 (or no WORLD_SIZE in the environment) gives a no-op group.
  static std::unique_ptr<Distributed> from_env(const std::string& backend = "auto");
  ~Distributed();

  int rank() const;
  int world_size() const;
  int local_rank() const;
  bool is_main() const { return rank() == 0; }

  // Averages gradients across ranks in place, in buckets of about bucket_mb megabytes.
  void allreduce_mean(const std::vector<at::Tensor>& tensors, double bucket_mb = 25.0);
  // Copies rank 0's values into every rank (initial weights, EMA, ...).
  void broadcast(const std::vector<at::Tensor>& tensors);
  // Sum of a scalar over ranks (loss logging).
  double allreduce_sum(double value);
  void barrier();

 private:
  Distributed();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace train
}  // namespace sinsr
