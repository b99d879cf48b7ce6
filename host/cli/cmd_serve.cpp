// sinsr-host serve: an HTTP upscaling service and its web page, on the host's C API only
// (abi/sinsr_host.h), Boost.Beast for HTTP/1.1. One I/O thread reads and writes every
// connection, so a slow client holds no worker; --workers threads run the pipelines, fed from a
// bounded queue. Each upload goes through sinsr_pipeline_upscale_file, the code `infer` runs for
// each file, so the bytes equal the CLI's for the same options and thread count.
#include "cli_common.hpp"
#include "commands.hpp"
#include "sinsr_host.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <tuple>
#include <vector>

namespace sinsr {
namespace cli {

extern const char kServePage[];  // serve_page.html, embedded at build time

namespace {

namespace po = boost::program_options;
namespace http = boost::beast::http;
namespace asio = boost::asio;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::vector<std::string> models, plugins;
  int workers = 1, threads = 0;
  int64_t max_body_mb = 32;
  int64_t max_pixels = int64_t(2048) * 2048;
  int max_queue = 16;
  int read_timeout = 30;      // seconds for a request to arrive whole
  int shutdown_timeout = 60;  // seconds SIGTERM waits for accepted requests
  std::string token_file, cors;
  bool quiet = false;
  bool allow_ensemble = false;  // 8x the work per request: the operator opts in
};

// The status of a C API call as an exception, so that one catch turns it into a reply.
struct ApiError : std::runtime_error {
  int32_t code;
  ApiError(int32_t c, const std::string& m) : std::runtime_error(m), code(c) {}
};

void check(sinsr_status* st) {
  if (!st) return;
  ApiError e(sinsr_status_code(st), sinsr_status_message(st));
  sinsr_status_release(st);
  throw e;
}

bool equal_time_constant(const std::string& a, const std::string& b) {
  // Constant time over the expected token's length: no early exit on the first difference.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < b.size(); ++i) diff |= static_cast<unsigned char>((i < a.size() ? a[i] : 0) ^ b[i]);
  return diff == 0;
}

// Prometheus metrics: requests by status, latency buckets, queue depth, work in flight, peak RSS.
struct Metrics {
  std::mutex mutex;
  std::map<int, uint64_t> by_status;
  std::vector<double> bounds{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  std::vector<uint64_t> buckets = std::vector<uint64_t>(11, 0);
  double latency_sum = 0;
  uint64_t latency_count = 0;
  std::atomic<int> queued{0}, in_flight{0};

  void record(int status, double seconds) {
    std::lock_guard<std::mutex> l(mutex);
    ++by_status[status];
    size_t k = 0;
    while (k < bounds.size() && seconds > bounds[k]) ++k;
    ++buckets[k];
    latency_sum += seconds;
    ++latency_count;
  }
  std::string text() {
    std::ostringstream o;
    std::lock_guard<std::mutex> l(mutex);
    o << "# HELP sinsr_requests_total HTTP requests answered, by status.\n# TYPE sinsr_requests_total counter\n";
    for (const auto& [s, n] : by_status) o << "sinsr_requests_total{status=\"" << s << "\"} " << n << "\n";
    o << "# HELP sinsr_request_seconds Time from a request's arrival to its answer.\n"
         "# TYPE sinsr_request_seconds histogram\n";
    uint64_t cumulative = 0;
    for (size_t k = 0; k < bounds.size(); ++k) {
      cumulative += buckets[k];
      o << "sinsr_request_seconds_bucket{le=\"" << bounds[k] << "\"} " << cumulative << "\n";
    }
    o << "sinsr_request_seconds_bucket{le=\"+Inf\"} " << latency_count << "\n"
      << "sinsr_request_seconds_sum " << latency_sum << "\nsinsr_request_seconds_count " << latency_count << "\n"
      << "# HELP sinsr_queue_depth Uploads waiting for a worker.\n# TYPE sinsr_queue_depth gauge\n"
      << "sinsr_queue_depth " << queued.load() << "\n"
      << "# HELP sinsr_images_in_flight Uploads being upscaled.\n# TYPE sinsr_images_in_flight gauge\n"
      << "sinsr_images_in_flight " << in_flight.load() << "\n"
      << "# HELP sinsr_peak_rss_bytes Peak resident memory of the process.\n# TYPE sinsr_peak_rss_bytes gauge\n"
      << "sinsr_peak_rss_bytes " << peak_rss_bytes() << "\n";
    return o.str();
  }
  static int64_t peak_rss_bytes() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
    return 0;
  }
};

using Pipeline = std::shared_ptr<sinsr_pipeline>;  // a worker holds one while it runs

// One loaded model: its pipelines by (seed, strength, self-ensemble), made on first use; the
// default one is kept, up to kVariants others, the least recently used going first.
struct Model {
  std::string name, summary, input;
  int scale = 4;
  uint64_t default_seed = 0;  // the host's, read back from the first pipeline's settings
  bool has_strength = false;
  std::mutex mutex;
  struct Variant {
    Pipeline pipeline;
    uint64_t used = 0;
  };
  using Key = std::tuple<uint64_t, double, bool>;
  Key default_key() const { return {default_seed, 1.0, false}; }
  std::map<Key, Variant> pipelines;
  uint64_t tick = 0;
};

class Service {
 public:
  explicit Service(const Options& o) : o_(o) {}
  ~Service() {
    models_.clear();  // every pipeline before the runtime
    sinsr_runtime_destroy(runtime_);
  }

