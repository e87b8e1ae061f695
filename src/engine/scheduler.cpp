#include "engine/scheduler.h"

#include <algorithm>
#include <limits>

namespace hearth {

std::string_view finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kLength: return "length";
    case FinishReason::kStop: return "stop";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kNone: break;
  }
  return "";
}

ForwardBatch to_forward_batch(const SchedulerStep& step) {
  ForwardBatch batch;
  batch.chunks.reserve(step.chunks.size());
  for (const ScheduledChunk& c : step.chunks) {
    SequenceChunk sc;
    sc.tokens = std::span<const int32_t>(c.seq->tokens)
                    .subspan(static_cast<size_t>(c.start), static_cast<size_t>(c.tokens));
    sc.start_pos = c.start;
    sc.block_table = c.seq->blocks;
    sc.want_logits = c.want_logits;
    batch.chunks.push_back(sc);
  }
  return batch;
}

Status SchedulerConfig::validate() const {
  if (max_num_seqs < 1 || max_num_seqs > 65536)
    return make_error(ErrorCode::kInvalidArgument, "max_num_seqs must be in [1, 65536], got {}",
                      max_num_seqs);
  if (max_batched_tokens < 1 || max_batched_tokens > (1 << 20))
    return make_error(ErrorCode::kInvalidArgument, "max_batched_tokens must be in [1, 2^20], got {}",
                      max_batched_tokens);
  if (max_waiting < 0 || max_waiting_tokens < 0)
    return make_error(ErrorCode::kInvalidArgument, "queue bounds must be >= 0");
  return Status::ok();
}

Scheduler::Scheduler(const SchedulerConfig& config, BlockManager& blocks)
    : config_(config), blocks_(blocks) {}

int64_t Scheduler::num_waiting() const {
  return waiting_count_;
}

double Scheduler::served(const std::string& tenant) const {
  auto it = served_.find(tenant);
  return it == served_.end() ? 0.0 : it->second;
}

void Scheduler::charge(const std::string& tenant, int64_t tokens) {
  served_[tenant] += static_cast<double>(tokens);
}

void Scheduler::enqueue(std::unique_ptr<Sequence> seq, bool front) {
  const std::string tenant = seq->request.tenant;
  waiting_tokens_ += seq->prompt_len;
  ++waiting_count_;
  auto& q = waiting_[seq->request.priority][tenant];
  if (front) {
    q.fifo.push_front(std::move(seq));
  } else {
    q.fifo.push_back(std::move(seq));
  }
}

Status Scheduler::add(std::unique_ptr<Sequence> seq) {
  const int64_t need_blocks = (seq->max_len() + blocks_.block_size() - 1) / blocks_.block_size();
  if (need_blocks > blocks_.num_blocks()) {
    ++counters_.rejected;
    return make_error(ErrorCode::kOutOfRange,
                      "the request needs {} KV blocks ({} tokens) but the cache has {} in all", need_blocks,
                      seq->max_len(), blocks_.num_blocks());
  }
  if (waiting_count_ + 1 > config_.max_waiting ||
      waiting_tokens_ + seq->prompt_len > config_.max_waiting_tokens) {
    ++counters_.rejected;
    return make_error(ErrorCode::kResourceExhausted,
                      "the queue is full ({} requests, {} prompt tokens waiting)", waiting_count_,
                      waiting_tokens_);
  }
  // A tenant that was idle starts level with the least-served active tenant: no credit is banked by
  // staying away, and a newcomer is not starved by history.
  const std::string& t = seq->request.tenant;
  bool active = false;
  double min_active = std::numeric_limits<double>::infinity();
  auto consider = [&](const std::string& tenant) {
    if (tenant == t) active = true;
    min_active = std::min(min_active, served(tenant));
  };
  for (const auto& s : running_) consider(s->request.tenant);
  for (const auto& [prio, tenants] : waiting_)
    for (const auto& [tenant, q] : tenants)
      if (!q.fifo.empty()) consider(tenant);
  if (!active && min_active != std::numeric_limits<double>::infinity()) {
    served_[t] = std::max(served(t), min_active);
  }
  seq->arrival = next_arrival_++;
  enqueue(std::move(seq), false);
  return Status::ok();
}

void Scheduler::cancel(uint64_t id) {
  for (auto& s : running_)
    if (s->id == id) s->cancelled = true;
  for (auto& [prio, tenants] : waiting_)
    for (auto& [tenant, q] : tenants)
      for (auto& s : q.fifo)
        if (s->id == id) s->cancelled = true;
}

void Scheduler::finish(std::unique_ptr<Sequence> seq, FinishReason reason) {
  seq->finish = reason;
  blocks_.release(seq->blocks);
  ++counters_.finished;
  finished_.push_back(std::move(seq));
}

