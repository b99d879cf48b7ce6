// The ABI end to end: refusals, errors crossing as statuses, DLPack ownership, and training a
// backbone through the C function tables with a loss written in C.
#include "runtime/runtime.hpp"
#include "tiny_convnet.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using sinsr::host::BackboneHandle;
using sinsr::host::LossHandle;
using sinsr::host::Runtime;

namespace {

std::string test_plugin(const std::string& name) { return std::string(SINSR_TEST_PLUGIN_DIR) + "/" + name + ".so"; }

// Loading must fail with `code` and a message containing `needle`; returns the message.
std::string expect_refused(Runtime& rt, const std::string& path, sinsr_code code, const std::string& needle) {
  size_t before = rt.components().size();
  try {
    rt.load(path);
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_EQ(rt.components().size(), before) << "a refused plugin changed the registry";
    return e.what();
  }
  ADD_FAILURE() << path << " was not refused";
  return "";
}

std::atomic<int> g_made{0}, g_freed{0};

// A DLPack view of t whose deleter is counted (and forwards to LibTorch's).
DLManagedTensor* counted(const at::Tensor& t) {
  DLManagedTensor* inner = at::toDLPack(t);
  auto* outer = new DLManagedTensor(*inner);
  outer->manager_ctx = inner;
  outer->deleter = [](DLManagedTensor* self) {
    auto* in = static_cast<DLManagedTensor*>(self->manager_ctx);
    in->deleter(in);
    delete self;
    ++g_freed;
  };
  ++g_made;
  return outer;
}

void release(DLManagedTensor* m) {
  if (m) m->deleter(m);
}

}  // namespace

TEST(PluginRefusal, EachDefectIsRefusedWithAClearMessage) {
  Runtime rt(1);
  expect_refused(rt, test_plugin("does_not_exist"), SINSR_ERR_NOT_FOUND, "not found");
  expect_refused(rt, test_plugin("bad_major"), SINSR_ERR_ABI,
                 "built for ABI 2.0, this host implements ABI " + std::to_string(SINSR_ABI_VERSION_MAJOR) + "." +
                     std::to_string(SINSR_ABI_VERSION_MINOR));
  expect_refused(rt, test_plugin("small_info"), SINSR_ERR_ABI, "descriptor struct too small");
  expect_refused(rt, test_plugin("small_component"), SINSR_ERR_ABI, "component struct too small");
  expect_refused(rt, test_plugin("unknown_kind"), SINSR_ERR_FORMAT, "unknown kind 42");
  expect_refused(rt, test_plugin("small_vtable"), SINSR_ERR_ABI, "function table too small");
  expect_refused(rt, test_plugin("no_entry"), SINSR_ERR_FORMAT, "no sinsr_plugin_entry symbol");
  expect_refused(rt, test_plugin("entry_fails"), SINSR_ERR_RUNTIME, "missing licence file");

  fs::path text = fs::temp_directory_path() / "sinsr_not_a_library.so";
  std::ofstream(text) << "this is not an ELF file\n";
  expect_refused(rt, text.string(), SINSR_ERR_FORMAT, "not a shared library");
  fs::remove(text);

  // The host carries on: a good plugin still loads and works.
  rt.load(test_plugin("l1_c"));
  LossHandle l1(rt.find(SINSR_KIND_LOSS, "l1_c"), {});
  auto v = l1.forward(at::ones({4}), at::zeros({4}));
  EXPECT_FLOAT_EQ(v.item<float>(), 1.0f);
}

TEST(PluginRefusal, DuplicateNamesNameBothFiles) {
  Runtime rt(1);
  rt.load(test_plugin("l1_c"));
  std::string msg =
      expect_refused(rt, test_plugin("duplicate_l1"), SINSR_ERR_INVALID_ARGUMENT, "two loss components named 'l1_c'");
  EXPECT_NE(msg.find("l1_c.so"), std::string::npos) << msg;
  EXPECT_NE(msg.find("duplicate_l1.so"), std::string::npos) << msg;
}

TEST(PluginRefusal, FolderLoadKeepsTheGoodOnes) {
  Runtime rt(1);
  try {
    rt.load(SINSR_TEST_PLUGIN_DIR);
    FAIL() << "the folder holds broken plugins";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad_major.so"), std::string::npos) << e.what();
  }
  EXPECT_NE(rt.find_or_null(SINSR_KIND_BACKBONE, "tiny_convnet"), nullptr);
  EXPECT_NE(rt.find_or_null(SINSR_KIND_LOSS, "l1_c"), nullptr);
}

TEST(PluginErrors, CreateFailureIsAStatus) {
  Runtime rt(1);
  rt.load(test_plugin("create_fails"));
  try {
    LossHandle h(rt.find(SINSR_KIND_LOSS, "broken"), {});
    FAIL() << "create should fail";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("refusing to create: bad config"), std::string::npos) << e.what();
  }
}

