// The codec adapter: sinsr_codec_vtable over a sinsr::sdk::Codec.
#include "sdk_internal.hpp"

#include <torch/nn/module.h>

namespace sinsr {
namespace sdk {

using internal::adopt;
using internal::keep;

namespace {

struct CodecBox {
  std::unique_ptr<Codec> impl;
};

Codec& cd(sinsr_codec* s) {
  require(s != nullptr, SINSR_ERR_INVALID_ARGUMENT, "codec handle is null");
  return *reinterpret_cast<CodecBox*>(s)->impl;
}

void cd_destroy(sinsr_codec* s) { delete reinterpret_cast<CodecBox*>(s); }

sinsr_status* cd_load(sinsr_codec* s, const char* path, const char* options) {
  return guard("", [&] {
    require(path != nullptr, SINSR_ERR_INVALID_ARGUMENT, "path is null");
    cd(s).load_weights(path, config::parse_optional(options, "load options"));
  });
}

sinsr_status* cd_info(sinsr_codec* s, sinsr_codec_info* out) {
  return guard("", [&] {
    require(out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "out is null");
    require(out->struct_size >= offsetof(sinsr_codec_info, image_channels) + sizeof(int32_t), SINSR_ERR_ABI,
            "sinsr_codec_info.struct_size too small");
    sinsr_codec_info info = cd(s).info();
    out->downscale = info.downscale;
    out->latent_channels = info.latent_channels;
    out->image_channels = info.image_channels;
  });
}

template <class Fn>
sinsr_status* cd_apply(sinsr_codec* s, const sinsr_call_options* o, DLManagedTensor* in, DLManagedTensor** out, Fn fn) {
  return guard("", [&] {
    auto t = adopt({in});
    require(out != nullptr && t[0].defined(), SINSR_ERR_INVALID_ARGUMENT, "null input or output pointer");
    Codec& c = cd(s);
    with_stream(o, t[0].device(), [&] {
      at::NoGradGuard no_grad;
      *out = to_dlpack(fn(c, t[0]));
    });
  });
}

sinsr_status* cd_encode(sinsr_codec* s, const sinsr_call_options* o, DLManagedTensor* image, DLManagedTensor** latent) {
  return cd_apply(s, o, image, latent, [](Codec& c, const at::Tensor& x) { return c.encode(x); });
}

sinsr_status* cd_decode(sinsr_codec* s, const sinsr_call_options* o, DLManagedTensor* latent, DLManagedTensor** image) {
  return cd_apply(s, o, latent, image, [](Codec& c, const at::Tensor& z) { return c.decode(z); });
}

sinsr_status* cd_to(sinsr_codec* s, DLDevice device, DLDataType dtype) {
  return guard("", [&] { cd(s).to(device_of(device), scalar_type_of(dtype)); });
}

}  // namespace

void Codec::load_weights(const std::string& path, const json& options) {
  internal::load_module_weights(module(), path, options);
}

void Codec::to(c10::Device device, at::ScalarType dtype) { internal::move_module(module(), device, dtype); }

sinsr_status* detail::create_codec(Codec* (*f)(const json&), const char* c, const char* o, sinsr_codec** out) noexcept {
  return internal::create_boxed<CodecBox>(f, c, o, out);
}

const void* PluginBuilder::codec_vtable(sinsr_status* (*create)(const char*, sinsr_codec**),
                                        sinsr_status* (*create_with)(const char*, const char*, sinsr_codec**),
                                        sinsr_detect_config_fn detect) {
  sinsr_codec_vtable v{};
  v.struct_size = sizeof(v);
  v.create = create;
  v.destroy = cd_destroy;
  v.load_weights = cd_load;
  v.info = cd_info;
  v.encode = cd_encode;
  v.decode = cd_decode;
  v.to = cd_to;
  v.detect_config = detect;     // 1.2
  v.create_with = create_with;  // 1.3
  return keep(v);
}

}  // namespace sdk
}  // namespace sinsr
