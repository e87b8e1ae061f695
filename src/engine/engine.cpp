#include "engine/engine.h"

#include <limits>

namespace hearth {

namespace {
SchedulerConfig unbounded(SchedulerConfig c) {
  // The engine bounds its queue itself, synchronously in submit(); the scheduler's own bound would only
  // reject later, on the engine thread.
  c.max_waiting = std::numeric_limits<int64_t>::max() / 2;
  c.max_waiting_tokens = std::numeric_limits<int64_t>::max() / 2;
  return c;
}
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

Engine::Engine(ModelRunner& runner, const EngineConfig& config)
    : runner_(runner), config_(config), scheduler_(unbounded(config.scheduler), runner.blocks()) {
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

Result<uint64_t> Engine::submit(SequenceRequest request, EngineCallback callback) {
  const int64_t vocab = runner_.spec().vocab_size;
  if (request.prompt.empty()) return make_error(ErrorCode::kInvalidArgument, "the prompt is empty");
  if (request.max_tokens < 1) return make_error(ErrorCode::kInvalidArgument, "max_tokens must be >= 1");
  for (size_t i = 0; i < request.prompt.size(); ++i) {
    const int32_t t = request.prompt[i];
    if (t < 0 || t >= vocab) {
      return make_error(ErrorCode::kInvalidArgument,
                        "prompt token {} (position {}) is outside the vocabulary [0, {})", t, i, vocab);
    }
  }
  HEARTH_RETURN_IF_ERROR(request.sampling.validate());
  const int64_t len = static_cast<int64_t>(request.prompt.size()) + request.max_tokens;
  if (len > runner_.max_context()) {
    return make_error(ErrorCode::kOutOfRange,
                      "the prompt ({} tokens) plus max_tokens ({}) exceeds the model's context of {} tokens",
                      request.prompt.size(), request.max_tokens, runner_.max_context());
  }
  const int64_t bs = runner_.kv_block_size();
  if ((len + bs - 1) / bs > runner_.kv_num_blocks()) {
    return make_error(ErrorCode::kOutOfRange, "the request needs {} tokens of KV cache; the cache holds {}",
                      len, runner_.kv_num_blocks() * bs);
  }
  const int64_t prompt_len = static_cast<int64_t>(request.prompt.size());
  std::lock_guard<std::mutex> lock(mu_);
  if (draining_ || stop_) return make_error(ErrorCode::kResourceExhausted, "the engine is shutting down");
  const int64_t queued = static_cast<int64_t>(inbox_.size()) + sched_waiting_requests_;
  const int64_t queued_tokens = inbox_tokens_ + sched_waiting_tokens_;
  if (queued + 1 > config_.scheduler.max_waiting ||
      queued_tokens + prompt_len > config_.scheduler.max_waiting_tokens) {
    return make_error(ErrorCode::kResourceExhausted,
                      "the queue is full ({} requests, {} prompt tokens waiting)", queued, queued_tokens);
  }
  const uint64_t id = next_id_++;
  inbox_.push_back({std::make_unique<Sequence>(id, std::move(request)), std::move(callback),
                    std::chrono::steady_clock::now()});
  inbox_tokens_ += prompt_len;
  ++in_flight_;
  wake_.notify_one();
  return id;
}

void Engine::cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_.insert(id);
  }
  wake_.notify_one();
}

void Engine::drain() {
  std::unique_lock<std::mutex> lock(mu_);
  draining_ = true;
  drained_.wait(lock, [&] { return in_flight_ == 0; });
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Engine::loop() {
  for (;;) {
    std::deque<Pending> fresh;
    std::unordered_set<uint64_t> cancels;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || !inbox_.empty() || !cancels_.empty() || !scheduler_.idle(); });
      if (stop_) break;
      fresh.swap(inbox_);
      inbox_tokens_ = 0;
      cancels.swap(cancels_);
    }
    for (Pending& p : fresh) {
      const uint64_t id = p.seq->id;
      Live live{std::move(p.callback), Sampler(p.seq->request.sampling, runner_.spec().vocab_size),
                p.submitted};
      live.sampler.add_prompt(p.seq->request.prompt);
      const Status st = scheduler_.add(std::move(p.seq));
      if (!st.is_ok()) {  // validated in submit(): only a bug gets here
        EngineEvent e;
        e.id = id;
        e.finished = true;
        e.error = st;
        live.callback(e);
        std::lock_guard<std::mutex> lock(mu_);
        --in_flight_;
        continue;
      }
      live_.emplace(id, std::move(live));
    }
    for (uint64_t id : cancels) scheduler_.cancel(id);
    step();
  }
  finish_all(make_error(ErrorCode::kResourceExhausted, "the engine stopped"));
}