TEST(PluginErrors, ThrowingForwardBecomesAStatusAndTheHostCarriesOn) {
  Runtime rt(1);
  rt.load(test_plugin("test_components"));
  BackboneHandle thrower(rt.find(SINSR_KIND_BACKBONE, "thrower"), {});
  for (int i = 0; i < 2; ++i) {
    try {
      thrower.forward(at::zeros({1, 3, 4, 4}), at::zeros({1, 3, 4, 4}), at::zeros({1}, at::kLong));
      FAIL() << "forward should fail";
    } catch (const sinsr::sdk::Error& e) {
      EXPECT_EQ(e.code(), SINSR_ERR_RUNTIME);
      EXPECT_NE(std::string(e.what()).find("boom in forward"), std::string::npos) << e.what();
    }
  }
  BackboneHandle net(rt.find(SINSR_KIND_BACKBONE, "tiny_convnet"), {});
  auto y = net.forward(at::zeros({1, 3, 4, 4}), at::zeros({1, 3, 4, 4}), at::zeros({1}, at::kLong));
  EXPECT_EQ(y.sizes(), (at::IntArrayRef{1, 3, 4, 4}));
}

TEST(PluginErrors, NullPointersAndSmallStructsAreErrors) {
  Runtime rt(1);
  rt.load(test_plugin("test_components"));
  const sinsr_host_api* host = sinsr::host::host_api();
  auto* vt = static_cast<const sinsr_backbone_vtable*>(rt.find(SINSR_KIND_BACKBONE, "tiny_convnet")->desc->vtable);
  sinsr_backbone* self = nullptr;
  ASSERT_EQ(vt->create("{}", &self), nullptr);

  int freed_before = g_freed;
  sinsr_status* st = vt->forward(self, nullptr, counted(at::zeros({1, 3, 4, 4})), counted(at::zeros({1, 3, 4, 4})),
                                 counted(at::zeros({1}, at::kLong)), nullptr, nullptr);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(host->status_code(st), SINSR_ERR_INVALID_ARGUMENT);
  host->status_release(st);
  EXPECT_EQ(g_freed - freed_before, 3) << "a failing call must still release its inputs";

  DLManagedTensor* out = nullptr;
  st = vt->forward(nullptr, nullptr, nullptr, nullptr, nullptr, &out, nullptr);
  ASSERT_NE(st, nullptr);
  host->status_release(st);

  sinsr_named_tensor nt{};
  nt.struct_size = 4;
  st = vt->state_get(self, 0, &nt);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(host->status_code(st), SINSR_ERR_ABI);
  host->status_release(st);
  st = vt->state_get(self, 0, nullptr);
  ASSERT_NE(st, nullptr);
  host->status_release(st);
  st = vt->create("{not json", &self);
  ASSERT_NE(st, nullptr);
  host->status_release(st);
  vt->destroy(self);

  // The host C API checks its arguments too.
  EXPECT_NE(sinsr_runtime_create(nullptr, nullptr), nullptr);
  sinsr_runtime_options small{};
  small.struct_size = 2;
  sinsr_runtime* r = nullptr;
  sinsr_status* s = sinsr_runtime_create(&small, &r);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(sinsr_status_code(s), SINSR_ERR_ABI);
  EXPECT_NE(std::string(sinsr_last_error()).find("struct_size"), std::string::npos);
  sinsr_status_release(s);
  EXPECT_EQ(r, nullptr);
}

TEST(DLPackOwnership, EveryDeleterRunsExactlyOnce) {
  Runtime rt(1);
  rt.load(test_plugin("test_components"));
  rt.load(test_plugin("l1_c"));
  auto* bvt = static_cast<const sinsr_backbone_vtable*>(rt.find(SINSR_KIND_BACKBONE, "tiny_convnet")->desc->vtable);
  auto* lvt = static_cast<const sinsr_loss_vtable*>(rt.find(SINSR_KIND_LOSS, "l1_c")->desc->vtable);
  const sinsr_host_api* host = sinsr::host::host_api();
  sinsr_backbone* net = nullptr;
  sinsr_loss* loss = nullptr;
  ASSERT_EQ(bvt->create("{}", &net), nullptr);
  ASSERT_EQ(lvt->create("{}", &loss), nullptr);
  g_made = 0;
  g_freed = 0;
  {
    at::Tensor x = at::randn({2, 3, 8, 8}), c = at::randn({2, 3, 8, 8}), t = at::tensor({1, 5}, at::kLong);
    for (int i = 0; i < 3; ++i) {
      DLManagedTensor* out = nullptr;
      sinsr_tape* tape = nullptr;
      ASSERT_EQ(bvt->forward(net, nullptr, counted(x), counted(c), counted(t), &out, &tape), nullptr);
      DLManagedTensor* lv = nullptr;
      sinsr_tape* ltape = nullptr;
      // The loss keeps pred/target alive in its tape until backward.
      ASSERT_EQ(
          lvt->forward(loss, nullptr, counted(sinsr::sdk::from_dlpack(out)), counted(at::zeros_like(x)), &lv, &ltape),
          nullptr);
      release(lv);
      DLManagedTensor* gpred = nullptr;
      ASSERT_EQ(lvt->backward(loss, nullptr, ltape, counted(at::ones({})), &gpred), nullptr);
      DLManagedTensor *gx = nullptr, *gc = nullptr;
      ASSERT_EQ(bvt->backward(net, nullptr, tape, counted(sinsr::sdk::from_dlpack(gpred)), &gx, &gc), nullptr);
      EXPECT_NE(gx, nullptr);
      EXPECT_NE(gc, nullptr);
      release(gx);
      release(gc);
      // A tape released without backward frees what it holds.
      ASSERT_EQ(bvt->forward(net, nullptr, counted(x), counted(c), counted(t), &out, &tape), nullptr);
      release(out);
      bvt->tape_release(net, tape);
      // Error paths consume inputs as well.
      sinsr_status* st = lvt->forward(loss, nullptr, counted(at::ones({3})), counted(at::ones({4})), &lv, nullptr);
      ASSERT_NE(st, nullptr);
      host->status_release(st);
    }
  }
  EXPECT_GT(g_made.load(), 0);
  EXPECT_EQ(g_made.load(), g_freed.load());
  bvt->destroy(net);
  lvt->destroy(loss);
}

