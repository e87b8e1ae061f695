#include "server/http_server.h"

#include <fmt/format.h>
#include <pthread.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <ctime>
#include <mutex>
#include <optional>
#include <type_traits>

#include "core/json_string.h"
#include "core/log.h"
#include "server/openssl_error.h"

namespace hearth::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct HttpServer::Shared {
  HttpServerConfig config;
  Handler handler;
  std::unique_ptr<net::ssl::context> tls;  // set when the listener speaks TLS
  std::atomic<uint64_t> connections_total{0};
  std::atomic<int64_t> connections_open{0};
  std::atomic<uint64_t> requests_total{0};
  std::atomic<int64_t> exchanges_open{0};
  std::atomic<bool> accepting{true};
};

namespace {

std::string error_body(std::string_view message, std::string_view type, std::string_view code) {
  // The OpenAI error object, formatted by hand: this layer has no JSON writer.
  std::string out = R"({"error":{"message":)";
  append_json_string(out, message);
  out += R"(,"type":)";
  append_json_string(out, type);
  out += R"(,"param":null,"code":)";
  if (code.empty()) {
    out += "null";
  } else {
    append_json_string(out, code);
  }
  out += "}}";
  return out;
}

std::string head(int status, std::string_view content_type, std::optional<size_t> length, bool keep_alive,
                 bool http10, const HttpHeaders& headers, std::string_view server) {
  const auto reason = http::obsolete_reason(static_cast<http::status>(status));
  std::string h = fmt::format("HTTP/1.1 {} {}\r\nServer: {}\r\n", status, std::string_view(reason), server);
  if (!content_type.empty()) h += fmt::format("Content-Type: {}\r\n", content_type);
  if (length) {
    h += fmt::format("Content-Length: {}\r\n", *length);
  } else if (!http10) {
    h += "Transfer-Encoding: chunked\r\n";
  }
  if (!keep_alive) {
    h += "Connection: close\r\n";
  } else if (http10) {
    h += "Connection: keep-alive\r\n";
  }
  for (const auto& [k, v] : headers) {
    // Header values come from this program, never from clients; still, no CR/LF may split them.
    if (k.find_first_of("\r\n:") != std::string::npos || v.find_first_of("\r\n") != std::string::npos)
      continue;
    h += k;
    h += ": ";
    h += v;
    h += "\r\n";
  }
  h += "\r\n";
  return h;
}

}  // namespace

// One connection, as Exchange sees it (the transport, plain TCP or TLS, is the implementation's).
class Session {
 public:
  virtual ~Session() = default;
  virtual void post(std::function<void()> fn) = 0;
  // Runs fn now when called on the strand, else posts it: an answer written from a handler or a drain
  // costs no extra trip through the queue.
  virtual void dispatch(std::function<void()> fn) = 0;
  // --- called on the strand by Exchange ---
  virtual void respond(Exchange& ex, int status, std::string content_type, std::string body,
                       HttpHeaders headers) = 0;
  virtual void start_stream(Exchange& ex, int status, std::string content_type, HttpHeaders headers) = 0;
  virtual void send_chunk(std::string data) = 0;
  virtual void end_stream(Exchange& ex) = 0;
  virtual void exchange_gone(const std::string& what) = 0;
  virtual void set_on_close(Exchange& ex, std::function<void()> fn) = 0;

 protected:
  // The exchange's state (Session is its friend; the implementations reach it through these).
  static std::atomic<bool>& responded(Exchange& ex) { return ex.responded_; }
  static std::atomic<bool>& completed(Exchange& ex) { return ex.completed_; }
  static std::atomic<bool>& closed(Exchange& ex) { return ex.closed_; }
  static std::function<void()>& on_close_fn(Exchange& ex) { return ex.on_close_; }
};

namespace {

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// Stream: beast::tcp_stream, or TlsStream (the handshake first; every byte through OpenSSL).
template <typename Stream>
class SessionImpl final : public Session, public std::enable_shared_from_this<SessionImpl<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  using std::enable_shared_from_this<SessionImpl<Stream>>::shared_from_this;

