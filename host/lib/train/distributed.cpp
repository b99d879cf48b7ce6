// Distributed over c10d from C++: rank 0 serves a TCPStore on MASTER_ADDR:MASTER_PORT, every
// rank builds a Gloo (or NCCL) process group on it, and gradients are averaged in flat buckets.
#include "train/distributed.hpp"

#include <sinsr/sdk.hpp>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

// The Gloo and NCCL headers are empty unless torch was built with them.
#if defined(USE_C10D_GLOO) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>) && \
    __has_include(<gloo/algorithm.h>)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#define SINSR_HAVE_GLOO 1
#endif
#if defined(SINSR_WITH_CUDA) && defined(USE_C10D_NCCL) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define SINSR_HAVE_NCCL 1
#endif

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <utility>

namespace sinsr {
namespace train {

using sdk::Error;

namespace {

constexpr std::chrono::seconds kDefaultRendezvousTimeout{300};
constexpr std::chrono::minutes kCollectiveTimeout{30};

// Collectives behind one interface: ProcessGroupGloo is a c10d::ProcessGroup in 1.13 and a
// c10d::Backend in 2.x, with the same collective signatures.
struct Comm {
  virtual ~Comm() = default;
  virtual void allreduce_sum(at::Tensor& t) = 0;
  virtual void broadcast(at::Tensor& t, int root) = 0;
  virtual void barrier() = 0;
  virtual bool wants_cuda() const = 0;
};

template <class PG>
struct CommOf : Comm {
  c10::intrusive_ptr<PG> pg;
  bool cuda;
  CommOf(c10::intrusive_ptr<PG> p, bool on_cuda) : pg(std::move(p)), cuda(on_cuda) {}
  void allreduce_sum(at::Tensor& t) override {
    std::vector<at::Tensor> v{t};
    c10d::AllreduceOptions o;  // SUM by default
    pg->allreduce(v, o)->wait();
  }
  void broadcast(at::Tensor& t, int root) override {
    std::vector<at::Tensor> v{t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    pg->broadcast(v, o)->wait();
  }
  void barrier() override { pg->barrier()->wait(); }
  bool wants_cuda() const override { return cuda; }
};

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v && *v) ? std::string(v) : fallback;
}

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v && *v;
}

int64_t env_int(const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  std::string s(v);
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end == s.c_str() || *end != '\0')
    throw Error(SINSR_ERR_INVALID_ARGUMENT,
                std::string("environment variable ") + name + "='" + s + "' is not an integer");
  if (x < lo || x > hi)
    throw Error(SINSR_ERR_INVALID_ARGUMENT, std::string("environment variable ") + name + "=" + s +
                                                " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                                "]");
  return x;
}

// c10::Error's what() carries a C++ backtrace; users need the first line.
std::string message_of(const std::exception& e) {
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

bool is_loopback(const std::string& addr) { return addr == "localhost" || addr == "::1" || addr.rfind("127.", 0) == 0; }

// Tensors of one dtype and device, packed together up to the bucket size.
struct Bucket {
  std::vector<at::Tensor> tensors;
  int64_t bytes = 0;
};

std::vector<Bucket> make_buckets(const std::vector<at::Tensor>& tensors, int64_t cap_bytes) {
  std::vector<Bucket> done;
  // Keyed by dtype and device so a bucket is one flat tensor; insertion order kept per key.
  std::map<std::pair<int, std::string>, Bucket> open;
  for (const auto& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    auto key = std::make_pair(int(t.scalar_type()), t.device().str());
    Bucket& b = open[key];
    b.tensors.push_back(t);
    b.bytes += int64_t(t.numel()) * int64_t(t.element_size());
    if (b.bytes >= cap_bytes) {
      done.push_back(std::move(b));
      open.erase(key);
    }
  }
  for (auto& kv : open) done.push_back(std::move(kv.second));
  return done;
}

at::Tensor flatten(const Bucket& b) {
  if (b.tensors.size() == 1 && b.tensors[0].is_contiguous()) return b.tensors[0].view({-1});
  std::vector<at::Tensor> flat;
  flat.reserve(b.tensors.size());
  for (const auto& t : b.tensors) flat.push_back(t.reshape({-1}));
  return at::cat(flat);
}

void unflatten(const at::Tensor& flat, const Bucket& b) {
  int64_t off = 0;
  for (const auto& t : b.tensors) {
    int64_t n = t.numel();
    at::Tensor part = flat.narrow(0, off, n).view(t.sizes());
    if (part.data_ptr() != t.data_ptr()) t.copy_(part);  // a lone contiguous tensor was reduced in place
    off += n;
  }
}

}  // namespace

