#pragma once
// Engine: the serving loop. One engine thread owns the ModelRunner (and so the device and the KV
// cache), the Scheduler and every sequence's Sampler; other threads submit typed requests and get
// their tokens back through a callback called on the engine thread (keep it short: hand the event to
// the connection's own queue). JSON never gets here: the server validates and tokenizes first.
//
// Per step: take new requests and cancellations from the inbox, schedule, run the batch, sample,
// emit events, free finished sequences. A cancelled request's blocks are freed at the next step.
// The queue is bounded (requests and prompt tokens): submit() refuses beyond it at once, so the
// server can answer 429/503 without waiting on the engine thread.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/status.h"
#include "engine/model_runner.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"

namespace hearth {

// What a request hears from the engine: one event per generated token, then a final one.
struct EngineEvent {
  uint64_t id = 0;
  std::optional<SampledToken> token;  // set on token events
  bool finished = false;              // the last event of the request
  FinishReason reason = FinishReason::kNone;
  Status error;               // set when the request failed inside the engine
  int64_t prompt_tokens = 0;  // on the final event: usage
  int64_t cached_prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double queue_seconds = 0;        // submit -> first scheduled
  double first_token_seconds = 0;  // submit -> first token
};

using EngineCallback = std::function<void(const EngineEvent&)>;

struct EngineConfig {
  SchedulerConfig scheduler;
  Status validate() const { return scheduler.validate(); }
};

struct EngineStats {
  int64_t running = 0;
  int64_t waiting = 0;
  double kv_usage = 0;          // fraction of KV blocks in use
  double kv_fragmentation = 0;  // unused fraction of the slots in the running sequences' blocks
  uint64_t prompt_tokens = 0;
  uint64_t generation_tokens = 0;
  uint64_t preemptions = 0;
  uint64_t prefix_queries = 0;
  uint64_t prefix_hits = 0;
  uint64_t steps = 0;
  // Where the engine thread's time goes (seconds, cumulative): scheduling + batch building, the model's
  // forward (incl. the device sync), sampling, and handing tokens out (callbacks, scheduler bookkeeping).
  double schedule_seconds = 0;
  double forward_seconds = 0;
  double sample_seconds = 0;
  double emit_seconds = 0;
};

class Engine {
 public:
  // The runner must outlive the engine. Starts the engine thread.
  Engine(ModelRunner& runner, const EngineConfig& config);
  ~Engine();  // stops the thread; unfinished requests get a final cancelled event
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and queues a request; returns its id. Errors: kInvalidArgument (empty prompt, token id
  // outside the vocabulary, bad sampling values), kOutOfRange (longer than the context or the KV cache),
  // kResourceExhausted (queue full, or draining).
  Result<uint64_t> submit(SequenceRequest request, EngineCallback callback);
  // Cancels a request (client gone): it gets a final cancelled event within one step.
  void cancel(uint64_t id);
  // Stops accepting requests and returns once every accepted one has finished.
  void drain();

  EngineStats stats() const;
  const ModelRunner& runner() const { return runner_; }

 private:
  struct Pending {
    std::unique_ptr<Sequence> seq;
    EngineCallback callback;
    std::chrono::steady_clock::time_point submitted;
  };
  struct Live {
    EngineCallback callback;
    Sampler sampler;
    std::chrono::steady_clock::time_point submitted;
    bool scheduled = false;
    bool first_token = false;
    double queue_seconds = 0;
    double first_token_seconds = 0;
    std::vector<uint8_t> allowed;  // a constrained sequence's mask (guided decoding), reused every step
  };
  // A logit row the host samples this step (sampling runs on the runner's pool, one row per task).
  struct HostRow {
    size_t chunk = 0;
    int64_t row = 0;
    Live* live = nullptr;
  };
  void loop();
  void step();
  void finish_all(const Status& error);
  static EngineEvent final_event(const Sequence& done, const Live& live);

  ModelRunner& runner_;
  EngineConfig config_;
  Scheduler scheduler_;
  std::unordered_map<uint64_t, Live> live_;  // engine thread only
  std::vector<float> logits_;                // engine thread only: reused every step
  std::vector<size_t> mask_rows_;  // engine thread only: chunks whose guided-decoding mask goes to the device
  std::vector<HostRow> host_rows_;          // engine thread only: rows sampled on the host this step
  std::vector<SampledToken> sampled_;       // engine thread only: each logit row's token this step
  std::vector<DeviceToken> device_tokens_;  // engine thread only: the device's token per logit row

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable drained_;
  std::deque<Pending> inbox_;
  std::unordered_set<uint64_t> cancels_;
  int64_t sched_waiting_requests_ = 0;  // the scheduler's queue, published after each step
  int64_t sched_waiting_tokens_ = 0;
  int64_t inbox_tokens_ = 0;
  int64_t in_flight_ = 0;  // accepted and not finished
  bool stop_ = false;
  bool draining_ = false;
  uint64_t next_id_ = 1;
  EngineStats stats_;  // published under mu_ after each step

  std::thread thread_;
};

}  // namespace hearth
