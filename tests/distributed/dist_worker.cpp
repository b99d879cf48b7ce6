// One rank of a distributed test: reads RANK/WORLD_SIZE/MASTER_* from the environment, runs the
// collectives of <mode> and writes inputs and results to <out.pth> for the parent test to check.
//   dist_worker collectives <out.pth>   allreduce_mean in several buckets, broadcast, allreduce_sum
//   dist_worker sgd <out.pth>           a few SGD steps of a linear model on this rank's share
//   dist_worker init <out.pth>          rendezvous and a barrier only
#include "train/distributed.hpp"

#include <sinsr/checkpoint.hpp>
#include <sinsr/sdk.hpp>

#include <ATen/ATen.h>

#include <iostream>
#include <string>

namespace {

using sinsr::ckpt::StateDict;
using sinsr::train::Distributed;

void collectives(Distributed& d, StateDict& out) {
  const int r = d.rank();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 + r);
  auto f32 = at::TensorOptions().dtype(at::kFloat);
  auto f64 = at::TensorOptions().dtype(at::kDouble);
  // Sizes chosen so a 0.01 MB bucket holds some tensors together and splits at others.
  at::Tensor small = at::randn({300}, gen, f32);
  at::Tensor dbl = at::randn({7, 5}, gen, f64);
  at::Tensor big = at::randn({70000}, gen, f32);
  at::Tensor square = at::randn({6, 8}, gen, f32);
  at::Tensor transposed = square.t();  // non-contiguous view
  at::Tensor wide = at::randn({10, 20}, gen, f32);
  at::Tensor slice = wide.narrow(1, 5, 10);  // view into the middle of a larger tensor
  at::Tensor grad_like = at::randn({3, 3}, gen, f32).requires_grad_(true);
  at::Tensor undefined;
  at::Tensor empty = at::zeros({0}, f32);
  std::vector<at::Tensor> ts{small, dbl, big, transposed, slice, grad_like, undefined, empty};
  const char* names[] = {"small", "dbl", "big", "transposed", "slice", "grad_like"};
  for (int i = 0; i < 6; ++i) out.emplace_back(std::string("in.") + names[i], ts[i].detach().clone());
  out.emplace_back("in.wide", wide.clone());
  d.allreduce_mean(ts, 0.01);
  for (int i = 0; i < 6; ++i) out.emplace_back(std::string("out.") + names[i], ts[i].detach().clone());
  out.emplace_back("out.wide", wide.clone());
  out.emplace_back("out.square", square.clone());

  at::Tensor b_long = at::arange(16, at::TensorOptions().dtype(at::kLong)).reshape({4, 4}) + 100 * r;
  at::Tensor b_bool = at::full({5}, r == 0, at::TensorOptions().dtype(at::kBool));
  at::Tensor b_float = at::randn({2, 3}, gen, f32);
  at::Tensor b_view = at::randn({4, 6}, gen, f32).t();
  std::vector<at::Tensor> bs{b_long, b_bool, b_float, b_view};
  const char* bnames[] = {"long", "bool", "float", "view"};
  for (int i = 0; i < 4; ++i) out.emplace_back(std::string("bin.") + bnames[i], bs[i].clone());
  d.broadcast(bs);
  for (int i = 0; i < 4; ++i) out.emplace_back(std::string("bout.") + bnames[i], bs[i].clone());

  out.emplace_back("sum", at::full({1}, d.allreduce_sum(r + 1.5), f64));
  d.barrier();
}

void sgd(Distributed& d, StateDict& out) {
  const int64_t N = 8;
  const double lr = 0.1;
  auto f32 = at::TensorOptions().dtype(at::kFloat);
  auto data_gen = at::make_generator<at::CPUGeneratorImpl>(42);
  at::Tensor X = at::randn({N, 3}, data_gen, f32), Y = at::randn({N, 4}, data_gen, f32);
  // Different initial weights per rank: the broadcast must make them rank 0's.
  auto init_gen = at::make_generator<at::CPUGeneratorImpl>(100 + d.rank());
  at::Tensor W = at::randn({4, 3}, init_gen, f32).requires_grad_(true);
  at::Tensor b = at::randn({4}, init_gen, f32).requires_grad_(true);
  d.broadcast({W, b});
  const int64_t per = N / d.world_size();
  at::Tensor x = X.narrow(0, d.rank() * per, per), y = Y.narrow(0, d.rank() * per, per);
  for (int step = 0; step < 5; ++step) {
    at::Tensor loss = (at::matmul(x, W.t()) + b - y).pow(2).sum(1).mean();
    loss.backward();
    d.allreduce_mean({W.mutable_grad(), b.mutable_grad()}, 1e-5);
    at::NoGradGuard no_grad;
    W.sub_(lr * W.grad());
    b.sub_(lr * b.grad());
    W.mutable_grad().zero_();
    b.mutable_grad().zero_();
  }
  out.emplace_back("W", W.detach().clone());
  out.emplace_back("b", b.detach().clone());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: dist_worker collectives|sgd|init <out.pth>\n";
    return 2;
  }
  const std::string mode = argv[1];
  try {
    auto d = Distributed::from_env("gloo");
    StateDict out;
    out.emplace_back("rank", at::full({1}, int64_t(d->rank())));
    out.emplace_back("world_size", at::full({1}, int64_t(d->world_size())));
    out.emplace_back("local_rank", at::full({1}, int64_t(d->local_rank())));
    if (mode == "collectives")
      collectives(*d, out);
    else if (mode == "sgd")
      sgd(*d, out);
    else if (mode == "init")
      d->barrier();
    else
      throw std::runtime_error("unknown mode " + mode);
    sinsr::ckpt::save_state_dict(argv[2], out);
  } catch (const std::exception& e) {
    std::cerr << "dist_worker: " << e.what() << "\n";
    return 3;
  }
  return 0;
}
