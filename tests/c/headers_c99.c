/* Compiled with -std=c99 -pedantic -Werror by ctest: the public headers are plain C99. */
#include "sinsr_host.h"
#include "sinsr_plugin.h"

int main(void) {
  sinsr_component_info info;
  info.struct_size = sizeof(info);
  return (int)(sinsr_abi_version() == SINSR_ABI_VERSION && info.struct_size > 0 ? 0 : 1);
}