 public:
  SessionImpl(tcp::socket socket, std::shared_ptr<HttpServer::Shared> shared)
      : stream_(make_stream(std::move(socket), *shared)),
        write_timer_(stream_.get_executor()),
        shared_(std::move(shared)) {
    shared_->connections_total.fetch_add(1, std::memory_order_relaxed);
    shared_->connections_open.fetch_add(1, std::memory_order_relaxed);
  }
  ~SessionImpl() override { shared_->connections_open.fetch_sub(1, std::memory_order_relaxed); }

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if constexpr (kTls) {
        self->lowest().expires_after(std::chrono::seconds(self->shared_->config.idle_timeout_s));
        self->stream_.async_handshake(net::ssl::stream_base::server, [self](beast::error_code ec) {
          if (ec) {
            HEARTH_LOG_DEBUG("http: TLS handshake failed: {}", ec.message());
            return self->close();
          }
          self->do_read();
        });
      } else {
        self->do_read();
      }
    });
  }

  void post(std::function<void()> fn) override { net::post(stream_.get_executor(), std::move(fn)); }
  void dispatch(std::function<void()> fn) override { net::dispatch(stream_.get_executor(), std::move(fn)); }

  // --- called on the strand by Exchange ---
  void respond(Exchange& ex, int status, std::string content_type, std::string body,
               HttpHeaders headers) override {
    if (responded(ex).exchange(true)) return;
    completed(ex).store(true, std::memory_order_release);
    if (dead_ || phase_ != Phase::kHandling) return;
    const bool keep = keep_alive_;
    out_ += head(status, content_type, body.size(), keep, http10_, headers, shared_->config.server_header);
    if (!head_only_) out_ += body;
    finish_exchange();
  }
  void start_stream(Exchange& ex, int status, std::string content_type, HttpHeaders headers) override {
    if (responded(ex).exchange(true)) return;
    if (dead_ || phase_ != Phase::kHandling) return;
    streaming_ = true;
    if (http10_) keep_alive_ = false;  // no chunked encoding: the end of the body is the close
    out_ += head(status, content_type, std::nullopt, keep_alive_, http10_, headers,
                 shared_->config.server_header);
    flush();
  }
  void send_chunk(std::string data) override {
    if (dead_ || phase_ != Phase::kHandling || !streaming_ || data.empty()) return;
    if (http10_) {
      out_ += data;
    } else {
      out_ += fmt::format("{:x}\r\n", data.size());
      out_ += data;
      out_ += "\r\n";
    }
    if (out_.size() > shared_->config.max_stream_buffer) {
      HEARTH_LOG_WARN("http: dropping a client that does not read its stream ({} bytes unsent)", out_.size());
      die();
      return;
    }
    flush();
  }
  void end_stream(Exchange& ex) override {
    if (!responded(ex).load(std::memory_order_relaxed) || completed(ex).exchange(true)) return;
    if (dead_ || phase_ != Phase::kHandling || !streaming_) return;
    if (!http10_) out_ += "0\r\n\r\n";
    finish_exchange();
  }
  // An exchange was destroyed. If it was this connection's current one and its response was never
  // completed (a bug upstream: no answer, or a stream without end_stream), finish it rather than
  // leave the client hanging.
  void exchange_gone(const std::string& what) override {
    if (phase_ != Phase::kHandling || !current_.expired() || dead_) return;
    HEARTH_LOG_ERROR("http: {} finished without {}", what, streaming_ ? "ending its stream" : "a response");
    if (streaming_) {
      if (!http10_) out_ += "0\r\n\r\n";
    } else {
      const std::string body = error_body("internal error: no response", "server_error", "");
      out_ +=
          head(500, "application/json", body.size(), keep_alive_, http10_, {}, shared_->config.server_header);
      out_ += body;
    }
    finish_exchange();
  }
  void set_on_close(Exchange& ex, std::function<void()> fn) override {
    if (closed(ex).load(std::memory_order_acquire)) {
      fn();
      return;
    }
    on_close_fn(ex) = std::move(fn);
  }

 private:
  enum class Phase { kReading, kHandling, kFlushing, kDone };

  static Stream make_stream(tcp::socket socket, HttpServer::Shared& shared) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *shared.tls);
    } else {
      return Stream(std::move(socket));
    }
  }
  // The TCP layer (timeouts, cancel, close) and what the bytes go through (TLS, or the socket itself).
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  auto& io() {
    if constexpr (kTls) {
      return stream_;
    } else {
      return stream_.socket();
    }
  }

  void do_read() {
    phase_ = Phase::kReading;
    streaming_ = false;
    head_only_ = false;
    parser_.emplace();
    parser_->body_limit(shared_->config.max_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(shared_->config.max_header_bytes));
    if (!shared_->accepting.load(std::memory_order_relaxed) && buffer_.size() == 0) {
      close();
      return;
    }
    lowest().expires_after(std::chrono::seconds(shared_->config.idle_timeout_s));
    header_bytes_ = 0;
    read_header();
  }

  // The request header, fed to the parser here rather than by http::async_read_header: Beast
  // (1.74) applies header_limit only to the bytes it holds unparsed, so a client whose every read
  // ends one byte into the next field line has each complete line consumed, and its header could
  // grow without bound. Counting the consumed bytes makes max_header_bytes hold.
  void read_header() {
    while (buffer_.size() > 0) {
      beast::error_code ec;
      const size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      header_bytes_ += used;
      if (header_bytes_ > shared_->config.max_header_bytes) {
        return on_read_error(http::error::header_limit);
      }
      if (ec == http::error::need_more) break;
      if (ec) return on_read_error(ec);
      if (parser_->is_header_done()) return on_header({});
      if (used == 0) break;
    }
    stream_.async_read_some(buffer_.prepare(beast::read_size(buffer_, 65536)),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec == net::error::eof) {
                                ec = self->parser_->got_some() ? http::error::partial_message
                                                               : http::error::end_of_stream;
                              }
                              if (ec) return self->on_read_error(ec);
                              self->buffer_.commit(n);
                              self->read_header();
                            });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    const auto& req = parser_->get();
    if (req[http::field::expect] == "100-continue" && !parser_->is_done()) {
      // curl waits a second for this before sending a body over 1 KiB.
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(io(), net::buffer(kContinue),
                       [self = shared_from_this()](beast::error_code wec, size_t) {
                         if (wec) return self->close();
                         self->read_body();
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return reject(413,
                    fmt::format("the request body is larger than {} bytes", shared_->config.max_body_bytes));
    }
    if (ec == http::error::header_limit) {
      return reject(
          431, fmt::format("the request header is larger than {} bytes", shared_->config.max_header_bytes));
    }
    if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return reject(400, fmt::format("malformed HTTP request: {}", ec.message()));
    }
    close();  // EOF, reset, idle timeout
  }

  void reject(int status, const std::string& message) {
    lowest().expires_never();
    phase_ = Phase::kHandling;
    keep_alive_ = false;
    http10_ = false;
    shared_->exchanges_open.fetch_add(1, std::memory_order_relaxed);
    const std::string body = error_body(message, "invalid_request_error", "");
    out_ =
        head(status, "application/json", body.size(), false, false, {}, shared_->config.server_header) + body;
    finish_exchange();
  }

  void on_read(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    lowest().expires_never();
    shared_->requests_total.fetch_add(1, std::memory_order_relaxed);
    shared_->exchanges_open.fetch_add(1, std::memory_order_relaxed);
    HttpRequest req = parser_->release();
    keep_alive_ = req.keep_alive() && shared_->accepting.load(std::memory_order_relaxed);
    http10_ = req.version() < 11;
    head_only_ = req.method() == http::verb::head;
    phase_ = Phase::kHandling;
    auto ex = std::make_shared<Exchange>(shared_from_this(), std::move(req));
    current_ = ex;
    watch();
    shared_->handler(std::move(ex));
  }

  // A read kept pending while a request is handled: it notices a client that goes away (and keeps
  // pipelined bytes for the next request).
  void watch() {
    if (watching_ || dead_ || buffer_.size() > (1u << 20)) return;
    watching_ = true;
    io().async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->on_watch(ec, n);
    });
  }

  void on_watch(beast::error_code ec, size_t n) {
    watching_ = false;
    if (!ec) {
      buffer_.commit(n);
      if (phase_ == Phase::kDone) return do_read();
      return watch();
    }
    if (ec == net::error::operation_aborted && phase_ == Phase::kDone && !dead_) return do_read();
    die();  // the client went away
  }

  void finish_exchange() {
    phase_ = Phase::kFlushing;
    // The response is complete: a disconnect now concerns nobody. Dropping the callback also breaks
    // any reference cycle through what it captured.
    if (auto ex = current_.lock()) on_close_fn(*ex) = nullptr;
    flush();  // exchanges_open drops once the last byte is written (after_response), not before
  }

  void flush() {
    if (writing_ || dead_) return;
    if (out_.empty()) {
      if (phase_ == Phase::kFlushing) after_response();
      return;
    }
    inflight_.clear();
    inflight_.swap(out_);
    writing_ = true;
    write_timer_.expires_after(std::chrono::seconds(shared_->config.write_timeout_s));
    write_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && self->writing_) {
        HEARTH_LOG_WARN("http: write timed out after {} s; closing the connection",
                        self->shared_->config.write_timeout_s);
        self->die();
      }
    });
    net::async_write(io(), net::buffer(inflight_),
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    write_timer_.cancel();
    if (ec) return die();
    flush();
  }

  void after_response() {
    shared_->exchanges_open.fetch_sub(1, std::memory_order_relaxed);  // written out: a drain may end now
    phase_ = Phase::kDone;
    current_.reset();
    if (!keep_alive_) return close();
    if (watching_) {
      beast::error_code ignored;
      lowest().socket().cancel(ignored);  // on_watch continues with do_read()
      return;
    }
    do_read();
  }

  // The client is gone (or must be dropped): tell the exchange, close the socket.
  void die() {
    if (dead_) return;
    dead_ = true;
    if (auto ex = current_.lock(); ex && (phase_ == Phase::kHandling || phase_ == Phase::kFlushing)) {
      closed(*ex).store(true, std::memory_order_release);
      if (on_close_fn(*ex)) {
        auto fn = std::move(on_close_fn(*ex));
        on_close_fn(*ex) = nullptr;
        fn();
      }
    }
    if (phase_ == Phase::kHandling || phase_ == Phase::kFlushing)
      shared_->exchanges_open.fetch_sub(1, std::memory_order_relaxed);
    phase_ = Phase::kDone;
    out_.clear();
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().socket().close(ignored);
    write_timer_.cancel();
  }

  void close() {
    if (dead_) return;
    dead_ = true;
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    lowest().socket().close(ignored);
    write_timer_.cancel();
  }

  Stream stream_;
  net::steady_timer write_timer_;
  std::shared_ptr<HttpServer::Shared> shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  uint64_t header_bytes_ = 0;  // of the request being read
  std::weak_ptr<Exchange> current_;
  std::string out_;       // bytes waiting for the next write
  std::string inflight_;  // bytes being written
  Phase phase_ = Phase::kReading;
  bool keep_alive_ = true;
  bool http10_ = false;
  bool head_only_ = false;
  bool streaming_ = false;
  bool watching_ = false;
  bool writing_ = false;
  bool dead_ = false;
};

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Exchange

