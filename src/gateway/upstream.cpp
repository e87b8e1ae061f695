#include "gateway/upstream.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <charconv>
#include <mutex>
#include <optional>

#include "server/openssl_error.h"

namespace hearth::gateway {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

Status UpstreamConfig::validate() const {
  const bool tls = url.rfind("https://", 0) == 0;
  if (url.rfind("http://", 0) != 0 && !tls)
    return make_error(ErrorCode::kInvalidArgument,
                      "--upstream must be http://HOST:PORT or https://HOST[:PORT], got '{}'", url);
  if (!tls && (!ca_file.empty() || !client_cert_file.empty() || !client_key_file.empty()))
    return make_error(ErrorCode::kInvalidArgument,
                      "--upstream-ca/--upstream-cert/--upstream-key need an https:// upstream");
  if (client_cert_file.empty() != client_key_file.empty())
    return make_error(ErrorCode::kInvalidArgument, "--upstream-cert and --upstream-key go together");
  if (io_threads < 1 || io_threads > 64)
    return make_error(ErrorCode::kInvalidArgument, "upstream I/O threads must be 1-64, got {}", io_threads);
  if (connect_timeout_s < 1 || response_timeout_s < 1)
    return make_error(ErrorCode::kInvalidArgument, "upstream timeouts must be >= 1 s");
  return Status::ok();
}

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// A connection: plain, or TLS over TCP.
struct Conn {
  std::unique_ptr<beast::tcp_stream> tcp;
  std::unique_ptr<TlsStream> tls;
  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *tcp; }
};

struct UpstreamPool::Impl {
  UpstreamConfig config;
  std::string host, port, host_port;
  std::unique_ptr<net::ssl::context> tls;  // https upstreams
  std::unique_ptr<net::io_context> own;    // when not sharing one
  net::io_context* ioc = nullptr;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  tcp::resolver::results_type endpoints;
  std::mutex mu;
  std::vector<std::unique_ptr<Conn>> idle;  // keep-alive connections

  std::unique_ptr<Conn> take_idle() {
    std::lock_guard lk(mu);
    if (idle.empty()) return nullptr;
    auto s = std::move(idle.back());
    idle.pop_back();
    return s;
  }
  void give_back(std::unique_ptr<Conn> s) {
    std::lock_guard lk(mu);
    if (static_cast<int>(idle.size()) < config.max_idle_connections) idle.push_back(std::move(s));
  }
};

namespace {

class Call final : public UpstreamCall, public std::enable_shared_from_this<Call> {
 public:
  Call(UpstreamPool::Impl& pool, UpstreamRequest req, UpstreamHandlers h)
      : pool_(pool), strand_(net::make_strand(*pool.ioc)), req_(std::move(req)), h_(std::move(h)) {}

  void start() { net::co_spawn(strand_, run(shared_from_this()), net::detached); }

  void cancel() override {
    net::post(strand_, [self = shared_from_this()] {
      self->cancelled_ = true;
      if (self->stream_) self->stream_->lowest().close();
    });
  }

 private:
  net::awaitable<Status> attempt(Conn& c, bool reused, bool* retry, bool* reusable) {
    if (c.tls) co_return co_await attempt_on(*c.tls, reused, retry, reusable);
    co_return co_await attempt_on(*c.tcp, reused, retry, reusable);
  }

