#include "sinsr_host.h"

extern "C" {

SINSR_API uint32_t sinsr_abi_version(void) { return SINSR_ABI_VERSION; }
SINSR_API const char* sinsr_version(void) { return SINSR_VERSION_STRING; }

SINSR_API const char* sinsr_kind_name(int32_t kind) {
  switch (kind) {
    case SINSR_KIND_BACKBONE: return "backbone";
    case SINSR_KIND_CODEC: return "codec";
    case SINSR_KIND_SAMPLER: return "sampler";
    case SINSR_KIND_LOSS: return "loss";
    default: return "unknown";
  }
}

}  // extern "C"
