#pragma once
// HttpServer: the HTTP/1.1 front of `hearth serve` and `hearth gateway`, on Boost.Beast, optionally over
// TLS. It owns the listener, the I/O
// threads and one Session per connection; everything above it (routing, OpenAI semantics) sees an
// Exchange: one request and the means to answer it, whole or as a stream of chunks.
//
// Threading: each connection runs on its own strand. Handlers are called on that strand; an Exchange's
// methods may be called from any thread (the engine thread included): they post to the strand. A
// stream's chunks are coalesced — while one write is in flight, further chunks join the next write —
// so a slow client costs memory up to `max_stream_buffer` and then its connection, never the engine.
//
// Disconnects: while a handler has not finished its response, the session keeps a read pending on the
// socket; EOF or an error there (the client went away) fires the exchange's close callback, which the
// generation layer uses to cancel the request and free its KV blocks.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "core/status.h"

namespace hearth::server {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

class Session;

class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  explicit Exchange(std::shared_ptr<Session> session, HttpRequest request);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  const HttpRequest& request() const { return request_; }
  std::string_view path() const;                         // target without the query
  std::string_view header(std::string_view name) const;  // "" when absent

  // A whole response. Call once, from any thread.
  void respond(int status, std::string content_type, std::string body, HttpHeaders headers = {});
  // A chunked response: the header now, then chunks, then end_stream(). From any thread, in order.
  void start_stream(int status, std::string content_type, HttpHeaders headers = {});
  void send_chunk(std::string data);
  void end_stream();

  // Runs fn on the connection's strand (after anything posted before it).
  void post(std::function<void()> fn);
  // Called once, on the strand, when the client disconnects before the response is complete. Set it
  // before starting work that should stop then; if the client is already gone it runs at once (posted).
  void on_close(std::function<void()> fn);
  bool closed() const { return closed_.load(std::memory_order_acquire); }

 private:
  friend class Session;
  std::shared_ptr<Session> session_;
  HttpRequest request_;
  std::function<void()> on_close_;  // strand only
  std::atomic<bool> closed_{false};
  std::atomic<bool> responded_{false};  // respond() or start_stream() taken; set on the strand
  std::atomic<bool> completed_{false};  // respond() or end_stream() taken; set on the strand
};

using Handler = std::function<void(std::shared_ptr<Exchange>)>;

// TLS on the listener (OpenSSL): a PEM certificate chain and its private key; TLS 1.3 only by default, 1.2
// allowed with min_version "1.2" (ECDHE + AEAD suites).
struct TlsConfig {
  std::string cert_file, key_file;
  std::string min_version = "1.3";
  std::string client_ca_file;  // set: clients must present a certificate signed by one of these (mTLS)
  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

struct HttpServerConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;  // 0: any free port (see HttpServer::port())
  int io_threads = 2;
  uint64_t max_body_bytes = 16u << 20;     // 413 beyond
  uint64_t max_header_bytes = 64u << 10;   // 431 beyond
  int idle_timeout_s = 75;                 // keep-alive connections idle longer are closed
  int write_timeout_s = 120;               // a client that takes no bytes this long is dropped
  uint64_t max_stream_buffer = 64u << 20;  // unsent stream bytes per connection before dropping it
  int max_connections = 16384;             // beyond: accepted and closed at once
  std::string server_header = "hearth";
  TlsConfig tls;  // off unless a certificate is given
};

struct HttpServerStats {
  uint64_t connections_total = 0;
  int64_t connections_open = 0;
  uint64_t requests_total = 0;
  int64_t exchanges_open = 0;  // requests whose response is not completely written to the client yet
};

class HttpServer {
 public:
  // Binds and listens (errors: the address is in use, a bad host); does not serve until start().
  static Result<std::unique_ptr<HttpServer>> create(const HttpServerConfig& config, Handler handler);
  // Whether `tls` loads (files readable, key matching the certificate): callers check before slow work.
  static Status check_tls(const TlsConfig& tls);
  ~HttpServer();

  uint16_t port() const { return port_; }
  void start();  // starts the I/O threads
  // Stops accepting; open connections finish their current exchange and close.
  void stop_accepting();
  // Stops the I/O threads (after stop_accepting and a drain, or at once) and joins them.
  void stop();
  HttpServerStats stats() const;
  // The I/O context the sessions run on: other asynchronous work (the gateway's upstream calls) can share
  // its threads, so a proxied byte does not hop between thread pools.
  boost::asio::io_context& io_context() { return *ioc_; }
  // CPU seconds the I/O threads have used (for the overhead benchmark and /metrics).
  double io_cpu_seconds() const;

  struct Shared;  // state the sessions share (counters, config)

 private:
  HttpServer() = default;
  void do_accept();

  HttpServerConfig config_;
  uint16_t port_ = 0;
  std::unique_ptr<boost::asio::io_context> ioc_;
  std::shared_ptr<Shared> shared_;
  std::vector<std::thread> threads_;
  std::vector<clockid_t> thread_clocks_;
  std::shared_ptr<void> acceptor_;  // boost::asio::ip::tcp::acceptor
  std::shared_ptr<void> work_;      // keeps run() alive while idle
};

}  // namespace hearth::server