void Scheduler::drop_cancelled() {
  for (size_t i = 0; i < running_.size();) {
    if (running_[i]->cancelled) {
      finish(std::move(running_[i]), FinishReason::kCancelled);
      running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  for (auto& [prio, tenants] : waiting_) {
    for (auto& [tenant, q] : tenants) {
      for (auto it = q.fifo.begin(); it != q.fifo.end();) {
        if ((*it)->cancelled) {
          waiting_tokens_ -= (*it)->prompt_len;
          --waiting_count_;
          finish(std::move(*it), FinishReason::kCancelled);
          it = q.fifo.erase(it);
        } else {
          ++it;
        }
      }
    }
  }
}

void Scheduler::preempt(size_t i, SchedulerStep& step) {
  std::unique_ptr<Sequence> s = std::move(running_[i]);
  running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
  blocks_.release(s->blocks);
  s->prefix = PrefixChain{};
  s->computed = 0;  // recompute: its tokens so far (prompt + output) become the new prompt's work
  ++s->preemptions;
  ++counters_.preemptions;
  step.preempted.push_back(s->id);
  enqueue(std::move(s), true);
}

Scheduler::TenantQueue* Scheduler::next_tenant(std::string* tenant) {
  for (auto& [prio, tenants] : waiting_) {
    TenantQueue* best = nullptr;
    for (auto& [name, q] : tenants) {
      if (q.fifo.empty()) continue;
      if (best == nullptr || served(name) < served(*tenant) ||
          (served(name) == served(*tenant) && q.fifo.front()->arrival < best->fifo.front()->arrival)) {
        best = &q;
        *tenant = name;
      }
    }
    if (best != nullptr) return best;
  }
  return nullptr;
}

SchedulerStep Scheduler::schedule() {
  drop_cancelled();
  SchedulerStep step;
  int64_t budget = config_.max_batched_tokens;

  // 1. Running sequences, in admission order.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence& s = *running_[i];
    const int64_t n = std::min(s.uncomputed(), budget);
    Status st = blocks_.ensure_capacity(s.blocks, s.computed + n);
    while (!st.is_ok()) {
      // Preempt the least important running sequence not yet planned this step (highest priority value,
      // then latest arrival); it may be this one.
      size_t victim = i;
      for (size_t j = i + 1; j < running_.size(); ++j) {
        const Sequence& a = *running_[j];
        const Sequence& b = *running_[victim];
        if (a.request.priority > b.request.priority ||
            (a.request.priority == b.request.priority && a.arrival > b.arrival))
          victim = j;
      }
      preempt(victim, step);
      if (victim == i) break;
      st = blocks_.ensure_capacity(s.blocks, s.computed + n);
    }
    if (!st.is_ok()) continue;  // running_[i] was preempted; the next one moved into slot i
    step.chunks.push_back({&s, s.computed, n, s.computed + n == static_cast<int64_t>(s.tokens.size())});
    budget -= n;
    ++i;
  }

  // 2. Waiting sequences.
  std::string tenant;
  while (budget > 0 && static_cast<int64_t>(running_.size()) < config_.max_num_seqs) {
    TenantQueue* q = next_tenant(&tenant);
    if (q == nullptr) break;
    Sequence& s = *q->fifo.front();
    // Shared prefix blocks; the last token is always computed, so its logits exist.
    PrefixMatch m =
        blocks_.match_prefix(s.tokens, s.request.tenant, static_cast<int64_t>(s.tokens.size()) - 1);
    s.blocks = std::move(m.blocks);
    s.computed = m.tokens;
    s.prefix = PrefixChain{static_cast<int64_t>(s.blocks.size()), m.chain, true};
    const int64_t n = std::min(s.uncomputed(), budget);
    if (!blocks_.ensure_capacity(s.blocks, s.computed + n).is_ok()) {
      blocks_.release(s.blocks);  // not enough KV now: try again next step (nothing is preempted for it)
      s.computed = 0;
      s.prefix = PrefixChain{};
      break;
    }
    if (s.preemptions == 0) s.cached_prompt_tokens = std::min(m.tokens, s.prompt_len);
    std::unique_ptr<Sequence> owned = std::move(q->fifo.front());
    q->fifo.pop_front();
    waiting_tokens_ -= owned->prompt_len;
    --waiting_count_;
    ++counters_.admitted;
    step.chunks.push_back(
        {owned.get(), owned->computed, n, owned->computed + n == static_cast<int64_t>(owned->tokens.size())});
    budget -= n;
    running_.push_back(std::move(owned));
  }
  for (const ScheduledChunk& c : step.chunks) {
    step.num_tokens += c.tokens;
    charge(c.seq->request.tenant, c.tokens);
  }
  return step;
}

void Scheduler::on_computed(const SchedulerStep& step) {
  for (const ScheduledChunk& c : step.chunks) {
    Sequence& s = *c.seq;
    s.computed = c.start + c.tokens;
    blocks_.commit(s.blocks, s.tokens, s.computed, s.request.tenant, s.prefix);
  }
}

void Scheduler::on_token(Sequence& seq, int32_t token) {
  seq.tokens.push_back(token);
  const auto& stops = seq.request.stop_ids;
  const bool stop = std::find(stops.begin(), stops.end(), token) != stops.end();
  if (!stop && seq.output_len() < seq.request.max_tokens) return;
  for (size_t i = 0; i < running_.size(); ++i) {
    if (running_[i].get() == &seq) {
      std::unique_ptr<Sequence> s = std::move(running_[i]);
      running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
      finish(std::move(s), stop ? FinishReason::kStop : FinishReason::kLength);
      return;
    }
  }
}

std::vector<std::unique_ptr<Sequence>> Scheduler::take_finished() {
  return std::exchange(finished_, {});
}

std::pair<int64_t, int64_t> Scheduler::running_kv_tokens_and_slots() const {
  int64_t tokens = 0, slots = 0;
  for (const auto& seq : running_) {
    tokens += seq->computed;
    slots += static_cast<int64_t>(seq->blocks.size()) * blocks_.block_size();
  }
  return {tokens, slots};
}

}  // namespace hearth