// The host trains the conv net through the ABI (tape forward, C loss forward/backward,
// backbone backward, an optimizer over the zero-copy parameter views); the same net trained
// directly with LibTorch autograd must end with the same parameters.
TEST(TrainingAcrossAbi, MatchesDirectAutograd) {
  const int steps = 6;
  const double lr = 0.05, momentum = 0.9;
  at::manual_seed(7);
  std::vector<at::Tensor> xs, cs, ts, ys;
  for (int i = 0; i < steps; ++i) {
    xs.push_back(at::randn({2, 3, 8, 8}));
    cs.push_back(at::randn({2, 3, 8, 8}));
    ts.push_back(at::randint(0, 15, {2}, at::kLong));
    ys.push_back(at::randn({2, 3, 8, 8}));
  }

  Runtime rt(1);
  rt.load(test_plugin("test_components"));
  rt.load(test_plugin("l1_c"));
  BackboneHandle net(rt.find(SINSR_KIND_BACKBONE, "tiny_convnet"), {{"seed", 3}});
  LossHandle l1(rt.find(SINSR_KIND_LOSS, "l1_c"), {});
  net.set_training(true);
  std::map<std::string, at::Tensor> velocity;
  at::Tensor first_input_grad;
  for (int i = 0; i < steps; ++i) {
    net.zero_grad();
    auto fwd = net.forward_train(xs[i], cs[i], ts[i]);
    auto lf = l1.forward_train(fwd.first, ys[i]);
    at::Tensor g = l1.backward(std::move(lf.second), at::ones({}));
    auto in_grads = net.backward(std::move(fwd.second), g, /*want_input_grads=*/true);
    if (i == 0) first_input_grad = in_grads.first.clone();
    at::NoGradGuard no_grad;
    for (auto& p : net.state()) {
      if (!p.is_parameter) continue;
      auto& v = velocity[p.name];
      v = v.defined() ? v.mul(momentum).add(p.grad) : p.grad.clone();
      p.value.sub_(v * lr);
    }
  }

  TinyConvNet direct(3);
  direct->train();
  std::map<std::string, at::Tensor> dvel;
  at::Tensor direct_input_grad;
  for (int i = 0; i < steps; ++i) {
    direct->zero_grad();
    at::Tensor x = xs[i].clone().requires_grad_(true);
    auto out = direct->forward(x, cs[i], ts[i]);
    (out - ys[i]).abs().mean().backward();
    if (i == 0) direct_input_grad = x.grad().clone();
    at::NoGradGuard no_grad;
    for (auto& p : direct->named_parameters()) {
      auto& v = dvel[p.key()];
      v = v.defined() ? v.mul(momentum).add(p.value().grad()) : p.value().grad().clone();
      p.value().sub_(v * lr);
    }
  }

  EXPECT_TRUE(at::allclose(first_input_grad, direct_input_grad, 0, 1e-6));
  auto state = net.state();
  auto params = direct->named_parameters();
  int compared = 0;
  for (auto& p : state) {
    if (!p.is_parameter) continue;
    ASSERT_TRUE(params.contains(p.name)) << p.name;
    double diff = (p.value - params[p.name]).abs().max().item<double>();
    EXPECT_LT(diff, 1e-6) << p.name;
    // Training actually moved the weights.
    ++compared;
  }
  EXPECT_EQ(compared, 4);
  TinyConvNet untrained(3);
  EXPECT_GT((untrained->conv1->weight - params["conv1.weight"]).abs().max().item<double>(), 1e-3);
}
