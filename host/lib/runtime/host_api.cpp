// The host's service table (ABI sinsr_host_api): the status objects every plugin and the C API
// report through, and logging to stderr.
#include "runtime/registry.hpp"

#include <cstdio>
#include <mutex>

struct sinsr_status {
  int32_t code;
  std::string message;
};

namespace sinsr {
namespace host {
namespace {

sinsr_status g_out_of_memory{SINSR_ERR_OUT_OF_MEMORY, "out of memory"};

sinsr_status* status_create(int32_t code, const char* message) {
  try {
    return new sinsr_status{code == SINSR_OK ? SINSR_ERR_RUNTIME : code, message ? message : ""};
  } catch (...) {
    return &g_out_of_memory;  // static: status_release never frees it
  }
}
int32_t status_code(const sinsr_status* s) { return s ? s->code : SINSR_OK; }
const char* status_message(const sinsr_status* s) { return s ? s->message.c_str() : ""; }
void status_release(sinsr_status* s);

// sinsr_log_set's callback; none: stderr.
struct LogSink {
  std::mutex mutex;
  sinsr_log_callback callback = nullptr;
  void* user = nullptr;
  int32_t min_level = SINSR_LOG_INFO;
};
LogSink& sink() {
  static LogSink* s = new LogSink;  // never destroyed: plugins may log from static destructors
  return *s;
}

void log_message(int32_t level, const char* source, const char* message) {
  static const char* names[] = {"debug", "info", "warning", "error"};
  LogSink& s = sink();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (level < s.min_level) return;
  if (s.callback) {
    s.callback(s.user, level, source ? source : "plugin", message ? message : "");
    return;
  }
  const char* name = (level >= 0 && level <= 3) ? names[level] : "log";
  std::fprintf(stderr, "[%s] %s: %s\n", name, source ? source : "plugin", message ? message : "");
}

const sinsr_host_api kHostApi = {sizeof(sinsr_host_api), SINSR_ABI_VERSION, &status_create, &status_code,
                                 &status_message,        &status_release,   &log_message};

void status_release(sinsr_status* s) {
  if (s != &g_out_of_memory) delete s;
}

// The host's copy of the SDK reports through the same table the plugins get.
struct InstallHost {
  InstallHost() { sdk::set_host(&kHostApi); }
} install_host;

}  // namespace

const sinsr_host_api* host_api() { return &kHostApi; }

void log(int32_t level, const std::string& source, const std::string& message) {
  log_message(level, source.c_str(), message.c_str());
}

void set_log(sinsr_log_callback callback, void* user, int32_t min_level) {
  LogSink& s = sink();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.callback = callback;
  s.user = user;
  s.min_level = min_level;
}

}  // namespace host
}  // namespace sinsr