  void load() {
    sinsr_runtime_options ro = sinsr_runtime_default_options();
    ro.num_threads = o_.threads;
    check(sinsr_runtime_create(&ro, &runtime_));
    for (const auto& p : o_.plugins) check(sinsr_runtime_load(runtime_, p.c_str()));
    // -n, or the default model; each is loaded once, now, so that a bad name fails at start.
    std::vector<std::string> names = o_.models;
    if (names.empty()) names.push_back("");
    for (const auto& n : names) {
      auto m = std::make_shared<Model>();
      Pipeline p = make_pipeline(n, std::nullopt, 1.0, false);
      const char* text = nullptr;
      check(sinsr_pipeline_settings(p.get(), &text));
      const json s = json::parse(text);
      m->name = s["backbone"]["name"].get<std::string>();
      m->scale = s.value("scale", 4);
      m->input = s.value("input", std::string());
      m->has_strength = s.value("blend_with", std::string()) != "";
      m->default_seed = s["seed"].get<uint64_t>();
      m->pipelines[m->default_key()] = {p, 0};
      m->summary = summary_of(m->name);
      if (default_.empty()) default_ = m->name;
      models_[m->name] = m;
    }
  }

  Pipeline make_pipeline(const std::string& model, std::optional<uint64_t> seed, double strength, bool ensemble) {
    json spec = {{"threads", o_.threads}};
    if (seed) spec["seed"] = *seed;
    if (!model.empty()) spec["backbone"] = model;
    if (strength != 1.0) spec["strength"] = strength;
    if (ensemble) spec["self_ensemble"] = true;
    sinsr_pipeline* p = nullptr;
    check(sinsr_pipeline_create(runtime_, spec.dump().c_str(), &p));
    return Pipeline(p, sinsr_pipeline_destroy);
  }

  std::string summary_of(const std::string& name) const {
    size_t n = 0;
    check(sinsr_runtime_component_count(runtime_, &n));
    for (size_t i = 0; i < n; ++i) {
      sinsr_component_info info{};
      info.struct_size = sizeof info;
      check(sinsr_runtime_component_info(runtime_, i, &info));
      if (info.kind == SINSR_KIND_BACKBONE && name == info.name) return info.summary ? info.summary : "";
    }
    return "";
  }