struct Distributed::Impl {
  int rank = 0;
  int world = 1;
  int local_rank = 0;
  int cuda_device = 0;  // NCCL only
  std::string where;    // "MASTER_ADDR:MASTER_PORT", for messages
  c10::intrusive_ptr<c10d::Store> store;
  std::unique_ptr<Comm> comm;

  // Runs a collective; c10 errors (peer gone, timeout) become sdk errors naming the operation.
  template <class F>
  void run(const char* what, F&& f) {
    try {
      f();
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(SINSR_ERR_RUNTIME, std::string("distributed ") + what + " (rank " + std::to_string(rank) + "/" +
                                         std::to_string(world) + ", " + where + ") failed: " + message_of(e));
    }
  }

  // On a Gloo group a CUDA bucket travels through host memory.
  template <class Op>
  void on_comm_device(at::Tensor& flat, Op&& op) {
    if (flat.is_cuda() && !comm->wants_cuda()) {
      at::Tensor host = flat.to(at::kCPU);
      op(host);
      flat.copy_(host);
    } else {
      op(flat);
    }
  }
};

Distributed::Distributed() : impl_(new Impl) {}
Distributed::~Distributed() {
  if (impl_) {
    impl_->comm.reset();  // the group before the store it talks through
    impl_->store.reset();
  }
}

int Distributed::rank() const { return impl_->rank; }
int Distributed::world_size() const { return impl_->world; }
int Distributed::local_rank() const { return impl_->local_rank; }

std::unique_ptr<Distributed> Distributed::from_env(const std::string& backend) {
  if (backend != "auto" && backend != "gloo" && backend != "nccl")
    throw Error(SINSR_ERR_INVALID_ARGUMENT,
                "distributed backend '" + backend + "' is unknown; expected 'auto', 'gloo' or 'nccl'");
  std::unique_ptr<Distributed> d(new Distributed());
  auto& im = *d->impl_;
  const int64_t kMaxWorld = 1 << 20;
  im.world = int(env_int("WORLD_SIZE", 1, 1, kMaxWorld));
  if (im.world > 1 && !env_set("RANK"))
    throw Error(SINSR_ERR_INVALID_ARGUMENT,
                "environment variable RANK is not set but WORLD_SIZE=" + std::to_string(im.world));
  im.rank = int(env_int("RANK", 0, 0, kMaxWorld));
  if (im.rank >= im.world)
    throw Error(SINSR_ERR_INVALID_ARGUMENT, "environment variable RANK=" + std::to_string(im.rank) +
                                                " is not below WORLD_SIZE=" + std::to_string(im.world));
  im.local_rank = int(env_int("LOCAL_RANK", im.rank, 0, kMaxWorld));
  const std::string addr = env_or("MASTER_ADDR", "127.0.0.1");
  const int port = int(env_int("MASTER_PORT", c10d::TCPStoreOptions::kDefaultPort, 1, 65535));
  const auto rendezvous_timeout =
      std::chrono::seconds(env_int("SINSR_DIST_TIMEOUT", kDefaultRendezvousTimeout.count(), 1, 7 * 24 * 3600));
  im.where = "MASTER_ADDR=" + addr + " MASTER_PORT=" + std::to_string(port);
  if (im.world == 1) return d;

  bool use_nccl = false;
#ifdef SINSR_HAVE_NCCL
  use_nccl = backend == "nccl" || (backend == "auto" && at::hasCUDA() && c10::cuda::device_count() > 0);
#endif
  if (backend == "nccl" && !use_nccl)
    throw Error(SINSR_ERR_UNSUPPORTED, "distributed backend 'nccl' needs a CUDA build of LibTorch with NCCL");
#ifndef SINSR_HAVE_GLOO
  if (!use_nccl)
    throw Error(SINSR_ERR_UNSUPPORTED, "distributed backend 'gloo' is not available in this LibTorch build");
#endif

  const auto timeout_ms = std::chrono::duration_cast<std::chrono::milliseconds>(rendezvous_timeout);
  const std::string who =
      "distributed rendezvous of rank " + std::to_string(im.rank) + "/" + std::to_string(im.world) + " at " + im.where;
  const std::string limit = std::to_string(rendezvous_timeout.count()) + " s (SINSR_DIST_TIMEOUT)";
  try {
    c10d::TCPStoreOptions so;
    so.port = uint16_t(port);
    so.isServer = im.rank == 0;
    so.numWorkers = size_t(im.world);
    // TCPStore's own wait for workers gives up silently in 1.13; the key wait below throws.
    so.waitWorkers = false;
    so.timeout = timeout_ms;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(addr, so);
    im.store = c10::make_intrusive<c10d::PrefixStore>("sinsr", tcp);
  } catch (const std::exception& e) {
    throw Error(SINSR_ERR_RUNTIME, who + ": " + (im.rank == 0 ? "cannot serve" : "cannot reach") +
                                       " the store within " + limit + ": " + message_of(e));
  }
  try {
    im.store->set("arrived/" + std::to_string(im.rank), std::vector<uint8_t>{1});
    std::vector<std::string> keys;
    for (int r = 0; r < im.world; ++r) keys.push_back("arrived/" + std::to_string(r));
    im.store->wait(keys, timeout_ms);
  } catch (const std::exception& e) {
    throw Error(SINSR_ERR_RUNTIME, who + ": not all " + std::to_string(im.world) +
                                       " ranks (WORLD_SIZE) joined within " + limit + ": " + message_of(e));
  }

  im.run("process group creation", [&] {
#ifdef SINSR_HAVE_NCCL
    if (use_nccl) {
      im.cuda_device = im.local_rank % int(c10::cuda::device_count());
      c10::cuda::set_device(c10::DeviceIndex(im.cuda_device));
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = std::chrono::duration_cast<std::chrono::milliseconds>(kCollectiveTimeout);
      auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(im.store, im.rank, im.world, opts);
      im.comm = std::make_unique<CommOf<c10d::ProcessGroupNCCL>>(pg, true);
      return;
    }
#endif
#ifdef SINSR_HAVE_GLOO
    auto opts = c10d::ProcessGroupGloo::Options::create(
        std::chrono::duration_cast<std::chrono::milliseconds>(kCollectiveTimeout));
    // Single node: bind to the loopback address given; otherwise this host's own interface.
    if (is_loopback(addr))
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(addr));
    else if (env_set("GLOO_SOCKET_IFNAME"))
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(env_or("GLOO_SOCKET_IFNAME", "")));
    else
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(im.store, im.rank, im.world, opts);
    im.comm = std::make_unique<CommOf<c10d::ProcessGroupGloo>>(pg, false);
#endif
  });
  return d;
}