  // One attempt on `s`: false with *retry when the connection proved stale before any response byte.
  template <typename Stream>
  net::awaitable<Status> attempt_on(Stream& s, bool reused, bool* retry, bool* reusable) {
    *retry = false;
    *reusable = false;
    http::request<http::string_body> r(req_.method == "GET" ? http::verb::get : http::verb::post, req_.target,
                                       11);
    r.set(http::field::host, pool_.host_port);
    for (const auto& [k, v] : req_.headers) r.set(k, v);
    r.body() = req_.body;
    r.prepare_payload();
    r.keep_alive(true);
    beast::error_code ec;
    beast::get_lowest_layer(s).expires_after(std::chrono::seconds(pool_.config.response_timeout_s));
    co_await http::async_write(s, r, net::redirect_error(net::use_awaitable, ec));
    http::response_parser<http::buffer_body> p;
    p.body_limit(std::uint64_t{1} << 40);  // streams are long
    beast::flat_buffer buf;
    if (!ec) co_await http::async_read_header(s, buf, p, net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      if (cancelled_) co_return make_error(ErrorCode::kIo, "cancelled");
      // A reused connection the upstream had closed while idle: nothing was processed, try a fresh one.
      *retry = reused && (ec == http::error::end_of_stream || ec == net::error::connection_reset ||
                          ec == net::error::eof || ec == net::error::broken_pipe);
      co_return make_error(ErrorCode::kIo, "upstream {}: {}", pool_.host_port,
                           ec == beast::error::timeout ? "timed out" : ec.message());
    }
    Headers headers;
    for (const auto& f : p.get()) {
      if (f.name() == http::field::transfer_encoding || f.name() == http::field::content_length ||
          f.name() == http::field::connection || f.name() == http::field::keep_alive)
        continue;
      headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    if (h_.on_head) h_.on_head(p.get().result_int(), headers);
    char chunk[16384];
    while (!p.is_done()) {
      p.get().body().data = chunk;
      p.get().body().size = sizeof chunk;
      beast::get_lowest_layer(s).expires_after(std::chrono::seconds(pool_.config.response_timeout_s));
      co_await http::async_read_some(s, buf, p, net::redirect_error(net::use_awaitable, ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        if (cancelled_) co_return make_error(ErrorCode::kIo, "cancelled");
        co_return make_error(ErrorCode::kIo, "upstream {}: the response broke off: {}", pool_.host_port,
                             ec == beast::error::timeout ? "timed out" : ec.message());
      }
      const size_t n = sizeof chunk - p.get().body().size;
      if (n > 0 && h_.on_data) h_.on_data(std::string_view(chunk, n));
    }
    *reusable = p.keep_alive();
    co_return Status::ok();
  }

  static net::awaitable<void> run(std::shared_ptr<Call> self) {
    Status st = Status::ok();
    for (int attempt_no = 0; attempt_no < 2; ++attempt_no) {
      bool reused = true;
      std::unique_ptr<Conn> s = attempt_no == 0 ? self->pool_.take_idle() : nullptr;
      if (!s) {
        reused = false;
        s = std::make_unique<Conn>();
        if (self->pool_.tls) {
          s->tls = std::make_unique<TlsStream>(self->strand_, *self->pool_.tls);
        } else {
          s->tcp = std::make_unique<beast::tcp_stream>(self->strand_);
        }
        beast::error_code ec;
        s->lowest().expires_after(std::chrono::seconds(self->pool_.config.connect_timeout_s));
        co_await s->lowest().async_connect(self->pool_.endpoints,
                                           net::redirect_error(net::use_awaitable, ec));
        if (ec) {
          st = make_error(ErrorCode::kIo, "cannot connect to the upstream {}: {}", self->pool_.host_port,
                          ec == beast::error::timeout ? "timed out" : ec.message());
          break;
        }
        s->lowest().socket().set_option(tcp::no_delay(true), ec);
        if (s->tls) {
          // SNI and the certificate's name must match the upstream's host.
          SSL_set_tlsext_host_name(s->tls->native_handle(), self->pool_.host.c_str());
          s->tls->set_verify_callback(net::ssl::host_name_verification(self->pool_.host));
          co_await s->tls->async_handshake(net::ssl::stream_base::client,
                                           net::redirect_error(net::use_awaitable, ec));
          if (ec) {
            st = make_error(ErrorCode::kIo, "TLS to the upstream {} failed: {}", self->pool_.host_port,
                            ec == beast::error::timeout ? "timed out" : ec.message());
            break;
          }
        }
      }
      if (self->cancelled_) {
        st = make_error(ErrorCode::kIo, "cancelled");
        break;
      }
      self->stream_ = s.get();
      bool retry = false, reusable = false;
      st = co_await self->attempt(*s, reused, &retry, &reusable);
      self->stream_ = nullptr;
      if (st.is_ok() && reusable) {
        s->lowest().expires_never();
        self->pool_.give_back(std::move(s));
      }
      if (!retry) break;
    }
    if (self->h_.on_done) self->h_.on_done(st);
  }

  UpstreamPool::Impl& pool_;
  net::strand<net::io_context::executor_type> strand_;
  UpstreamRequest req_;
  UpstreamHandlers h_;
  Conn* stream_ = nullptr;  // strand only
  bool cancelled_ = false;  // strand only
};

}  // namespace

namespace {

// TLS 1.2+ client: the upstream's chain verified (ca_file, else the system's store), optionally a client
// certificate for mTLS.
Result<std::unique_ptr<net::ssl::context>> client_tls_context(const UpstreamConfig& c) {
  auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
  SSL_CTX* h = ctx->native_handle();
  SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
  SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  ctx->set_verify_mode(net::ssl::verify_peer);
  ERR_clear_error();
  if (!c.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(h, c.ca_file.c_str(), nullptr) != 1)
      return make_error(ErrorCode::kInvalidArgument, "--upstream-ca {}: not a readable PEM file ({})",
                        c.ca_file, server::openssl_error());
  } else if (SSL_CTX_set_default_verify_paths(h) != 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the system's CA certificates are not readable ({}); give --upstream-ca",
                      server::openssl_error());
  }
  if (!c.client_cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(h, c.client_cert_file.c_str()) != 1)
      return make_error(ErrorCode::kInvalidArgument,
                        "--upstream-cert {}: not a readable PEM certificate ({})", c.client_cert_file,
                        server::openssl_error());
    if (SSL_CTX_use_PrivateKey_file(h, c.client_key_file.c_str(), SSL_FILETYPE_PEM) != 1)
      return make_error(ErrorCode::kInvalidArgument, "--upstream-key {}: not a readable PEM private key ({})",
                        c.client_key_file, server::openssl_error());
    if (SSL_CTX_check_private_key(h) != 1)
      return make_error(ErrorCode::kInvalidArgument, "--upstream-key does not belong to --upstream-cert");
  }
  return ctx;
}

}  // namespace

