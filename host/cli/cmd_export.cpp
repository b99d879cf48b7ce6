// sinsr-host export: a training checkpoint (or any supported weights file) -> a plain state
// dict with the official key names, optionally in half precision, for shipping beside a model
// plugin. Floating-point tensors are cast; integer buffers are kept as they are.
#include "cli_common.hpp"
#include "commands.hpp"
#include "runtime/weights_info.hpp"

#include <sinsr/checkpoint.hpp>
#include <sinsr/sdk.hpp>

#include <boost/program_options.hpp>

#include <iostream>
#include <map>

namespace po = boost::program_options;

namespace sinsr {
namespace cli {

int cmd_export(const Args& args) {
  std::string in, out, key, dtype, other;
  double alpha = 1.0;
  po::options_description opts = options_table(
      "sinsr-host export --weights IN --out OUT [options]\n"
      "Writes the state dict of IN (a train/distill checkpoint, ema.pth, an official .pth or\n"
      ".safetensors) as a .pth that torch.load(weights_only=True) and every loader here read; the parts\n"
      "a file made here stores (backbone, its options, codec, sampler) are kept beside the weights.\n\n"
      "Options");
  // clang-format off
  opts.add_options()
    ("help,h", "this help")
    ("weights,w", po::value(&in)->required(), "input weights file")
    ("out,o", po::value(&out)->required(), "output .pth (written atomically)")
    ("key", po::value(&key)->default_value(""), "the state dict to take (e.g. ema, state_dict; default: found by name)")
    ("dtype", po::value(&dtype)->default_value("fp32"), "fp32, fp16 or bf16 for floating-point tensors")
    ("interpolate", po::value(&other), "network interpolation: another weights file of the same network")
    ("alpha", po::value(&alpha)->default_value(alpha, "1"), "with --interpolate: alpha * IN + (1 - alpha) * OTHER, "
                                                            "floating tensors only");
  // clang-format on
  po::variables_map vm;
  if (int rc = parse_options(args, opts, vm, "export"); rc >= 0) return rc;
  at::ScalarType target;
  if (dtype == "fp32")
    target = at::kFloat;
  else if (dtype == "fp16")
    target = at::kHalf;
  else if (dtype == "bf16")
    target = at::kBFloat16;
  else {
    std::cerr << "sinsr-host export: --dtype must be fp32, fp16 or bf16, not '" << dtype << "'\n";
    return 2;
  }
  if (!(alpha >= 0 && alpha <= 1) || (alpha != 1.0 && other.empty())) {
    std::cerr << "sinsr-host export: --alpha must be in [0, 1] and comes with --interpolate\n";
    return 2;
  }
  try {
    ckpt::StateDict state = ckpt::read_state_dict(in, key);
    if (!other.empty()) host::blend_weights(state, ckpt::read_state_dict(other, key), alpha, in, other);
    size_t cast = 0;
    for (auto& [name, t] : state)
      if (t.is_floating_point() && t.scalar_type() != target) {
        t = t.to(target);
        ++cast;
      }
    host::json stored;  // what the input says of its network travels with the weights
    host::read_shapes(in, &stored);
    host::save_weights(out, state, stored);
    std::cerr << "wrote " << state.size() << " tensors (" << cast << " cast to " << dtype << ") to " << out << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "sinsr-host export: " << error_text(e) << "\n";
    return 1;
  }
}

}  // namespace cli
}  // namespace sinsr