  std::shared_ptr<Model> model(const std::string& name) {
    auto it = models_.find(name.empty() ? default_ : name);
    if (it == models_.end()) {
      std::string known;
      for (const auto& [n, m] : models_) known += (known.empty() ? "" : ", ") + n;
      throw ApiError(SINSR_ERR_NOT_FOUND, "no model '" + name + "' here (loaded: " + known + ")");
    }
    return it->second;
  }

  Pipeline pipeline(Model& m, uint64_t seed, double strength, bool ensemble) {
    static constexpr size_t kVariants = 8;
    std::lock_guard<std::mutex> l(m.mutex);
    const Model::Key key{seed, strength, ensemble};
    auto& v = m.pipelines[key];
    if (!v.pipeline) {
      try {
        v.pipeline = make_pipeline(m.name, seed, strength, ensemble);
      } catch (...) {
        m.pipelines.erase(key);
        throw;
      }
      if (m.pipelines.size() > kVariants + 1) {  // the oldest variant goes; a run holding it finishes
        auto oldest = m.pipelines.end();
        for (auto it = m.pipelines.begin(); it != m.pipelines.end(); ++it)
          if (it->first != m.default_key() && it->second.pipeline != v.pipeline &&
              (oldest == m.pipelines.end() || it->second.used < oldest->second.used))
            oldest = it;
        if (oldest != m.pipelines.end()) m.pipelines.erase(oldest);
      }
    }
    v.used = ++m.tick;
    return v.pipeline;
  }

  json models_json() const {
    json list = json::array();
    for (const auto& [n, m] : models_)
      list.push_back({{"name", m->name},
                      {"scale", m->scale},
                      {"input", m->input},
                      {"summary", m->summary},
                      {"default", m->name == default_},
                      {"strength", m->has_strength},
                      {"self_ensemble", o_.allow_ensemble}});
    return {{"models", list}};
  }

  const Options& options() const { return o_; }

 private:
  Options o_;
  sinsr_runtime* runtime_ = nullptr;
  std::map<std::string, std::shared_ptr<Model>> models_;
  std::string default_;
};

// A reply: status, content type, body, extra headers.
struct Reply {
  http::status status = http::status::ok;
  std::string type = "application/json", body;
  std::vector<std::pair<std::string, std::string>> headers;
};

Reply error_reply(http::status s, const std::string& message) {
  Reply r;
  r.status = s;
  r.body = json{{"error", message}}.dump() + "\n";
  return r;
}

std::string content_type_of(const std::string& format) {
  static const std::map<std::string, std::string> types = {{"png", "image/png"},
                                                           {"jpg", "image/jpeg"},
                                                           {"webp", "image/webp"},
                                                           {"tif", "image/tiff"},
                                                           {"bmp", "image/bmp"},
                                                           {"exr", "image/x-exr"},
                                                           {"ppm", "image/x-portable-pixmap"}};
  auto it = types.find(format);
  return it == types.end() ? "" : it->second;
}

std::map<std::string, std::string> query_of(const std::string& target) {
  std::map<std::string, std::string> q;
  const size_t start = target.find('?');
  if (start == std::string::npos) return q;
  std::stringstream ss(target.substr(start + 1));
  for (std::string item; std::getline(ss, item, '&');) {
    const size_t eq = item.find('=');
    q[item.substr(0, eq)] = eq == std::string::npos ? "" : item.substr(eq + 1);
  }
  return q;
}

// One upload: the body as a file in a private folder, upscaled into another file there, read back.
Reply upscale(Service& service, const std::string& target, const std::string& body, const fs::path& work) {
  auto q = query_of(target);
  static const std::vector<std::string> known = {"model", "outscale", "format", "seed", "strength", "self_ensemble"};
  for (const auto& [k, v] : q)
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      std::string list;
      for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
      return error_reply(http::status::bad_request, "unknown option '" + k + "' (known: " + list + ")");
    }
  // As the spec key: the 8 flips and rotations averaged (8 network runs per tile).
  bool ensemble = false;
  if (q.count("self_ensemble")) {
    const std::string& v = q["self_ensemble"];
    if (v != "0" && v != "1" && v != "true" && v != "false")
      return error_reply(http::status::bad_request, "self_ensemble takes 0, 1, true or false");
    ensemble = v == "1" || v == "true";
    if (ensemble && !service.options().allow_ensemble)
      return error_reply(http::status::bad_request,
                         "self_ensemble is off on this server (it costs 8x the work; start it with "
                         "--allow-self-ensemble)");
  }
  // What this build writes (netpbm only without OpenImageIO), its default first.
  static const std::string formats = sinsr_image_formats();
  std::string format = q.count("format") ? q["format"] : formats.substr(0, formats.find(' '));
  if (format == "jpeg") format = "jpg";
  if (format == "tiff") format = "tif";
  if (content_type_of(format).empty() || (" " + formats + " ").find(" " + format + " ") == std::string::npos)
    return error_reply(http::status::bad_request, "format '" + format + "': this server writes " + formats);
  std::optional<uint64_t> seed;  // absent: the model's default
  double strength = 1, outscale = 0;
  try {
    if (q.count("seed")) seed = std::stoull(q["seed"]);
    if (q.count("strength")) strength = std::stod(q["strength"]);
    if (q.count("outscale")) outscale = std::stod(q["outscale"]);
  } catch (const std::exception&) {
    return error_reply(http::status::bad_request, "seed, strength and outscale take numbers");
  }
  if (!(strength >= 0 && strength <= 1)) return error_reply(http::status::bad_request, "strength must be in [0, 1]");
  if (q.count("outscale") && !(outscale > 0 && outscale <= 64))
    return error_reply(http::status::bad_request, "outscale must be a positive factor (at most 64)");
  if (body.empty())
    return error_reply(http::status::bad_request, "the request has no image (send its bytes as the body)");