void Distributed::allreduce_mean(const std::vector<at::Tensor>& tensors, double bucket_mb) {
  if (impl_->world == 1) return;
  if (!(bucket_mb > 0)) throw Error(SINSR_ERR_INVALID_ARGUMENT, "allreduce_mean: bucket_mb must be > 0");
  for (const auto& t : tensors)
    if (t.defined() && !at::isFloatingType(t.scalar_type()))
      throw Error(SINSR_ERR_INVALID_ARGUMENT,
                  std::string("allreduce_mean: tensors must be floating point, got ") + c10::toString(t.scalar_type()));
  at::NoGradGuard no_grad;
  const double cap = std::min(bucket_mb * 1024.0 * 1024.0, double(std::numeric_limits<int64_t>::max() / 2));
  const double inv_world = 1.0 / double(impl_->world);
  for (auto& b : make_buckets(tensors, int64_t(cap))) {
    at::Tensor flat = flatten(b);
    impl_->run("allreduce",
               [&] { impl_->on_comm_device(flat, [&](at::Tensor& x) { impl_->comm->allreduce_sum(x); }); });
    flat.mul_(inv_world);
    unflatten(flat, b);
  }
}

void Distributed::broadcast(const std::vector<at::Tensor>& tensors) {
  if (impl_->world == 1) return;
  at::NoGradGuard no_grad;
  // Bool has no Gloo reduction type everywhere; it travels as uint8.
  std::vector<at::Tensor> sendable;
  std::vector<std::pair<at::Tensor, at::Tensor>> bools;
  for (const auto& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    if (t.scalar_type() == at::kBool) {
      at::Tensor u = t.to(at::kByte);
      bools.emplace_back(t, u);
      sendable.push_back(u);
    } else {
      sendable.push_back(t);
    }
  }
  for (auto& b : make_buckets(sendable, int64_t(25) << 20)) {
    at::Tensor flat = flatten(b);
    impl_->run("broadcast", [&] { impl_->on_comm_device(flat, [&](at::Tensor& x) { impl_->comm->broadcast(x, 0); }); });
    unflatten(flat, b);
  }
  for (auto& [orig, u] : bools) orig.copy_(u.to(at::kBool));
}

double Distributed::allreduce_sum(double value) {
  if (impl_->world == 1) return value;
  auto opts = at::TensorOptions().dtype(at::kDouble);
  if (impl_->comm->wants_cuda()) opts = opts.device(at::Device(at::kCUDA, c10::DeviceIndex(impl_->cuda_device)));
  at::Tensor t = at::full({1}, value, opts);
  impl_->run("allreduce_sum", [&] { impl_->comm->allreduce_sum(t); });
  return t.to(at::kCPU).item<double>();
}

void Distributed::barrier() {
  if (impl_->world == 1) return;
  impl_->run("barrier", [&] { impl_->comm->barrier(); });
}

}  // namespace train
}  // namespace sinsr