Exchange::Exchange(std::shared_ptr<Session> session, HttpRequest request)
    : session_(std::move(session)), request_(std::move(request)) {}

Exchange::~Exchange() {
  // Every strand call holds the exchange, so by now they have all run: completed_ is final.
  if (completed_.load(std::memory_order_acquire)) return;
  std::string what =
      fmt::format("{} {}", std::string(request_.method_string()), std::string(request_.target()));
  auto session = session_;
  session->post([session, w = std::move(what)] { session->exchange_gone(w); });
}

std::string_view Exchange::path() const {
  const std::string_view t(request_.target().data(), request_.target().size());
  const size_t q = t.find('?');
  return q == std::string_view::npos ? t : t.substr(0, q);
}

std::string_view Exchange::header(std::string_view name) const {
  const auto it = request_.find(beast::string_view(name.data(), name.size()));
  if (it == request_.end()) return {};
  return {it->value().data(), it->value().size()};
}

void Exchange::respond(int status, std::string content_type, std::string body, HttpHeaders headers) {
  session_->dispatch([self = shared_from_this(), status, ct = std::move(content_type), b = std::move(body),
                      h = std::move(headers)]() mutable {
    self->session_->respond(*self, status, std::move(ct), std::move(b), std::move(h));
  });
}

void Exchange::start_stream(int status, std::string content_type, HttpHeaders headers) {
  session_->dispatch(
      [self = shared_from_this(), status, ct = std::move(content_type), h = std::move(headers)]() mutable {
        self->session_->start_stream(*self, status, std::move(ct), std::move(h));
      });
}