Result<std::unique_ptr<UpstreamPool>> UpstreamPool::create(const UpstreamConfig& config,
                                                           net::io_context* shared) {
  HEARTH_RETURN_IF_ERROR(config.validate());
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  if (shared == nullptr) {
    impl->own = std::make_unique<net::io_context>();
    impl->ioc = impl->own.get();
    impl->work.emplace(impl->ioc->get_executor());
  } else {
    impl->ioc = shared;
  }
  const bool https = config.url.rfind("https://", 0) == 0;
  std::string rest = config.url.substr(https ? 8 : 7);
  if (const size_t slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  const size_t colon = rest.rfind(':');
  impl->host = colon == std::string::npos ? rest : rest.substr(0, colon);
  impl->port = colon == std::string::npos ? (https ? "443" : "80") : rest.substr(colon + 1);
  if (https) {
    HEARTH_ASSIGN_OR_RETURN(impl->tls, client_tls_context(config));
  }
  int port_no = 0;
  const auto [ptr, ec] = std::from_chars(impl->port.data(), impl->port.data() + impl->port.size(), port_no);
  if (impl->host.empty() || ec != std::errc() || ptr != impl->port.data() + impl->port.size() ||
      port_no < 1 || port_no > 65535)
    return make_error(ErrorCode::kInvalidArgument, "--upstream must be http(s)://HOST:PORT, got '{}'",
                      config.url);
  impl->host_port = impl->host + ":" + impl->port;
  beast::error_code rec;
  tcp::resolver resolver(*impl->ioc);
  impl->endpoints = resolver.resolve(impl->host, impl->port, rec);
  if (rec)
    return make_error(ErrorCode::kInvalidArgument, "cannot resolve the upstream {}: {}", impl->host,
                      rec.message());
  if (impl->own)
    for (int i = 0; i < config.io_threads; ++i)
      impl->threads.emplace_back([p = impl.get()] { p->ioc->run(); });
  return std::unique_ptr<UpstreamPool>(new UpstreamPool(std::move(impl)));
}

UpstreamPool::UpstreamPool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

UpstreamPool::~UpstreamPool() {
  if (impl_->own) {
    impl_->work.reset();
    impl_->ioc->stop();
    for (auto& t : impl_->threads) t.join();
  }
  impl_->idle.clear();
}

std::shared_ptr<UpstreamCall> UpstreamPool::send(UpstreamRequest request, UpstreamHandlers handlers) {
  auto c = std::make_shared<Call>(*impl_, std::move(request), std::move(handlers));
  c->start();
  return c;
}

const std::string& UpstreamPool::host_port() const {
  return impl_->host_port;
}

}  // namespace hearth::gateway
