#pragma once
// Scheduler: continuous batching, pure policy over the BlockManager. Each step it chooses which
// sequences advance and by how many tokens, within a token budget (chunked prefill: a long prompt is
// computed over several steps while others keep decoding):
//   1. running sequences first, in admission order (a decode token each, or their next prefill chunk);
//      when the KV cache cannot hold a running sequence's next tokens, the least important running
//      sequence (highest priority value, then latest arrival) is preempted: its blocks are freed and it
//      goes back to the queue to be recomputed later — never a crash;
//   2. then waiting sequences, by priority class (lower first), within a class the tenant with the
//      fewest weighted tokens served (virtual token counters: one tenant's flood cannot starve
//      another), FCFS within a tenant; admission takes cached prefix blocks first, then needs free
//      blocks for its first chunk.
// The queue is bounded by requests and by prompt tokens; add() refuses beyond it.
// Mechanism lives elsewhere: BlockManager allocates, the runner computes, the caller samples.
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "engine/block_manager.h"
#include "engine/forward_batch.h"
#include "engine/sequence.h"

namespace hearth {

struct SchedulerConfig {
  int64_t max_num_seqs = 64;             // sequences in one batch
  int64_t max_batched_tokens = 512;      // tokens computed per step (the chunked-prefill budget)
  int64_t max_waiting = 1024;            // queued requests
  int64_t max_waiting_tokens = 1 << 22;  // queued prompt tokens

  Status validate() const;
};

struct ScheduledChunk {
  Sequence* seq = nullptr;
  int64_t start = 0;         // seq->computed when scheduled
  int64_t tokens = 0;        // tokens to compute this step
  bool want_logits = false;  // the chunk reaches the end of the sequence: sample after it
};

struct SchedulerStep {
  std::vector<ScheduledChunk> chunks;
  int64_t num_tokens = 0;
  std::vector<uint64_t> preempted;  // ids preempted during this step's planning
};

// The batch a step computes: each chunk's tokens, start position and block table, in step order.
// The spans point into the sequences, which stay put until the step is done.
ForwardBatch to_forward_batch(const SchedulerStep& step);

struct SchedulerCounters {
  uint64_t preemptions = 0;
  uint64_t admitted = 0;
  uint64_t finished = 0;
  uint64_t rejected = 0;
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, BlockManager& blocks);

  // Queues a request. kResourceExhausted when the queue is full (retry later); kOutOfRange when the
  // sequence could never fit the KV cache, even alone.
  Status add(std::unique_ptr<Sequence> seq);
  // Marks a sequence cancelled (client gone); its blocks are freed at the next schedule().
  void cancel(uint64_t id);

  // Plans one step. Chunks are in batch order; empty when nothing can run.
  SchedulerStep schedule();
  // After the forward pass: every chunk of `step` is computed (KV written); full blocks become
  // shareable through the prefix cache.
  void on_computed(const SchedulerStep& step);
  // A token was sampled for `seq` (a chunk with want_logits): appends it and finishes the sequence at a
  // stop id or max_tokens.
  void on_token(Sequence& seq, int32_t token);

  // Sequences that finished (or were cancelled) since the last call; their blocks are released.
  std::vector<std::unique_ptr<Sequence>> take_finished();

  int64_t num_waiting() const;
  int64_t num_running() const { return static_cast<int64_t>(running_.size()); }
  int64_t waiting_tokens() const { return waiting_tokens_; }
  // KV held by the running sequences: tokens cached and the slots of their blocks (fragmentation).
  std::pair<int64_t, int64_t> running_kv_tokens_and_slots() const;
  bool idle() const { return running_.empty() && num_waiting() == 0; }
  const SchedulerCounters& counters() const { return counters_; }
  // Weighted tokens served per tenant so far (fairness state; exposed for tests and metrics).
  double served(const std::string& tenant) const;

 private:
  struct TenantQueue {
    std::deque<std::unique_ptr<Sequence>> fifo;
    double virtual_tokens = 0;
  };
  void finish(std::unique_ptr<Sequence> seq, FinishReason reason);
  void preempt(size_t running_index, SchedulerStep& step);
  void drop_cancelled();
  // The tenant queue to admit from next (lowest priority class, then fewest served), or null.
  TenantQueue* next_tenant(std::string* tenant);
  void charge(const std::string& tenant, int64_t tokens);
  void enqueue(std::unique_ptr<Sequence> seq, bool front);

  SchedulerConfig config_;
  BlockManager& blocks_;
  std::vector<std::unique_ptr<Sequence>> running_;  // admission order
  // priority class -> tenant -> queue
  std::map<int32_t, std::map<std::string, TenantQueue>> waiting_;
  std::unordered_map<std::string, double> served_;
  std::vector<std::unique_ptr<Sequence>> finished_;
  int64_t waiting_count_ = 0;
  int64_t waiting_tokens_ = 0;
  uint64_t next_arrival_ = 0;
  SchedulerCounters counters_;
};

}  // namespace hearth