void Exchange::send_chunk(std::string data) {
  session_->dispatch([self = shared_from_this(), d = std::move(data)]() mutable {
    self->session_->send_chunk(std::move(d));
  });
}

void Exchange::end_stream() {
  session_->dispatch([self = shared_from_this()] { self->session_->end_stream(*self); });
}

void Exchange::post(std::function<void()> fn) {
  session_->post(std::move(fn));
}

void Exchange::on_close(std::function<void()> fn) {
  session_->dispatch([self = shared_from_this(), f = std::move(fn)]() mutable {
    self->session_->set_on_close(*self, std::move(f));
  });
}

// ---------------------------------------------------------------------------------------------------
// HttpServer

namespace {

Result<std::unique_ptr<net::ssl::context>> make_tls_context(const TlsConfig& tls) {
  if (tls.cert_file.empty() || tls.key_file.empty())
    return make_error(ErrorCode::kInvalidArgument, "TLS needs both --tls-cert and --tls-key");
  if (tls.min_version != "1.2" && tls.min_version != "1.3")
    return make_error(ErrorCode::kInvalidArgument, "--tls-min-version must be 1.2 or 1.3, got '{}'",
                      tls.min_version);
  auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
  SSL_CTX* h = ctx->native_handle();
  SSL_CTX_set_min_proto_version(h, tls.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  // TLS 1.2 (when allowed): forward-secret AEAD suites only; no renegotiation, no compression.
  SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_cipher_list(h, "ECDHE+AESGCM:ECDHE+CHACHA20");
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(h, tls.cert_file.c_str()) != 1)
    return make_error(ErrorCode::kInvalidArgument, "--tls-cert {}: not a readable PEM certificate chain ({})",
                      tls.cert_file, openssl_error());
  if (SSL_CTX_use_PrivateKey_file(h, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      return make_error(ErrorCode::kInvalidArgument, "--tls-key {} does not belong to the certificate in {}",
                        tls.key_file, tls.cert_file);
    }
    return make_error(ErrorCode::kInvalidArgument, "--tls-key {}: not a readable PEM private key ({})",
                      tls.key_file, openssl_error());
  }
  if (SSL_CTX_check_private_key(h) != 1)
    return make_error(ErrorCode::kInvalidArgument, "--tls-key {} does not belong to the certificate in {}",
                      tls.key_file, tls.cert_file);
  if (!tls.client_ca_file.empty()) {
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str());
    if (names == nullptr || SSL_CTX_load_verify_locations(h, tls.client_ca_file.c_str(), nullptr) != 1) {
      if (names != nullptr) sk_X509_NAME_pop_free(names, X509_NAME_free);
      return make_error(ErrorCode::kInvalidArgument, "--tls-client-ca {}: not a readable PEM file ({})",
                        tls.client_ca_file, openssl_error());
    }
    SSL_CTX_set_client_CA_list(h, names);
    SSL_CTX_set_verify(h, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return ctx;
}

}  // namespace

Status HttpServer::check_tls(const TlsConfig& tls) {
  if (!tls.enabled()) return Status::ok();
  return make_tls_context(tls).status();
}

Result<std::unique_ptr<HttpServer>> HttpServer::create(const HttpServerConfig& config, Handler handler) {
  if (config.io_threads < 1 || config.io_threads > 256)
    return make_error(ErrorCode::kInvalidArgument, "io threads must be in [1, 256], got {}",
                      config.io_threads);
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->config_ = config;
  s->ioc_ = std::make_unique<net::io_context>(config.io_threads);
  s->shared_ = std::make_shared<Shared>();
  s->shared_->config = config;
  s->shared_->handler = std::move(handler);

  if (config.tls.enabled()) {
    HEARTH_ASSIGN_OR_RETURN(s->shared_->tls, make_tls_context(config.tls));
  }

  beast::error_code ec;
  const auto addr = net::ip::make_address(config.host, ec);
  if (ec)
    return make_error(ErrorCode::kInvalidArgument, "--host {}: not an IP address ({})", config.host,
                      ec.message());
  auto acceptor = std::make_shared<tcp::acceptor>(net::make_strand(*s->ioc_));
  const tcp::endpoint ep(addr, config.port);
  acceptor->open(ep.protocol(), ec);
  if (!ec) acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(ep, ec);
  if (!ec) acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error(
        ErrorCode::kIo, "cannot listen on {}:{}: {}{}", config.host, config.port, ec.message(),
        ec == net::error::address_in_use ? " (choose another --port, or 0 for any free port)" : "");
  }
  s->port_ = acceptor->local_endpoint().port();
  s->acceptor_ = acceptor;
  return s;
}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::start() {
  work_ = std::make_shared<net::executor_work_guard<net::io_context::executor_type>>(ioc_->get_executor());
  do_accept();
  for (int i = 0; i < config_.io_threads; ++i) {
    threads_.emplace_back([this] { ioc_->run(); });
    clockid_t cid{};
    if (pthread_getcpuclockid(threads_.back().native_handle(), &cid) == 0) thread_clocks_.push_back(cid);
  }
}

