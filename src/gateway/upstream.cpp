#include "gateway/upstream.h"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <mutex>
#include <optional>

namespace hearth::gateway {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

Status UpstreamConfig::validate() const {
  if (url.rfind("http://", 0) != 0)
    return make_error(ErrorCode::kInvalidArgument, "--upstream must be http://HOST:PORT, got '{}'", url);
  if (io_threads < 1 || io_threads > 64)
    return make_error(ErrorCode::kInvalidArgument, "upstream I/O threads must be 1-64, got {}", io_threads);
  if (connect_timeout_s < 1 || response_timeout_s < 1)
    return make_error(ErrorCode::kInvalidArgument, "upstream timeouts must be >= 1 s");
  return Status::ok();
}

struct UpstreamPool::Impl {
  UpstreamConfig config;
  std::string host, port, host_port;
  std::unique_ptr<net::io_context> own;  // when not sharing one
  net::io_context* ioc = nullptr;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  tcp::resolver::results_type endpoints;
  std::mutex mu;
  std::vector<std::unique_ptr<beast::tcp_stream>> idle;  // keep-alive connections

  std::unique_ptr<beast::tcp_stream> take_idle() {
    std::lock_guard lk(mu);
    if (idle.empty()) return nullptr;
    auto s = std::move(idle.back());
    idle.pop_back();
    return s;
  }
  void give_back(std::unique_ptr<beast::tcp_stream> s) {
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
      if (self->stream_) self->stream_->close();
    });
  }

 private:
  // One attempt on `s`: false with *retry when the connection proved stale before any response byte.
  net::awaitable<Status> attempt(beast::tcp_stream& s, bool reused, bool* retry, bool* reusable) {
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
    s.expires_after(std::chrono::seconds(pool_.config.response_timeout_s));
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
      s.expires_after(std::chrono::seconds(pool_.config.response_timeout_s));
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
      std::unique_ptr<beast::tcp_stream> s = attempt_no == 0 ? self->pool_.take_idle() : nullptr;
      if (!s) {
        reused = false;
        s = std::make_unique<beast::tcp_stream>(self->strand_);
        beast::error_code ec;
        s->expires_after(std::chrono::seconds(self->pool_.config.connect_timeout_s));
        co_await s->async_connect(self->pool_.endpoints, net::redirect_error(net::use_awaitable, ec));
        if (ec) {
          st = make_error(ErrorCode::kIo, "cannot connect to the upstream {}: {}", self->pool_.host_port,
                          ec == beast::error::timeout ? "timed out" : ec.message());
          break;
        }
        s->socket().set_option(tcp::no_delay(true), ec);
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
        s->expires_never();
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
  beast::tcp_stream* stream_ = nullptr;  // strand only
  bool cancelled_ = false;               // strand only
};

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
  std::string rest = config.url.substr(7);
  if (const size_t slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  const size_t colon = rest.rfind(':');
  impl->host = colon == std::string::npos ? rest : rest.substr(0, colon);
  impl->port = colon == std::string::npos ? "80" : rest.substr(colon + 1);
  int port_no = 0;
  const auto [ptr, ec] = std::from_chars(impl->port.data(), impl->port.data() + impl->port.size(), port_no);
  if (impl->host.empty() || ec != std::errc() || ptr != impl->port.data() + impl->port.size() ||
      port_no < 1 || port_no > 65535)
    return make_error(ErrorCode::kInvalidArgument, "--upstream must be http://HOST:PORT, got '{}'",
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