EngineEvent Engine::final_event(const Sequence& done, const Live& live) {
  EngineEvent e;
  e.id = done.id;
  e.finished = true;
  e.reason = done.finish;
  e.prompt_tokens = done.prompt_len;
  e.cached_prompt_tokens = done.cached_prompt_tokens;
  e.completion_tokens = done.output_len();
  e.queue_seconds = live.queue_seconds;
  e.first_token_seconds = live.first_token_seconds;
  return e;
}

void Engine::step() {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point t0 = Clock::now();
  Clock::time_point t1 = t0, t2 = t0, t3 = t0;
  SchedulerStep plan = scheduler_.schedule();
  uint64_t gen_tokens = 0, prompt_tokens = 0;
  if (!plan.chunks.empty()) {
    ForwardBatch batch = to_forward_batch(plan);
    // On a GPU, rows without penalties are sampled there (no logits row copied back); guided decoding
    // sends its mask of allowed ids, filled here on the runner's pool.
    if (runner_.device() == RunnerDevice::kCuda) {
      mask_rows_.clear();
      for (size_t i = 0; i < batch.chunks.size(); ++i) {
        SequenceChunk& chunk = batch.chunks[i];
        const Sequence& seq = *plan.chunks[i].seq;
        Live& live = live_.at(seq.id);
        chunk.device_sample = chunk.want_logits && live.sampler.device_samplable();
        if (!chunk.device_sample) continue;
        chunk.sampling = live.sampler.device_sampling();
        if (seq.request.constraint != nullptr) {
          live.allowed.resize(static_cast<size_t>(runner_.spec().vocab_size));
          chunk.sampling.allowed = live.allowed.data();
          mask_rows_.push_back(i);
        }
      }
      const auto fill = [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
          const Sequence& seq = *plan.chunks[mask_rows_[static_cast<size_t>(k)]].seq;
          seq.request.constraint->fill_allowed(live_.at(seq.id).allowed);
        }
      };
      if (mask_rows_.size() > 1) {
        runner_.pool().parallel_for(static_cast<int64_t>(mask_rows_.size()), fill);
      } else {
        fill(0, static_cast<int64_t>(mask_rows_.size()));
      }
    }
    for (const ScheduledChunk& c : plan.chunks) {
      Live& live = live_.at(c.seq->id);
      if (!live.scheduled) {
        live.scheduled = true;
        live.queue_seconds = seconds_since(live.submitted);
      }
      if (c.start < c.seq->prompt_len)
        prompt_tokens += static_cast<uint64_t>(std::min(c.tokens, c.seq->prompt_len - c.start));
    }
    t1 = Clock::now();
    const Status st = runner_.forward(batch, logits_, &device_tokens_);
    t2 = Clock::now();
    if (!st.is_ok()) {
      finish_all(st);
      return;
    }
    scheduler_.on_computed(plan);
    const int64_t vocab = runner_.spec().vocab_size;
    // Sampling: the device's rows are taken as they are; the rest (penalties, guided decoding, every row on
    // the CPU) run on the runner's pool, one row per task. Each sequence owns its sampler
    // (and RNG) and constraint, so the tokens do not depend on the thread count.
    host_rows_.clear();
    sampled_.resize(plan.chunks.size());
    int64_t row = 0;
    for (size_t i = 0; i < plan.chunks.size(); ++i) {
      if (!plan.chunks[i].want_logits) continue;
      Live& live = live_.at(plan.chunks[i].seq->id);
      if (batch.chunks[i].device_sample && !device_tokens_.empty()) {
        sampled_[i] = live.sampler.accept(device_tokens_[static_cast<size_t>(row)]);
      } else {
        host_rows_.push_back({i, row, &live});
      }
      ++row;
    }
    const auto sample_rows = [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const HostRow& h = host_rows_[static_cast<size_t>(k)];
        const ScheduledChunk& c = plan.chunks[h.chunk];
        Live& live = *h.live;
        const std::span<const float> lrow(logits_.data() + h.row * vocab, static_cast<size_t>(vocab));
        TokenConstraint* constraint = c.seq->request.constraint.get();
        if (constraint != nullptr) {
          live.allowed.resize(static_cast<size_t>(vocab));
          constraint->fill_allowed(live.allowed);
          sampled_[h.chunk] = live.sampler.sample(lrow, live.allowed);
        } else {
          sampled_[h.chunk] = live.sampler.sample(lrow);
        }
      }
    };
    if (host_rows_.size() > 1) {
      runner_.pool().parallel_for(static_cast<int64_t>(host_rows_.size()), sample_rows);
    } else {
      sample_rows(0, static_cast<int64_t>(host_rows_.size()));
    }
    t3 = Clock::now();
    for (size_t i = 0; i < plan.chunks.size(); ++i) {
      const ScheduledChunk& c = plan.chunks[i];
      if (!c.want_logits) continue;
      Live& live = live_.at(c.seq->id);
      SampledToken tok = std::move(sampled_[i]);
      if (TokenConstraint* constraint = c.seq->request.constraint.get()) constraint->accept(tok.id);
      ++gen_tokens;
      if (!live.first_token) {
        live.first_token = true;
        live.first_token_seconds = seconds_since(live.submitted);
      }
      EngineEvent e;
      e.id = c.seq->id;
      const int32_t id = tok.id;
      e.token = std::move(tok);
      live.callback(e);
      scheduler_.on_token(*c.seq, id);
    }
  }
  int64_t finished = 0;
  for (auto& done : scheduler_.take_finished()) {
    auto it = live_.find(done->id);
    if (it == live_.end()) continue;
    it->second.callback(final_event(*done, it->second));
    live_.erase(it);
    ++finished;
  }
  std::lock_guard<std::mutex> lock(mu_);
  sched_waiting_requests_ = scheduler_.num_waiting();
  sched_waiting_tokens_ = scheduler_.waiting_tokens();
  in_flight_ -= finished;
  stats_.running = scheduler_.num_running();
  stats_.waiting = sched_waiting_requests_ + static_cast<int64_t>(inbox_.size());
  const BlockManager& bm = runner_.blocks();
  stats_.kv_usage =
      bm.num_blocks() > 0 ? static_cast<double>(bm.num_used()) / static_cast<double>(bm.num_blocks()) : 0;
  const auto [kv_tokens, kv_slots] = scheduler_.running_kv_tokens_and_slots();
  stats_.kv_fragmentation =
      kv_slots > 0 ? 1.0 - static_cast<double>(kv_tokens) / static_cast<double>(kv_slots) : 0.0;
  stats_.prompt_tokens += prompt_tokens;
  stats_.generation_tokens += gen_tokens;
  stats_.preemptions = scheduler_.counters().preemptions;
  stats_.prefix_queries = bm.stats().queries;
  stats_.prefix_hits = bm.stats().hits;
  ++stats_.steps;
  if (!plan.chunks.empty()) {
    const auto sec = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
    stats_.schedule_seconds += sec(t1 - t0);
    stats_.forward_seconds += sec(t2 - t1);
    stats_.sample_seconds += sec(t3 - t2);
    stats_.emit_seconds += sec(Clock::now() - t3);
  }
  if (in_flight_ == 0) drained_.notify_all();
}

void Engine::finish_all(const Status& error) {
  // Cancel everything the scheduler holds, then report each request once.
  for (auto& [id, live] : live_) scheduler_.cancel(id);
  (void)scheduler_.schedule();  // drops the cancelled sequences, freeing their blocks
  for (auto& done : scheduler_.take_finished()) {
    auto it = live_.find(done->id);
    if (it == live_.end()) continue;
    EngineEvent e = final_event(*done, it->second);
    e.reason = FinishReason::kCancelled;
    e.error = error;
    it->second.callback(e);
    live_.erase(it);
  }
  std::deque<Pending> rest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rest.swap(inbox_);
  }
  for (Pending& p : rest) {
    EngineEvent e;
    e.id = p.seq->id;
    e.finished = true;
    e.reason = FinishReason::kCancelled;
    e.error = error;
    p.callback(e);
  }
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_ = 0;
  drained_.notify_all();
}

}  // namespace hearth