void HttpServer::do_accept() {
  auto acceptor = std::static_pointer_cast<tcp::acceptor>(acceptor_);
  acceptor->async_accept(net::make_strand(*ioc_), [this, acceptor](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
    if (!ec) {
      if (shared_->connections_open.load(std::memory_order_relaxed) >= config_.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        if (shared_->tls) {
          std::make_shared<SessionImpl<TlsStream>>(std::move(socket), shared_)->start();
        } else {
          std::make_shared<SessionImpl<beast::tcp_stream>>(std::move(socket), shared_)->start();
        }
      }
    } else {
      HEARTH_LOG_WARN("http: accept failed: {}", ec.message());
    }
    do_accept();
  });
}

void HttpServer::stop_accepting() {
  shared_->accepting.store(false);
  if (!acceptor_) return;
  auto acceptor = std::static_pointer_cast<tcp::acceptor>(acceptor_);
  net::post(acceptor->get_executor(), [acceptor] {
    beast::error_code ignored;
    acceptor->close(ignored);
  });
}

void HttpServer::stop() {
  if (threads_.empty()) return;
  work_.reset();
  ioc_->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

HttpServerStats HttpServer::stats() const {
  HttpServerStats s;
  s.connections_total = shared_->connections_total.load(std::memory_order_relaxed);
  s.connections_open = shared_->connections_open.load(std::memory_order_relaxed);
  s.requests_total = shared_->requests_total.load(std::memory_order_relaxed);
  s.exchanges_open = shared_->exchanges_open.load(std::memory_order_relaxed);
  return s;
}

double HttpServer::io_cpu_seconds() const {
  double total = 0;
  for (clockid_t c : thread_clocks_) {
    timespec ts{};
    if (clock_gettime(c, &ts) == 0)
      total += static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
  }
  return total;
}

}  // namespace hearth::server
