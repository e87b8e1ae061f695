// The dense GQA decoder (Qwen2, Llama) on CUDA. Weights live on the device in bf16 (f32 when the
// checkpoint is f32: parity runs), with q/k/v and gate/up fused into one matrix each. One step:
//   embed -> per layer [add+RMSNorm -> QKV GEMM -> bias+RoPE+KV store -> paged attention -> O GEMM ->
//   add+RMSNorm -> gate|up GEMM -> SiLU*up -> down GEMM] -> add+final norm of the logit rows -> LM head
//   -> argmax/log-softmax per row.
// Per-token metadata is copied to fixed device buffers first, so a decode step of a given (batch,
// table width) bucket is captured once as a CUDA graph and replayed.
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <utility>

#include "core/half.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "engine/cuda/cuda_util.h"
#include "engine/device_model.h"
#include "engine/model_weights.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/blas.h"
#include "kernels/cuda/cuda_ops.h"

namespace hearth {
namespace {

using cuda::GpuDType;

struct DenseLayer {
  DeviceBuffer qkv_w, o_w, gu_w, down_w;        // T
  DeviceBuffer qkv_b, o_b, gu_b, down_b;        // f32, optional
  DeviceBuffer attn_norm, mlp_norm;             // f32
};

// Token buckets of captured decode graphs.
constexpr int64_t kGraphBuckets[] = {1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256, 320, 384, 448, 512};

int64_t graph_bucket(int64_t n) {
  for (int64_t b : kGraphBuckets)
    if (b >= n) return b;
  return 0;
}

int64_t pow2_at_least(int64_t v) {
  int64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

class CudaDenseModel final : public DeviceModel {
 public:
  CudaDenseModel(std::shared_ptr<const Checkpoint> ckpt, const DeviceModelOptions& o)
      : ckpt_(std::move(ckpt)), spec_(ckpt_->spec()), opt_(o) {}

  ~CudaDenseModel() override {
    print_profile();
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
    for (auto& [k, g] : graphs_) cudaGraphExecDestroy(g);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  Status load() {
    HEARTH_CUDA(cudaSetDevice(opt_.device), "cudaSetDevice");
    cudaDeviceProp prop{};
    HEARTH_CUDA(cudaGetDeviceProperties(&prop, opt_.device), "cudaGetDeviceProperties");
    device_name_ = prop.name;
    sms_ = prop.multiProcessorCount;
    total_mem_ = prop.totalGlobalMem;
    HEARTH_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    if (const char* p = std::getenv("HEARTH_CUDA_PROFILE"); p != nullptr && p[0] == '1') {
      profile_ = true;  // per-kernel times (events between launches); graphs off so each launch is timed
      opt_.cuda_graphs = false;
    }

    const ModelSpec& s = spec_;
    h_ = s.hidden_size;
    hd_ = s.head_dim;
    nh_ = s.num_attention_heads;
    nkv_ = s.num_key_value_heads;
    qd_ = nh_ * hd_;
    kvd_ = nkv_ * hd_;
    inter_ = s.intermediate_size;
    vocab_ = s.vocab_size;
    if (hd_ > 256) return make_error(ErrorCode::kUnsupported, "head_dim {} > 256 is not supported on CUDA", hd_);
    const bool qkv_bias = s.architecture == Architecture::kQwen2 || s.attention_bias;
    const bool o_bias = s.architecture == Architecture::kLlama && s.attention_bias;
    const bool mlp_bias = s.architecture == Architecture::kLlama && s.mlp_bias;

    // f32 checkpoints run in f32 (exact parity); everything else in bf16.
    dtype_ = GpuDType::kBF16;
    if (const TensorView* t = ckpt_->find("model.layers.0.self_attn.q_proj.weight"); t != nullptr && t->dtype == DType::kF32)
      dtype_ = GpuDType::kF32;

    ThreadPool pool(0);
    ModelWeights w(ckpt_, WeightLoadOptions{}, &pool);
    HEARTH_LOG_INFO("cuda: loading {} ({} layers, {}) onto {}", ckpt_->path(), s.num_hidden_layers,
             dtype_ == GpuDType::kF32 ? "f32" : "bf16", device_name_);

    HEARTH_ASSIGN_OR_RETURN(WeightMatrix embed, w.embedding("model.embed_tokens.weight", vocab_, h_));
    HEARTH_RETURN_IF_ERROR(upload_matrices({embed}, embed_, "embedding", pool));
    if (s.tie_word_embeddings && ckpt_->find("lm_head.weight") == nullptr) {
      lm_head_tied_ = true;
    } else {
      HEARTH_ASSIGN_OR_RETURN(WeightMatrix lm, w.matrix("lm_head.weight", vocab_, h_));
      HEARTH_RETURN_IF_ERROR(upload_matrices({lm}, lm_head_, "lm_head", pool));
    }
    HEARTH_RETURN_IF_ERROR(upload_vector(w, "model.norm.weight", h_, final_norm_));

    RopeTable rope = make_rope_table(s);
    if (ckpt_->find("rope_freqs.weight") != nullptr) {  // GGUF: Llama-3 scaling as divisors
      HEARTH_ASSIGN_OR_RETURN(const float* f, w.vector("rope_freqs.weight", rope.rot_dim / 2));
      for (int64_t i = 0; i < rope.rot_dim / 2; ++i) rope.inv_freq[i] /= f[i];
    }
    HEARTH_RETURN_IF_ERROR(upload_f32(rope.inv_freq.data(), rope.inv_freq.size(), inv_freq_, "rope"));
    rope_.inv_freq = inv_freq_.as<float>();
    rope_.rot_dim = static_cast<int>(rope.rot_dim);
    rope_.attention_factor = rope.attention_factor;
    // q/k rows are stored with each rotated pair adjacent (neox-style checkpoints are permuted below, which
    // attention does not notice: q and k share the permutation), so RoPE is always the interleaved kind and
    // the small-batch QKV GEMV can rotate pairs in its epilogue.
    permute_qk_ = !rope.interleave;
    rope_.interleave = true;
    scale_ = attention_softmax_scale(s);

    layers_.resize(static_cast<size_t>(s.num_hidden_layers));
    for (int64_t l = 0; l < s.num_hidden_layers; ++l) {
      DenseLayer& L = layers_[static_cast<size_t>(l)];
      const std::string p = fmt::format("model.layers.{}", l);
      HEARTH_ASSIGN_OR_RETURN(WeightMatrix q, w.matrix(p + ".self_attn.q_proj.weight", qd_, h_));
      HEARTH_ASSIGN_OR_RETURN(WeightMatrix k, w.matrix(p + ".self_attn.k_proj.weight", kvd_, h_));
      HEARTH_ASSIGN_OR_RETURN(WeightMatrix v, w.matrix(p + ".self_attn.v_proj.weight", kvd_, h_));
      std::vector<uint8_t> q_rows, k_rows;
      if (permute_qk_) {
        q = permute_head_rows(q, nh_, q_rows);
        k = permute_head_rows(k, nkv_, k_rows);
      }
      HEARTH_RETURN_IF_ERROR(upload_matrices({q, k, v}, L.qkv_w, p + " qkv", pool));
      HEARTH_ASSIGN_OR_RETURN(WeightMatrix o, w.matrix(p + ".self_attn.o_proj.weight", h_, qd_));
      HEARTH_RETURN_IF_ERROR(upload_matrices({o}, L.o_w, p + " o_proj", pool));
      HEARTH_ASSIGN_OR_RETURN(WeightMatrix g, w.matrix(p + ".mlp.gate_proj.weight", inter_, h_));
      HEARTH_ASSIGN_OR_RETURN(WeightMatrix u, w.matrix(p + ".mlp.up_proj.weight", inter_, h_));
      HEARTH_RETURN_IF_ERROR(upload_matrices({g, u}, L.gu_w, p + " gate/up", pool, /*interleave=*/true));
      HEARTH_ASSIGN_OR_RETURN(WeightMatrix d, w.matrix(p + ".mlp.down_proj.weight", h_, inter_));
      HEARTH_RETURN_IF_ERROR(upload_matrices({d}, L.down_w, p + " down_proj", pool));
      HEARTH_RETURN_IF_ERROR(upload_vector(w, p + ".input_layernorm.weight", h_, L.attn_norm));
      HEARTH_RETURN_IF_ERROR(upload_vector(w, p + ".post_attention_layernorm.weight", h_, L.mlp_norm));
      if (qkv_bias) {
        HEARTH_RETURN_IF_ERROR(upload_vectors(w,
                                              {{p + ".self_attn.q_proj.bias", qd_},
                                               {p + ".self_attn.k_proj.bias", kvd_},
                                               {p + ".self_attn.v_proj.bias", kvd_}},
                                              L.qkv_b, permute_qk_ ? nh_ + nkv_ : 0));
      }
      if (o_bias) HEARTH_RETURN_IF_ERROR(upload_vector(w, p + ".self_attn.o_proj.bias", h_, L.o_b));
      if (mlp_bias) {
        HEARTH_RETURN_IF_ERROR(upload_interleaved_bias(w, p + ".mlp.gate_proj.bias", p + ".mlp.up_proj.bias", L.gu_b));
        HEARTH_RETURN_IF_ERROR(upload_vector(w, p + ".mlp.down_proj.bias", h_, L.down_b));
      }
      if ((l + 1) % 8 == 0 || l + 1 == s.num_hidden_layers)
        HEARTH_LOG_INFO("cuda: layer {}/{} on the device ({:.2f} GiB)", l + 1, s.num_hidden_layers,
                 static_cast<double>(weight_bytes_) / (1 << 30));
    }
    HEARTH_RETURN_IF_ERROR(allocate_step_buffers());
    HEARTH_RETURN_IF_ERROR(allocate_kv());
    HEARTH_LOG_INFO("cuda: weights {:.2f} GiB, activations {:.2f} GiB, KV {:.2f} GiB ({} blocks x {} tokens)",
             static_cast<double>(weight_bytes_) / (1 << 30), static_cast<double>(activation_bytes_) / (1 << 30),
             static_cast<double>(kv_.bytes()) / (1 << 30), num_blocks_, opt_.block_size);
    return Status::ok();
  }

  int64_t kv_num_blocks() const override { return num_blocks_; }
  int64_t kv_block_size() const override { return opt_.block_size; }
  int64_t max_batch_tokens() const override { return opt_.max_batch_tokens; }
  int64_t max_seqs() const override { return opt_.max_seqs; }
  DeviceMemoryReport memory() const override {
    return {weight_bytes_, kv_.bytes(), activation_bytes_, total_mem_, device_name_};
  }

  Status forward(const ForwardBatch& batch, std::vector<float>& logits, std::vector<DeviceToken>& greedy) override {
    HEARTH_CUDA(cudaSetDevice(opt_.device), "cudaSetDevice");
    const int64_t n_real = batch.num_tokens();
    const int64_t seqs = static_cast<int64_t>(batch.chunks.size());
    if (n_real > opt_.max_batch_tokens || seqs > opt_.max_seqs) {
      return make_error(ErrorCode::kInternal, "batch of {} tokens / {} sequences exceeds the device's {} / {}",
                        n_real, seqs, opt_.max_batch_tokens, opt_.max_seqs);
    }
    int64_t width = 1, max_ctx = 1;
    bool decode_only = true;
    for (const SequenceChunk& c : batch.chunks) {
      const int64_t end = c.start_pos + static_cast<int64_t>(c.tokens.size());
      max_ctx = std::max(max_ctx, end);
      width = std::max(width, (end + opt_.block_size - 1) / opt_.block_size);
      decode_only = decode_only && c.tokens.size() == 1 && c.want_logits;
    }
    if (width > table_width_max_)
      return make_error(ErrorCode::kInternal, "block table of {} blocks exceeds {}", width, table_width_max_);

    // Shapes: decode steps of up to the largest bucket replay a graph with padded tokens.
    const int64_t bucket = (opt_.cuda_graphs && decode_only) ? graph_bucket(n_real) : 0;
    const bool use_graph = bucket > 0 && bucket <= opt_.max_seqs;
    StepShape sh;
    sh.n = use_graph ? bucket : n_real;
    // Graph table widths: 64 blocks or a power of two above, so few graphs cover all contexts.
    sh.width = use_graph ? std::min(std::max<int64_t>(64, pow2_at_least(width)), table_width_max_) : width;
    const int64_t ctx_cap = use_graph ? sh.width * opt_.block_size : max_ctx;
    int64_t rows = 0;
    for (const SequenceChunk& c : batch.chunks) rows += c.want_logits ? 1 : 0;
    sh.rows = use_graph ? sh.n : rows;

    // Metadata into the pinned staging area, then one copy.
    int32_t* tok = host_meta_.as<int32_t>();
    int32_t* pos = tok + meta_.pos;
    int32_t* seq_of = tok + meta_.seq_of;
    int32_t* lrows = tok + meta_.rows;
    int32_t* table = tok + meta_.table;
    int32_t* dec_list = tok + meta_.dec_list;
    int32_t* tiles = tok + meta_.tiles;
    // Chunks of kMinPrefillTile tokens or more go to the tensor-core prefill kernel in query tiles; the
    // rest (decode tokens, short chunks) to the flash-decoding kernel.
    const bool tiled = !use_graph && prefill_kernel_;
    int64_t t = 0, r = 0;
    for (int64_t i = 0; i < seqs; ++i) {
      const SequenceChunk& c = batch.chunks[static_cast<size_t>(i)];
      for (size_t j = 0; j < c.tokens.size(); ++j, ++t) {
        tok[t] = c.tokens[j];
        pos[t] = static_cast<int32_t>(c.start_pos + static_cast<int64_t>(j));
        seq_of[t] = static_cast<int32_t>(i);
      }
      if (c.want_logits) lrows[r++] = static_cast<int32_t>(t - 1);
      const int64_t len = static_cast<int64_t>(c.tokens.size());
      const int64_t first = t - len;
      if (tiled && len >= kMinPrefillTile) {
        for (int64_t a = 0; a < len; a += cuda::kPrefillTile) {
          tiles[2 * sh.num_tiles] = static_cast<int32_t>(first + a);
          tiles[2 * sh.num_tiles + 1] = static_cast<int32_t>(std::min<int64_t>(cuda::kPrefillTile, len - a));
          ++sh.num_tiles;
        }
      } else {
        for (int64_t a = 0; a < len; ++a) dec_list[sh.n_dec++] = static_cast<int32_t>(first + a);
      }
      const int64_t nb = std::min<int64_t>(static_cast<int64_t>(c.block_table.size()), sh.width);
      std::memcpy(table + i * sh.width, c.block_table.data(), static_cast<size_t>(nb) * 4);
      std::fill(table + i * sh.width + nb, table + (i + 1) * sh.width, 0);
    }
    for (; t < sh.n; ++t) {  // graph padding: no KV write, no attention
      tok[t] = 0;
      pos[t] = -1;
      seq_of[t] = 0;
    }
    for (; r < sh.rows; ++r) lrows[r] = static_cast<int32_t>(r);
    if (sh.num_tiles == 0) sh.n_dec = sh.n;  // all tokens, no list
    plan_attention(sh, ctx_cap);
    const size_t meta_bytes = static_cast<size_t>(meta_.table + seqs * sh.width) * 4;
    HEARTH_CUDA(cudaMemcpyAsync(dev_meta_.ptr(), host_meta_.ptr(), meta_bytes, cudaMemcpyHostToDevice, stream_),
                "metadata copy");

    if (use_graph) {
      HEARTH_RETURN_IF_ERROR(run_graph(sh));
    } else {
      HEARTH_RETURN_IF_ERROR(run_body(sh));
    }

    // Outputs: every row's argmax; full logits only for rows the host samples.
    HEARTH_CUDA(cudaMemcpyAsync(host_out_.ptr(), ids_.ptr(), static_cast<size_t>(rows) * 4, cudaMemcpyDeviceToHost,
                                stream_),
                "token copy");
    HEARTH_CUDA(cudaMemcpyAsync(host_out_.as<int32_t>() + opt_.max_seqs, lps_.ptr(), static_cast<size_t>(rows) * 4,
                                cudaMemcpyDeviceToHost, stream_),
                "logprob copy");
    logits.resize(static_cast<size_t>(rows * vocab_));
    r = 0;
    for (const SequenceChunk& c : batch.chunks) {
      if (!c.want_logits) continue;
      if (!c.device_greedy) {
        HEARTH_CUDA(cudaMemcpyAsync(logits.data() + r * vocab_, logits_.as<float>() + r * vocab_,
                                    static_cast<size_t>(vocab_) * 4, cudaMemcpyDeviceToHost, stream_),
                    "logits copy");
      }
      ++r;
    }
    HEARTH_CUDA(cudaStreamSynchronize(stream_), "forward");
    collect_profile(sh.n);
    greedy.resize(static_cast<size_t>(rows));
    const int32_t* ids = host_out_.as<int32_t>();
    const float* lps = reinterpret_cast<const float*>(ids + opt_.max_seqs);
    for (int64_t i = 0; i < rows; ++i) greedy[static_cast<size_t>(i)] = {ids[i], lps[i]};
    return Status::ok();
  }

 private:
  struct StepShape {
    int64_t n = 0;      // tokens (padded for graphs)
    int64_t n_dec = 0;      // tokens for the flash-decoding kernel
    int64_t num_tiles = 0;  // query tiles for the prefill kernel (0: every token decodes, no list)
    int64_t rows = 0;   // logit rows
    int64_t width = 0;  // block-table width
    cuda::AttentionShape attn;
  };
  struct MetaLayout {  // offsets in int32 units inside the metadata buffers
    int64_t pos = 0, seq_of = 0, rows = 0, dec_list = 0, tiles = 0, table = 0, total = 0;
  };
  static constexpr int64_t kMinPrefillTile = 16;

  void plan_attention(StepShape& sh, int64_t ctx_cap) const {
    cuda::AttentionShape& a = sh.attn;
    a.nh = static_cast<int>(nh_);
    a.nkv = static_cast<int>(nkv_);
    a.hd = static_cast<int>(hd_);
    a.scale = scale_;
    a.block_size = static_cast<int>(opt_.block_size);
    a.table_width = static_cast<int>(sh.width);
    const int64_t group = nh_ / nkv_;
    const int64_t nd = std::max<int64_t>(1, sh.n_dec);
    const int64_t ctas = nd * nkv_ * ((group + 7) / 8);
    int64_t splits = std::max<int64_t>(1, (2 * sms_ + ctas - 1) / ctas);
    splits = std::min(splits, std::max<int64_t>(1, (ctx_cap + 31) / 32));
    splits = std::min(splits, partial_token_splits_ / nd);
    splits = std::max<int64_t>(1, splits);
    int64_t len = (ctx_cap + splits - 1) / splits;
    len = (len + 31) / 32 * 32;
    a.splits = static_cast<int>(splits);
    a.split_len = static_cast<int>(len);
  }

  Status launch(int rc, const char* what) const {
    if (rc == 0) return Status::ok();
    return make_error(ErrorCode::kInternal, "CUDA kernel {} failed: {}", what,
                      cudaGetErrorString(static_cast<cudaError_t>(rc)));
  }

  Status gemm(const DeviceBuffer& w, const void* x, int64_t n, int64_t rows, int64_t k, float* y) {
    if (dtype_ == GpuDType::kBF16 && n <= cuda::kGemvMaxRows && k % 8 == 0)
      return launch(cuda::gemv_bf16(w.ptr(), x, n, rows, k, y, rows, stream_), "gemv");
    return blas_->gemm(w.ptr(), x, dtype_, n, rows, k, y, rows, stream_);
  }

  // The whole step on stream_, reading metadata from dev_meta_: capturable.
  Status run_body(const StepShape& sh) {
    const int32_t* tok = dev_meta_.as<int32_t>();
    const int32_t* pos = tok + meta_.pos;
    const int32_t* seq_of = tok + meta_.seq_of;
    const int32_t* lrows = tok + meta_.rows;
    const int32_t* table = tok + meta_.table;
    const int32_t* dec_list = tok + meta_.dec_list;
    const int32_t* tiles = tok + meta_.tiles;
    const int64_t n = sh.n;
    const float eps = static_cast<float>(spec_.rms_norm_eps);
    float* x = x_.as<float>();
    float* delta = delta_.as<float>();
    const uint64_t kv_layer_elems = static_cast<uint64_t>(num_blocks_ * opt_.block_size * 2 * kvd_);
    mark(nullptr);
    HEARTH_RETURN_IF_ERROR(launch(cuda::embed_rows(embed_.ptr(), dtype_, tok, n, h_, x, stream_), "embed"));
    mark("embed");
    const float* pending_bias = nullptr;
    const float* pending = nullptr;
    for (size_t l = 0; l < layers_.size(); ++l) {
      const DenseLayer& L = layers_[l];
      void* kv_layer = static_cast<char*>(kv_.ptr()) + l * kv_layer_elems * cuda::dtype_bytes(dtype_);
      HEARTH_RETURN_IF_ERROR(launch(cuda::add_rmsnorm(x, pending, pending_bias, L.attn_norm.as<float>(), eps, n, h_,
                                                      xn_.ptr(), dtype_, nullptr, stream_),
                                    "add_rmsnorm"));
      mark("attn_norm");
      if (dtype_ == GpuDType::kBF16 && n <= cuda::kGemvMaxRows && h_ % 8 == 0) {
        // Small batches: bias, RoPE and the KV store in the QKV GEMV's epilogue.
        cuda::QkvRopeEpilogue e;
        e.nh = static_cast<int>(nh_);
        e.nkv = static_cast<int>(nkv_);
        e.hd = static_cast<int>(hd_);
        e.rope = rope_;
        e.pos = pos;
        e.seq_of = seq_of;
        e.block_table = table;
        e.table_width = static_cast<int>(sh.width);
        e.block_size = static_cast<int>(opt_.block_size);
        e.bias = L.qkv_b.as<float>();
        e.q = q_.as<float>();
        e.kv_layer = static_cast<__nv_bfloat16*>(kv_layer);
        HEARTH_RETURN_IF_ERROR(
            launch(cuda::gemv_bf16_qkv_rope(L.qkv_w.ptr(), xn_.ptr(), n, h_, e, stream_), "gemv_qkv_rope"));
        mark("qkv_rope_gemv");
      } else {
        HEARTH_RETURN_IF_ERROR(gemm(L.qkv_w, xn_.ptr(), n, qd_ + 2 * kvd_, h_, qkv_.as<float>()));
        mark("qkv_gemm");
        HEARTH_RETURN_IF_ERROR(launch(
            cuda::qkv_rope_store(qkv_.as<float>(), L.qkv_b.as<float>(), n, static_cast<int>(nh_), static_cast<int>(nkv_),
                                 static_cast<int>(hd_), rope_, pos, seq_of, table, static_cast<int>(sh.width),
                                 static_cast<int>(opt_.block_size), q_.as<float>(), kv_layer, dtype_, stream_),
            "qkv_rope_store"));
        mark("rope_store");
      }
      if (sh.num_tiles > 0) {
        HEARTH_RETURN_IF_ERROR(launch(cuda::prefill_attention(q_.as<float>(), kv_layer, pos, seq_of, table, tiles,
                                                              sh.num_tiles, sh.attn, att_.ptr(), stream_),
                                      "prefill_attention"));
      }
      if (sh.n_dec > 0) {
        HEARTH_RETURN_IF_ERROR(launch(cuda::paged_attention(q_.as<float>(), kv_layer, dtype_, pos, seq_of, table,
                                                            sh.num_tiles > 0 ? dec_list : nullptr, sh.n_dec, sh.attn,
                                                            partial_.as<float>(), att_.ptr(), dtype_, stream_),
                                      "paged_attention"));
      }
      mark("attention");
      HEARTH_RETURN_IF_ERROR(gemm(L.o_w, att_.ptr(), n, h_, qd_, delta));
      mark("o_gemm");
      HEARTH_RETURN_IF_ERROR(launch(cuda::add_rmsnorm(x, delta, L.o_b.as<float>(), L.mlp_norm.as<float>(), eps, n, h_,
                                                      xn_.ptr(), dtype_, nullptr, stream_),
                                    "add_rmsnorm"));
      mark("mlp_norm");
      if (dtype_ == GpuDType::kBF16 && n <= cuda::kGemvMaxRows && h_ % 8 == 0 && L.gu_b.ptr() == nullptr) {
        // Small batches: SiLU(gate) * up in the GEMV's epilogue (no f32 round trip, one kernel fewer).
        HEARTH_RETURN_IF_ERROR(
            launch(cuda::gemv_bf16_swiglu(L.gu_w.ptr(), xn_.ptr(), n, inter_, h_, act_.ptr(), stream_), "gemv_swiglu"));
        mark("gate_up_silu_gemv");
      } else {
        HEARTH_RETURN_IF_ERROR(gemm(L.gu_w, xn_.ptr(), n, 2 * inter_, h_, gu_.as<float>()));
        mark("gate_up_gemm");
        HEARTH_RETURN_IF_ERROR(launch(
            cuda::silu_mul(gu_.as<float>(), L.gu_b.as<float>(), n, inter_, act_.ptr(), dtype_, stream_), "silu_mul"));
        mark("silu_mul");
      }
      HEARTH_RETURN_IF_ERROR(gemm(L.down_w, act_.ptr(), n, h_, inter_, delta));
      mark("down_gemm");
      pending = delta;
      pending_bias = L.down_b.as<float>();
    }
    // The last residual add (all rows), then the final norm of the logit rows only.
    HEARTH_RETURN_IF_ERROR(launch(cuda::add_rmsnorm(x, pending, pending_bias, final_norm_.as<float>(), eps, n, h_,
                                                    xn_.ptr(), dtype_, nullptr, stream_),
                                  "add_rmsnorm"));
    mark("final_add_norm");
    HEARTH_RETURN_IF_ERROR(launch(cuda::add_rmsnorm(x, nullptr, nullptr, final_norm_.as<float>(), eps, sh.rows, h_,
                                                    xf_.ptr(), dtype_, lrows, stream_),
                                  "final_norm"));
    mark("final_norm_rows");
    const DeviceBuffer& head = lm_head_tied_ ? embed_ : lm_head_;
    HEARTH_RETURN_IF_ERROR(gemm(head, xf_.ptr(), sh.rows, vocab_, h_, logits_.as<float>()));
    mark("lm_head");
    HEARTH_RETURN_IF_ERROR(launch(
        cuda::argmax_logprob(logits_.as<float>(), sh.rows, vocab_, ids_.as<int32_t>(), lps_.as<float>(),
                             partial_.as<float>(), stream_),
        "argmax"));
    mark("argmax");
    return Status::ok();
  }

  Status run_graph(const StepShape& sh) {
    const auto key = std::make_pair(sh.n, sh.width);
    auto it = graphs_.find(key);
    if (it == graphs_.end()) {
      // One eager run creates the GEMM plans and kernel attributes; then capture.
      HEARTH_RETURN_IF_ERROR(run_body(sh));
      cudaGraph_t graph = nullptr;
      HEARTH_CUDA(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "graph capture");
      const Status st = run_body(sh);
      const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
      HEARTH_RETURN_IF_ERROR(st);
      HEARTH_CUDA(end, "graph capture");
      cudaGraphExec_t exec = nullptr;
      const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
      cudaGraphDestroy(graph);
      HEARTH_CUDA(inst, "graph instantiate");
      it = graphs_.emplace(key, exec).first;
      HEARTH_LOG_DEBUG("cuda: captured a decode graph for {} tokens x {} blocks", sh.n, sh.width);
      return Status::ok();  // the eager run already computed this step
    }
    HEARTH_CUDA(cudaGraphLaunch(it->second, stream_), "graph launch");
    return Status::ok();
  }

  // Profiling (HEARTH_CUDA_PROFILE=1): an event after every launch; the time between consecutive events
  // is the kernel's (launch gaps included). Printed per kernel and step size when the model is destroyed.
  void mark(const char* name) {
    if (!profile_) return;
    if (marks_.size() == events_.size()) {
      cudaEvent_t e = nullptr;
      cudaEventCreate(&e);
      events_.push_back(e);
    }
    cudaEvent_t e = events_[marks_.size()];
    cudaEventRecord(e, stream_);
    marks_.emplace_back(name, e);
  }

  void collect_profile(int64_t n) {
    if (!profile_) return;
    const char* cls = n == 1 ? "n=1" : n <= 8 ? "n<=8" : n <= 64 ? "n<=64" : n <= 512 ? "n<=512" : "n>512";
    for (size_t i = 1; i < marks_.size(); ++i) {
      float ms = 0;
      cudaEventElapsedTime(&ms, marks_[i - 1].second, marks_[i].second);
      auto& [calls, total] = profile_ms_[fmt::format("{:<7}{}", cls, marks_[i].first)];
      ++calls;
      total += ms;
    }
    marks_.clear();
  }

  void print_profile() const {
    if (!profile_ || profile_ms_.empty()) return;
    std::vector<std::pair<double, std::string>> rows;
    for (const auto& [k, v] : profile_ms_)
      rows.emplace_back(v.second, fmt::format("{:<28}{:>10}{:>12.3f}{:>12.2f}", k, v.first, v.second,
                                              1e3 * v.second / static_cast<double>(v.first)));
    std::sort(rows.rbegin(), rows.rend());
    std::fprintf(stderr, "cuda profile: %-21s%10s%12s%12s\n", "kernel", "calls", "total ms", "mean us");
    for (const auto& r : rows) std::fprintf(stderr, "cuda profile: %s\n", r.second.c_str());
  }

  Status allocate_step_buffers() {
    const int64_t T = opt_.max_batch_tokens, S = opt_.max_seqs;
    const int64_t tb = cuda::dtype_bytes(dtype_);
    table_width_max_ = (spec_.max_position_embeddings + opt_.block_size - 1) / opt_.block_size;
    meta_.pos = T;
    meta_.seq_of = 2 * T;
    meta_.rows = 3 * T;
    meta_.dec_list = 3 * T + S;
    meta_.tiles = 4 * T + S;
    meta_.table = meta_.tiles + 2 * (T / kMinPrefillTile + 1);
    meta_.total = meta_.table + S * table_width_max_;
    partial_token_splits_ = std::max<int64_t>(T, S * 32);
    // The argmax scratch (S x 192 floats) shares the partials buffer.
    const int64_t partial_floats = std::max(partial_token_splits_ * nh_ * (hd_ + 2), S * 192);
    prefill_kernel_ = dtype_ == GpuDType::kBF16 && cuda::prefill_attention_supported(static_cast<int>(hd_)) &&
                      std::getenv("HEARTH_CUDA_NO_PREFILL_KERNEL") == nullptr;
    struct Want {
      DeviceBuffer* buf;
      uint64_t bytes;
      const char* what;
    };
    const Want wants[] = {
        {&x_, static_cast<uint64_t>(T * h_ * 4), "residual"},
        {&delta_, static_cast<uint64_t>(T * h_ * 4), "residual delta"},
        {&xn_, static_cast<uint64_t>(T * h_ * tb), "normed"},
        {&qkv_, static_cast<uint64_t>(T * (qd_ + 2 * kvd_) * 4), "qkv"},
        {&q_, static_cast<uint64_t>(T * qd_ * 4), "q"},
        {&att_, static_cast<uint64_t>(T * qd_ * tb), "attention out"},
        {&partial_, static_cast<uint64_t>(partial_floats * 4), "attention partials"},
        {&gu_, static_cast<uint64_t>(T * 2 * inter_ * 4), "gate/up"},
        {&act_, static_cast<uint64_t>(T * inter_ * tb), "mlp activation"},
        {&xf_, static_cast<uint64_t>(S * h_ * tb), "final norm"},
        {&logits_, static_cast<uint64_t>(S * vocab_ * 4), "logits"},
        {&ids_, static_cast<uint64_t>(S * 4), "ids"},
        {&lps_, static_cast<uint64_t>(S * 4), "logprobs"},
        {&dev_meta_, static_cast<uint64_t>(meta_.total * 4), "metadata"},
        {&workspace_, 64ull << 20, "cuBLASLt workspace"},
    };
    for (const Want& w : wants) {
      HEARTH_RETURN_IF_ERROR(w.buf->allocate(w.bytes, w.what));
      activation_bytes_ += w.bytes;
    }
    HEARTH_RETURN_IF_ERROR(host_meta_.allocate(static_cast<uint64_t>(meta_.total * 4), "metadata staging"));
    HEARTH_RETURN_IF_ERROR(host_out_.allocate(static_cast<uint64_t>(S * 8), "output staging"));
    HEARTH_ASSIGN_OR_RETURN(blas_, cuda::BlasLt::create(workspace_.ptr(), workspace_.bytes()));
    return Status::ok();
  }

  Status allocate_kv() {
    const uint64_t block_bytes = static_cast<uint64_t>(spec_.num_hidden_layers * opt_.block_size * 2 * kvd_ *
                                                       cuda::dtype_bytes(dtype_));
    int64_t blocks = opt_.num_blocks;
    if (blocks <= 0) {
      size_t free = 0, total = 0;
      HEARTH_CUDA(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
      const double allowed = opt_.gpu_memory_utilization * static_cast<double>(total);
      const double used = static_cast<double>(total - free);
      const double budget = allowed - used;
      blocks = budget > 0 ? static_cast<int64_t>(budget / static_cast<double>(block_bytes)) : 0;
      if (blocks < 1) {
        return make_error(ErrorCode::kResourceExhausted,
                          "no GPU memory left for the KV cache: {:.2f} of {:.2f} GiB are in use after the weights "
                          "and buffers, and --gpu-memory-utilization {} allows {:.2f} GiB; raise it or lower "
                          "--max-batch-tokens",
                          used / (1 << 30), static_cast<double>(total) / (1 << 30), opt_.gpu_memory_utilization,
                          allowed / (1 << 30));
      }
      blocks = std::min<int64_t>(blocks, int64_t{1} << 24);
    }
    num_blocks_ = blocks;
    table_width_max_ = std::min(table_width_max_, num_blocks_);
    return kv_.allocate(static_cast<uint64_t>(blocks) * block_bytes, "KV cache");
  }

  // Uploads `parts` as one T matrix: concatenated rows, or with `interleave` (two parts of equal shape)
  // row r of part p at row 2r + p (gate/up pairs for the fused SwiGLU).
  Status upload_matrices(std::initializer_list<WeightMatrix> parts, DeviceBuffer& out, const std::string& what,
                         ThreadPool& pool, bool interleave = false) {
    int64_t rows = 0;
    const int64_t cols = parts.begin()->cols;
    for (const WeightMatrix& m : parts) rows += m.rows;
    const int64_t tb = cuda::dtype_bytes(dtype_);
    const size_t row_bytes = static_cast<size_t>(cols * tb);
    HEARTH_RETURN_IF_ERROR(out.allocate(static_cast<uint64_t>(rows * cols * tb), what.c_str()));
    weight_bytes_ += out.bytes();
    const int64_t stride = interleave ? static_cast<int64_t>(parts.size()) : 1;
    int64_t first = 0;  // destination row of the part's row 0
    for (const WeightMatrix& m : parts) {
      // Rows a..a+cnt of m go to destination rows (first + (a + i) * stride).
      auto put = [&](int64_t a, int64_t cnt, const void* src, size_t src_pitch) -> Status {
        char* dst = static_cast<char*>(out.ptr()) + static_cast<size_t>(first + a * stride) * row_bytes;
        HEARTH_CUDA(cudaMemcpy2D(dst, row_bytes * static_cast<size_t>(stride), src, src_pitch, row_bytes,
                                 static_cast<size_t>(cnt), cudaMemcpyHostToDevice),
                    "weight upload");
        return Status::ok();
      };
      const bool direct = (dtype_ == GpuDType::kBF16 && m.dtype == DType::kBF16) ||
                          (dtype_ == GpuDType::kF32 && m.dtype == DType::kF32);
      if (direct) {
        HEARTH_RETURN_IF_ERROR(put(0, m.rows, m.data, m.row_bytes));
      } else {
        // Decode on the host in slabs (any format the CPU reads), convert, upload.
        const int64_t slab = std::max<int64_t>(1, (int64_t{16} << 20) / (cols * 4));
        std::vector<float> f32;
        std::vector<uint16_t> b16;
        for (int64_t a = 0; a < m.rows; a += slab) {
          const int64_t cnt = std::min(slab, m.rows - a);
          f32.resize(static_cast<size_t>(cnt * cols));
          pool.parallel_for(cnt, [&](int64_t i0, int64_t i1) {
            for (int64_t i = i0; i < i1; ++i) decode_row(m, a + i, f32.data() + i * cols);
          });
          const void* src = f32.data();
          if (dtype_ == GpuDType::kBF16) {
            b16.resize(f32.size());
            for (size_t i = 0; i < f32.size(); ++i) b16[i] = float_to_bf16(f32[i]);
            src = b16.data();
          }
          HEARTH_RETURN_IF_ERROR(put(a, cnt, src, row_bytes));
        }
      }
      first += interleave ? 1 : m.rows;
    }
    return Status::ok();
  }

  Status upload_interleaved_bias(ModelWeights& w, const std::string& a, const std::string& b, DeviceBuffer& out) {
    HEARTH_ASSIGN_OR_RETURN(const float* va, w.vector(a, inter_));
    HEARTH_ASSIGN_OR_RETURN(const float* vb, w.vector(b, inter_));
    std::vector<float> all(static_cast<size_t>(2 * inter_));
    for (int64_t i = 0; i < inter_; ++i) {
      all[static_cast<size_t>(2 * i)] = va[i];
      all[static_cast<size_t>(2 * i + 1)] = vb[i];
    }
    return upload_f32(all.data(), all.size(), out, a);
  }

  Status upload_f32(const float* data, size_t n, DeviceBuffer& out, const std::string& what) {
    HEARTH_RETURN_IF_ERROR(out.allocate(n * 4, what.c_str()));
    weight_bytes_ += n * 4;
    HEARTH_CUDA(cudaMemcpy(out.ptr(), data, n * 4, cudaMemcpyHostToDevice), "vector upload");
    return Status::ok();
  }

  Status upload_vector(ModelWeights& w, const std::string& name, int64_t n, DeviceBuffer& out) {
    return upload_vectors(w, {{name, n}}, out);
  }

  // permute_heads > 0: the first permute_heads heads (q then k) get the rotated-pair permutation.
  Status upload_vectors(ModelWeights& w, std::initializer_list<std::pair<std::string, int64_t>> parts,
                        DeviceBuffer& out, int64_t permute_heads = 0) {
    std::vector<float> all;
    for (const auto& [name, n] : parts) {
      HEARTH_ASSIGN_OR_RETURN(const float* v, w.vector(name, n));
      all.insert(all.end(), v, v + n);
    }
    if (permute_heads > 0) {
      const std::vector<float> src(all.begin(), all.begin() + permute_heads * hd_);
      for (int64_t h = 0; h < permute_heads; ++h)
        for (int64_t d = 0; d < hd_; ++d) all[static_cast<size_t>(h * hd_ + d)] = src[static_cast<size_t>(h * hd_ + pair_source(d))];
    }
    return upload_f32(all.data(), all.size(), out, parts.begin()->first);
  }

  // The source dim of stored dim d: rotated pairs (i, i + rot/2) become (2i, 2i + 1).
  int64_t pair_source(int64_t d) const {
    const int64_t rot = rope_.rot_dim, half = rot / 2;
    if (d >= rot) return d;
    return (d % 2 == 0) ? d / 2 : d / 2 + half;
  }

  // A copy of m (heads x hd rows) with each head's rows permuted by pair_source, in `storage`.
  WeightMatrix permute_head_rows(const WeightMatrix& m, int64_t heads, std::vector<uint8_t>& storage) const {
    WeightMatrix src = m;
    std::vector<float> decoded;
    if (m.block_scale != nullptr) {  // block-scaled rows cannot move alone: decode to f32 first
      decoded.resize(static_cast<size_t>(m.rows * m.cols));
      for (int64_t r = 0; r < m.rows; ++r) decode_row(m, r, decoded.data() + r * m.cols);
      src = WeightMatrix{};
      src.dtype = DType::kF32;
      src.rows = m.rows;
      src.cols = m.cols;
      src.data = reinterpret_cast<const uint8_t*>(decoded.data());
      src.row_bytes = static_cast<uint64_t>(m.cols) * 4;
    }
    storage.resize(static_cast<size_t>(src.rows) * src.row_bytes);
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t d = 0; d < hd_; ++d)
        std::memcpy(storage.data() + static_cast<size_t>(h * hd_ + d) * src.row_bytes, src.row(h * hd_ + pair_source(d)),
                    src.row_bytes);
    WeightMatrix out = src;
    out.data = storage.data();
    return out;
  }

  std::shared_ptr<const Checkpoint> ckpt_;
  ModelSpec spec_;
  DeviceModelOptions opt_;
  std::string device_name_;
  int64_t sms_ = 1;
  uint64_t total_mem_ = 0;
  cudaStream_t stream_ = nullptr;
  GpuDType dtype_ = GpuDType::kBF16;
  int64_t h_ = 0, hd_ = 0, nh_ = 0, nkv_ = 0, qd_ = 0, kvd_ = 0, inter_ = 0, vocab_ = 0;
  float scale_ = 1.0f;
  cuda::RopeParams rope_;
  bool lm_head_tied_ = false;
  bool permute_qk_ = false;

  DeviceBuffer embed_, lm_head_, final_norm_, inv_freq_;
  std::vector<DenseLayer> layers_;
  DeviceBuffer kv_;
  int64_t num_blocks_ = 0;
  int64_t table_width_max_ = 1;
  int64_t partial_token_splits_ = 1;
  bool prefill_kernel_ = false;
  MetaLayout meta_;
  DeviceBuffer x_, delta_, xn_, qkv_, q_, att_, partial_, gu_, act_, xf_, logits_, ids_, lps_, dev_meta_, workspace_;
  PinnedBuffer host_meta_, host_out_;
  std::unique_ptr<cuda::BlasLt> blas_;
  std::map<std::pair<int64_t, int64_t>, cudaGraphExec_t> graphs_;
  bool profile_ = false;
  std::vector<cudaEvent_t> events_;
  std::vector<std::pair<const char*, cudaEvent_t>> marks_;
  std::map<std::string, std::pair<int64_t, double>> profile_ms_;
  uint64_t weight_bytes_ = 0;
  uint64_t activation_bytes_ = 0;
};

}  // namespace

Result<std::unique_ptr<DeviceModel>> make_cuda_dense_model(std::shared_ptr<const Checkpoint> checkpoint,
                                                           const DeviceModelOptions& options) {
  auto m = std::make_unique<CudaDenseModel>(std::move(checkpoint), options);
  HEARTH_RETURN_IF_ERROR(m->load());
  return std::unique_ptr<DeviceModel>(std::move(m));
}

}  // namespace hearth
