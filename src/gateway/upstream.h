#pragma once
// UpstreamPool: HTTP/1.1 client to one OpenAI-compatible upstream (hearth serve, vLLM, SGLang, ...), plain
// or over TLS (certificate and host name verified; optionally with a client certificate: mTLS), with
// keep-alive connections reused across requests. A call streams: the response head, then body bytes as
// they arrive (nothing is buffered here), then done. Calls run as coroutines on the pool's own I/O threads,
// each on its own strand; its callbacks run there, in order. A stale keep-alive connection (closed by the
// upstream while idle) is retried once on a fresh one when nothing of the response had arrived.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.h"

namespace boost::asio {
class io_context;
}

namespace hearth::gateway {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct UpstreamRequest {
  std::string method = "POST";
  std::string target;  // "/v1/chat/completions"
  Headers headers;     // besides Host, Content-Length and Connection
  std::string body;
};

struct UpstreamHandlers {
  std::function<void(int status, const Headers& headers)> on_head;
  std::function<void(std::string_view bytes)> on_data;
  // Once, last: ok, or why the call failed (connect, timeout, a broken response, cancelled).
  std::function<void(const Status& status)> on_done;
};

struct UpstreamConfig {
  std::string url;  // http://HOST:PORT or https://HOST[:PORT]
  // https: the upstream's certificate is verified against ca_file (PEM; default: the system's trust store)
  // and its name; with client_cert_file + client_key_file the gateway presents its own certificate (mTLS).
  std::string ca_file, client_cert_file, client_key_file;
  int io_threads = 2;
  int connect_timeout_s = 5;
  int response_timeout_s = 600;  // no byte from the upstream for this long: the call fails
  int max_idle_connections = 1024;
  Status validate() const;
};

class UpstreamCall;

class UpstreamPool {
 public:
  // With `shared`, calls run on that I/O context's threads (e.g. the gateway's HTTP server's: no thread hop
  // between the client and the upstream side) and config.io_threads is unused; it must outlive the pool.
  static Result<std::unique_ptr<UpstreamPool>> create(const UpstreamConfig& config,
                                                      boost::asio::io_context* shared = nullptr);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // Starts a call; cancel() on the handle stops it (its on_done then reports cancelled).
  std::shared_ptr<UpstreamCall> send(UpstreamRequest request, UpstreamHandlers handlers);
  const std::string& host_port() const;

  struct Impl;

 private:
  explicit UpstreamPool(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class UpstreamCall {
 public:
  virtual ~UpstreamCall() = default;
  virtual void cancel() = 0;  // from any thread
};

}  // namespace hearth::gateway