  auto model = service.model(q.count("model") ? q["model"] : "");
  if (strength != 1 && !model->has_strength)
    return error_reply(http::status::bad_request, "model '" + model->name + "' has no strength setting");
  static std::atomic<uint64_t> counter{0};
  const std::string id = std::to_string(counter++);
  const fs::path in = work / ("upload-" + id), out = work / ("result-" + id + "." + format);
  struct Cleanup {
    fs::path a, b;
    ~Cleanup() {
      std::error_code ec;
      fs::remove(a, ec);
      fs::remove(b, ec);
    }
  } cleanup{in, out};
  {
    std::ofstream f(in, std::ios::binary);
    f.write(body.data(), std::streamsize(body.size()));
    if (!f) throw ApiError(SINSR_ERR_IO, "cannot store the upload (disk full?)");
  }
  sinsr_file_options fo = sinsr_file_default_options();
  fo.max_pixels = service.options().max_pixels;
  fo.outscale = outscale;
  try {
    const Pipeline pipeline = service.pipeline(*model, seed.value_or(model->default_seed), strength, ensemble);
    check(sinsr_pipeline_upscale_file(pipeline.get(), in.c_str(), out.c_str(), &fo, nullptr));
  } catch (const ApiError& e) {
    // The CLI's one line, naming the upload rather than the private file.
    std::string message = e.what();
    for (size_t at; (at = message.find(in.string())) != std::string::npos;)
      message.replace(at, in.string().size(), "upload");
    // The C API's words for a refusal by max_pixels (abi/sinsr_host.h), said in the server's.
    static const std::string limit_hint = "max_pixels raises it";
    if (const size_t at = message.find(limit_hint); e.code == SINSR_ERR_FORMAT && at != std::string::npos) {
      message.replace(at, limit_hint.size(), "the server's --max-pixels");
      return error_reply(http::status::payload_too_large, message);
    }
    if (e.code == SINSR_ERR_OUT_OF_MEMORY) return error_reply(http::status::service_unavailable, message);
    if (e.code == SINSR_ERR_FORMAT || e.code == SINSR_ERR_INVALID_ARGUMENT || e.code == SINSR_ERR_IO)
      return error_reply(http::status::bad_request, message);
    return error_reply(http::status::internal_server_error, message);
  }
  Reply r;
  r.type = content_type_of(format);
  std::ifstream f(out, std::ios::binary);
  r.body.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return r;
}

// The inference workers and their bounded queue.
class Workers {
 public:
  // A job computes and returns what sends its answer; the worker counts itself idle before that
  // runs, so a client's next request never finds it busy with a request already answered.
  using Job = std::function<std::function<void()>()>;
  Workers(int n, size_t capacity, Metrics& m) : capacity_(capacity), metrics_(m) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { loop(); });
  }
  ~Workers() { stop(); }
  bool push(Job job) {
    std::lock_guard<std::mutex> l(mutex_);
    // An idle worker takes a job at once; capacity counts the ones left waiting.
    if (stopping_ || jobs_.size() >= capacity_ + idle_) return false;
    jobs_.push_back(std::move(job));
    ++metrics_.queued;
    ready_.notify_one();
    return true;
  }
  void stop() {
    {
      std::lock_guard<std::mutex> l(mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    ready_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> l(mutex_);
    ++idle_;
    for (;;) {
      ready_.wait(l, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and every accepted job is done
      Job job = std::move(jobs_.front());
      jobs_.pop_front();
      --idle_;
      --metrics_.queued;
      l.unlock();
      ++metrics_.in_flight;
      std::function<void()> send = job();
      --metrics_.in_flight;
      l.lock();
      ++idle_;  // idle before the answer goes out
      l.unlock();
      if (send) send();
      l.lock();
    }
  }
  size_t capacity_;
  Metrics& metrics_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Job> jobs_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool stopping_ = false;
};

struct Server {
  Service& service;
  Metrics& metrics;
  Workers& workers;
  std::string token;
  fs::path work;
  std::atomic<int> open_requests{0};  // read whole and not yet answered
  std::atomic<bool> draining{false};
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server& server)
      : stream_(std::move(socket)), deadline_(stream_.get_executor()), server_(server) {}
  void start() { read(); }

 private:
  // A request must arrive whole within --read-timeout: a timer of its own (the stream's would
  // close the socket, leaving no way to say 408), cancelling the read when it fires.
  void read() {
    parser_.emplace();
    parser_->body_limit(uint64_t(server_.service.options().max_body_mb) << 20);
    timed_out_ = false;
    stream_.expires_never();
    deadline_.expires_after(std::chrono::seconds(server_.service.options().read_timeout));
    deadline_.async_wait([self = shared_from_this()](boost::beast::error_code ec) {
      if (ec) return;  // cancelled: the request arrived
      self->timed_out_ = true;
      boost::beast::error_code ignored;
      self->stream_.socket().cancel(ignored);
    });
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](boost::beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(boost::beast::error_code ec) {
    deadline_.cancel();
    if (timed_out_) {
      // An idle keep-alive connection just closes; a request begun and not finished is a 408.
      if (!parser_->got_some()) return close();
      return answer(error_reply(http::status::request_timeout, "the request did not arrive within --read-timeout"),
                    false);
    }
    if (ec == http::error::end_of_stream || ec == asio::error::connection_reset || ec == asio::error::eof)
      return close();
    if (ec == http::error::body_limit)
      return answer(error_reply(http::status::payload_too_large,
                                "the upload is over the server's --max-body of " +
                                    std::to_string(server_.service.options().max_body_mb) + " MB"),
                    false);
    if (ec) return close();  // a malformed request or a client that left: nothing to answer
    started_ = Clock::now();
    ++server_.open_requests;
    counted_ = true;
    route(parser_->release());
  }

  void route(http::request<http::string_body> req) {
    keep_alive_ = req.keep_alive() && !server_.draining;
    const std::string target(req.target());
    const std::string path = target.substr(0, target.find('?'));
    const auto& o = server_.service.options();
    if (req.method() == http::verb::options) {  // a CORS preflight
      Reply r;
      r.status = http::status::no_content;
      r.type.clear();
      return answer(r, keep_alive_);
    }
    if (path == "/healthz") {
      Reply r;
      r.type = "text/plain";
      r.body = server_.draining ? "draining\n" : "ok\n";
      if (server_.draining) r.status = http::status::service_unavailable;
      return answer(r, keep_alive_);
    }
    if (path == "/" && req.method() == http::verb::get) {
      Reply r;
      r.type = "text/html; charset=utf-8";
      r.body = kServePage;
      return answer(r, keep_alive_);
    }
    if (!server_.token.empty()) {
      const std::string auth(req[http::field::authorization]);
      const std::string given = auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : std::string();
      if (!equal_time_constant(given, server_.token)) {
        Reply r = error_reply(http::status::unauthorized, "a bearer token is needed (Authorization: Bearer ...)");
        r.headers.push_back({"WWW-Authenticate", "Bearer"});
        return answer(r, keep_alive_);
      }
    }
    if (path == "/v1/models" && req.method() == http::verb::get) {
      Reply r;
      r.body = server_.service.models_json().dump() + "\n";
      return answer(r, keep_alive_);
    }
    if (path == "/metrics" && req.method() == http::verb::get) {
      Reply r;
      r.type = "text/plain; version=0.0.4";
      r.body = server_.metrics.text();
      return answer(r, keep_alive_);
    }
    if (path == "/v1/upscale") {
      if (req.method() != http::verb::post)
        return answer(error_reply(http::status::method_not_allowed, "POST the image bytes to /v1/upscale"),
                      keep_alive_);
      if (server_.draining)
        return answer(error_reply(http::status::service_unavailable, "the server is shutting down"), false);
      auto self = shared_from_this();
      auto body = std::make_shared<std::string>(std::move(req.body()));
      const bool queued = server_.workers.push([self, body, target]() -> std::function<void()> {
        Reply r;
        try {
          r = upscale(self->server_.service, target, *body, self->server_.work);
        } catch (const ApiError& e) {
          r = error_reply(e.code == SINSR_ERR_NOT_FOUND ? http::status::not_found : http::status::internal_server_error,
                          e.what());
        } catch (const std::exception& e) {
          r = error_reply(http::status::internal_server_error, e.what());
        }
        return
            [self, r] { asio::post(self->stream_.get_executor(), [self, r] { self->answer(r, self->keep_alive_); }); };
      });
      if (!queued) {
        Reply r = error_reply(http::status::service_unavailable,
                              "busy: " + std::to_string(o.max_queue) + " uploads are waiting (--max-queue); retry");
        r.headers.push_back({"Retry-After", "1"});
        return answer(r, keep_alive_);
      }
      return;
    }
    answer(error_reply(http::status::not_found, "no such path: " + path +
                                                    " (/, /v1/upscale, /v1/models, /healthz, "
                                                    "/metrics)"),
           keep_alive_);
  }

  void answer(const Reply& r, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>(r.status, 11);
    res->set(http::field::server, "sinsr-host");
    if (!r.type.empty()) res->set(http::field::content_type, r.type);
    const std::string& cors = server_.service.options().cors;
    if (!cors.empty()) {
      res->set(http::field::access_control_allow_origin, cors);
      res->set(http::field::access_control_allow_headers, "Authorization, Content-Type");
      res->set(http::field::access_control_allow_methods, "GET, POST, OPTIONS");
    }
    for (const auto& [k, v] : r.headers) res->set(k, v);
    res->body() = r.body;
    res->keep_alive(keep_alive);
    res->prepare_payload();
    if (counted_) server_.metrics.record(int(r.status), std::chrono::duration<double>(Clock::now() - started_).count());
    stream_.expires_after(std::chrono::seconds(server_.service.options().read_timeout));
    http::async_write(stream_, *res, [self = shared_from_this(), res, keep_alive](boost::beast::error_code ec, size_t) {
      self->done();
      if (ec) return self->close();
      if (!keep_alive) return self->linger();
      self->read();
    });
  }

  // Closing right after an answer sent before the whole request was read (413) would reset the
  // connection under a client still sending, which then never sees the answer: say we are done
  // sending, read and drop what still comes (bounded in bytes and time), then close.
  void linger() {
    boost::beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(server_.service.options().read_timeout));
    drain(size_t(server_.service.options().max_body_mb) << 21);
  }

  void drain(size_t budget) {
    auto scratch = std::make_shared<std::array<char, 65536>>();
    stream_.async_read_some(asio::buffer(*scratch),
                            [self = shared_from_this(), scratch, budget](boost::beast::error_code ec, size_t n) {
                              if (ec || n >= budget) return self->close();
                              self->drain(budget - n);
                            });
  }

  void done() {
    if (counted_) --server_.open_requests;
    counted_ = false;
  }

  void close() {
    boost::beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  boost::beast::tcp_stream stream_;
  asio::steady_timer deadline_;
  bool timed_out_ = false;
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Server& server_;
  Clock::time_point started_;
  bool keep_alive_ = false, counted_ = false;
};

void accept(tcp::acceptor& acceptor, Server& server) {
  acceptor.async_accept([&acceptor, &server](boost::beast::error_code ec, tcp::socket socket) {
    if (!acceptor.is_open()) return;
    if (!ec) std::make_shared<Session>(std::move(socket), server)->start();
    accept(acceptor, server);
  });
}

}  // namespace

int cmd_serve(const Args& args) {
  Options o;
  po::options_description opts = options_table(
      "sinsr-host serve [options]\n"
      "An upscaling service with a web page: open http://HOST:PORT/ in a browser, or POST an image to\n"
      "/v1/upscale. The models load once, at start. Every option and endpoint: docs/serve.md.\n\n"
      "Options");
  // clang-format off
  opts.add_options()
    ("help,h", "this help")
    ("host", po::value(&o.host)->default_value(o.host), "address to listen on (beyond loopback: set --token)")
    ("port", po::value(&o.port)->default_value(o.port), "port (0: a free one, printed)")
    ("backbone,n", po::value(&o.models), ("model to serve (repeatable; default: " + installed_default("backbone") + ")").c_str())
    ("workers", po::value(&o.workers)->default_value(o.workers), "inference workers")
    ("threads,j", po::value(&o.threads)->default_value(o.threads), "CPU threads per worker (0: the cores / workers)")
    ("max-body", po::value(&o.max_body_mb)->default_value(o.max_body_mb), "largest upload in MB (413 beyond)")
    ("max-pixels", po::value(&o.max_pixels)->default_value(o.max_pixels, "2048x2048"), "largest input in pixels (413 beyond)")
    ("max-queue", po::value(&o.max_queue)->default_value(o.max_queue), "uploads waiting for a worker (503 beyond)")
    ("read-timeout", po::value(&o.read_timeout)->default_value(o.read_timeout), "seconds for a request to arrive (408 after)")
    ("shutdown-timeout", po::value(&o.shutdown_timeout)->default_value(o.shutdown_timeout), "seconds SIGTERM waits for accepted uploads")
    ("token", po::value(&o.token_file), "file holding a bearer token every API call must carry (401 without)")
    ("cors", po::value(&o.cors), "allow pages from this origin (e.g. https://example.org) to call the API")
    ("plugin", po::value(&o.plugins), "load a plugin library or model manifest (repeatable)")
    ("allow-self-ensemble", po::bool_switch(&o.allow_ensemble), "accept self_ensemble=1 (8x the work per upload)")
    ("quiet,q", po::bool_switch(&o.quiet), "no start-up lines");
  // clang-format on
  po::variables_map vm;
  if (int rc = parse_options(args, opts, vm, "serve"); rc >= 0) return rc;
  if (o.port < 0 || o.port > 65535) return usage_error("serve", "--port must be in [0, 65535]");
  if (o.workers < 1 || o.threads < 0) return usage_error("serve", "--workers must be at least 1, -j at least 0");
  if (o.max_body_mb < 1 || o.max_pixels < 1 || o.max_queue < 0 || o.read_timeout < 1 || o.shutdown_timeout < 0)
    return usage_error("serve", "--max-body, --max-pixels and --read-timeout must be positive, --max-queue 0 or more");
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  if (o.threads == 0) o.threads = std::max(1, cores / o.workers);
  if (o.workers * o.threads > cores)
    std::cerr << "sinsr-host serve: warning: " << o.workers << " workers x " << o.threads << " threads exceed the "
              << cores << " cores: they will wait for each other\n";

  std::string token;
  if (!o.token_file.empty()) {
    std::ifstream f(o.token_file);
    if (!f) {
      std::cerr << "sinsr-host serve: --token " << o.token_file << ": cannot read the file\n";
      return 1;
    }
    std::getline(f, token);
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (token.empty()) {
      std::cerr << "sinsr-host serve: --token " << o.token_file << ": the file's first line is empty\n";
      return 1;
    }
  }

  try {
    Service service(o);
    service.load();
    Metrics metrics;
    Workers workers(o.workers, size_t(o.max_queue), metrics);
    // Uploads and results live in a private folder, removed at exit: in memory where /dev/shm
    // has room for many uploads (a container's is often 64 MB), else in /tmp.
    std::error_code shm_ec;
    const auto shm = fs::space("/dev/shm", shm_ec);
    const bool roomy =
        !shm_ec && ::access("/dev/shm", W_OK) == 0 && shm.available >= uintmax_t(8 * o.max_body_mb + 256) << 20;
    std::string tmpl = roomy ? "/dev/shm" : "/tmp";
    tmpl += "/sinsr-serve-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a private folder for uploads");
    const fs::path work = tmpl;
    Server server{service, metrics, workers, token, work};

    asio::io_context ioc(1);
    tcp::acceptor acceptor(ioc);
    const tcp::endpoint endpoint(asio::ip::make_address(o.host), static_cast<unsigned short>(o.port));
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);
    const auto bound = acceptor.local_endpoint();
    const bool loopback = bound.address().is_loopback();
    if (!loopback && token.empty())
      std::cerr << "sinsr-host serve: warning: listening on " << o.host
                << " without --token: anyone who can reach this address can use the service\n";
    // The one line a script waits for (stdout, flushed): where to connect.
    std::cout << "listening on http://"
              << (bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string())
              << ":" << bound.port() << "/" << std::endl;
    accept(acceptor, server);

    // SIGTERM / SIGINT: no new connections or uploads; accepted ones are answered; then exit 0.
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    asio::steady_timer drain(ioc);
    Clock::time_point deadline;
    std::function<void()> poll = [&] {
      drain.expires_after(std::chrono::milliseconds(50));
      drain.async_wait([&](boost::beast::error_code) {
        const bool idle = metrics.queued == 0 && metrics.in_flight == 0 && server.open_requests == 0;
        if (idle || Clock::now() > deadline) return ioc.stop();
        poll();
      });
    };
    signals.async_wait([&](boost::beast::error_code, int sig) {
      if (!o.quiet) std::cerr << "sinsr-host serve: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << ", finishing\n";
      server.draining = true;
      boost::beast::error_code ec;
      acceptor.close(ec);
      deadline = Clock::now() + std::chrono::seconds(o.shutdown_timeout);
      poll();
    });
    if (!o.quiet)
      std::cerr << "sinsr-host serve: " << o.workers << " worker(s) x " << o.threads
                << " thread(s), models: " << service.models_json()["models"].size() << "\n";
    ioc.run();
    workers.stop();
    std::error_code ec;
    fs::remove_all(work, ec);
    return 0;
  } catch (const ApiError& e) {
    std::cerr << "sinsr-host serve: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "sinsr-host serve: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace cli
}  // namespace sinsr
