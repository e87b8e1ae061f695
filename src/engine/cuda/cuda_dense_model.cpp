// The dense GQA decoder (Qwen2, Llama) on CUDA. Weights live on the device in bf16 (f32 when the
// checkpoint is f32: parity runs), with q/k/v and gate/up fused into one matrix each. A step's layer:
//   add+RMSNorm -> QKV GEMM -> bias+RoPE+KV store -> attention (tensor-core prefill tiles / flash-decoding)
//   -> O GEMM -> add+RMSNorm -> gate|up GEMM -> SiLU*up -> down GEMM.
// Small bf16 batches (<= 8 tokens: decode) use the GEMV kernel with RoPE+KV store and SiLU*up fused into
// its epilogues. Everything shared with the other families is in CudaModelBase.
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>

#include "core/log.h"
#include "engine/cuda/cuda_model_base.h"
#include "kernels/cpu/matmul.h"

namespace hearth {
namespace {

struct DenseLayer {
  GpuWeight qkv_w, o_w, gu_w, down_w;     // T or FP8; gate/up rows interleaved
  DeviceBuffer qkv_b, o_b, gu_b, down_b;  // f32, optional
  DeviceBuffer attn_norm, mlp_norm;       // f32
};

class CudaDenseModel final : public CudaModelBase {
 public:
  using CudaModelBase::CudaModelBase;

  Status load() {
    HEARTH_RETURN_IF_ERROR(init_device());
    const ModelSpec& s = spec_;
    hd_ = s.head_dim;
    nh_ = s.num_attention_heads;
    nkv_ = s.num_key_value_heads;
    qd_ = nh_ * hd_;
    kvd_ = nkv_ * hd_;
    inter_ = s.intermediate_size;
    if (hd_ > 256)
      return make_error(ErrorCode::kUnsupported, "head_dim {} > 256 is not supported on CUDA", hd_);
    const bool qkv_bias = s.architecture == Architecture::kQwen2 || s.attention_bias;
    const bool o_bias = s.architecture == Architecture::kLlama && s.attention_bias;
    const bool mlp_bias = s.architecture == Architecture::kLlama && s.mlp_bias;

    // f32 checkpoints run in f32 (exact parity); everything else in bf16 (unless --gpu-dtype says otherwise).
    choose_dtype("model.layers.0.self_attn.q_proj.weight");

    ThreadPool pool(0);
    ModelWeights w(ckpt_, WeightLoadOptions{}, &pool);
    HEARTH_LOG_INFO("cuda: loading {} ({} layers, {}) onto {}", ckpt_->path(), s.num_hidden_layers,
                    dtype_ == GpuDType::kF32 ? "f32" : "bf16", device_name_);

    RopeTable rope = make_rope_table(s);
    if (ckpt_->find("rope_freqs.weight") != nullptr) {  // GGUF: Llama-3 scaling as divisors
      HEARTH_ASSIGN_OR_RETURN(const float* f, w.vector("rope_freqs.weight", rope.rot_dim / 2));
      for (int64_t i = 0; i < rope.rot_dim / 2; ++i) rope.inv_freq[i] /= f[i];
    }
    HEARTH_RETURN_IF_ERROR(load_ends(w, pool, rope));
    // q/k rows are stored with each rotated pair adjacent (neox-style checkpoints are permuted below, which
    // attention does not notice: q and k share the permutation), so RoPE is always the interleaved kind and
    // the small-batch QKV GEMV can rotate pairs in its epilogue.
    permute_qk_ = !rope.interleave;
    rope_.interleave = true;

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
      HEARTH_RETURN_IF_ERROR(upload_weight({q, k, v}, L.qkv_w, p + " qkv", pool));
      HEARTH_ASSIGN_OR_RETURN(WeightMatrix o, w.matrix(p + ".self_attn.o_proj.weight", h_, qd_));
      HEARTH_RETURN_IF_ERROR(upload_weight({o}, L.o_w, p + " o_proj", pool));
      HEARTH_ASSIGN_OR_RETURN(WeightMatrix g, w.matrix(p + ".mlp.gate_proj.weight", inter_, h_));
      HEARTH_ASSIGN_OR_RETURN(WeightMatrix u, w.matrix(p + ".mlp.up_proj.weight", inter_, h_));
      HEARTH_RETURN_IF_ERROR(upload_weight({g, u}, L.gu_w, p + " gate/up", pool, /*interleave=*/true));
      HEARTH_ASSIGN_OR_RETURN(WeightMatrix d, w.matrix(p + ".mlp.down_proj.weight", h_, inter_));
      HEARTH_RETURN_IF_ERROR(upload_weight({d}, L.down_w, p + " down_proj", pool));
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
        HEARTH_RETURN_IF_ERROR(
            upload_interleaved_bias(w, p + ".mlp.gate_proj.bias", p + ".mlp.up_proj.bias", inter_, L.gu_b));
        HEARTH_RETURN_IF_ERROR(upload_vector(w, p + ".mlp.down_proj.bias", h_, L.down_b));
      }
      if ((l + 1) % 8 == 0 || l + 1 == s.num_hidden_layers)
        HEARTH_LOG_INFO("cuda: layer {}/{} on the device ({:.2f} GiB)", l + 1, s.num_hidden_layers,
                        static_cast<double>(weight_bytes_) / (1 << 30));
    }
    const int64_t T = opt_.max_batch_tokens;
    const int64_t tb = cuda::dtype_bytes(dtype_);
    HEARTH_RETURN_IF_ERROR(alloc(qkv_, static_cast<uint64_t>(T * (qd_ + 2 * kvd_) * 4), "qkv"));
    HEARTH_RETURN_IF_ERROR(alloc(q_, static_cast<uint64_t>(T * qd_ * 4), "q"));
    HEARTH_RETURN_IF_ERROR(alloc(att_, static_cast<uint64_t>(T * qd_ * tb), "attention out"));
    HEARTH_RETURN_IF_ERROR(alloc(gu_, static_cast<uint64_t>(T * 2 * inter_ * 4), "gate/up"));
    HEARTH_RETURN_IF_ERROR(alloc(act_, static_cast<uint64_t>(T * inter_ * tb), "mlp activation"));
    prefill_kernel_ = dtype_ == GpuDType::kBF16 && cuda::prefill_attention_supported(static_cast<int>(hd_));
    // Short contexts at small batches: one clustered attention launch instead of split + combine.
    if (std::getenv("HEARTH_CUDA_NO_ATTENTION_CLUSTER") == nullptr)
      attn_cluster_ = cuda::attention_cluster_size(static_cast<int>(hd_), dtype_, dtype_);
    return finish_load(2 * kvd_, nh_, nkv_, hd_);
  }

 private:
  // Small bf16 batches run GEMVs (no cuBLAS) everywhere, the LM head included.
  bool own_kernels_only(const StepShape& sh) const override {
    const int64_t align = opt_.fp8_weights ? 16 : 8;
    return dtype_ == GpuDType::kBF16 && sh.n <= cuda::kGemvMaxRows && sh.rows <= cuda::kGemvMaxRows &&
           h_ % align == 0 && qd_ % align == 0 && inter_ % align == 0 && h_ % 8 == 0 && qd_ % 8 == 0 &&
           inter_ % 8 == 0 && sh.num_tiles == 0;
  }

  Status run_layers(const StepShape& sh, const StepInputs& in, Pending& pending) override {
    const int64_t n = sh.n;
    const float eps = static_cast<float>(spec_.rms_norm_eps);
    float* x = x_.as<float>();
    for (size_t l = 0; l < layers_.size(); ++l) {
      const DenseLayer& L = layers_[l];
      void* kv = kv_layer(static_cast<int64_t>(l));
      // Small batches: the QKV GEMV normalizes the residual itself (no add_rmsnorm kernel) once the previous
      // output projection has added into it.
      const cuda::GemvFusion attn_norm = norm_prologue(n, L.qkv_w, pending, L.attn_norm);
      if (attn_norm.norm_x == nullptr) {
        HEARTH_RETURN_IF_ERROR(
            launch(cuda::add_rmsnorm(x, pending.delta, pending.bias, L.attn_norm.as<float>(), eps, n, h_,
                                     xn_.ptr(), dtype_, nullptr, ks()),
                   "add_rmsnorm"));
        mark("attn_norm");
      }
      pending = Pending{};
      if (gemv_ok(L.qkv_w, n, h_)) {
        // Small batches: bias, RoPE and the KV store in the QKV GEMV's epilogue.
        cuda::QkvRopeEpilogue e;
        e.nh = static_cast<int>(nh_);
        e.nkv = static_cast<int>(nkv_);
        e.hd = static_cast<int>(hd_);
        e.rope = rope_;
        e.pos = in.pos;
        e.seq_of = in.seq_of;
        e.block_table = in.table;
        e.table_width = static_cast<int>(sh.width);
        e.block_size = static_cast<int>(opt_.block_size);
        e.bias = L.qkv_b.as<float>();
        e.q = q_.as<float>();
        e.kv_layer = static_cast<__nv_bfloat16*>(kv);
        HEARTH_RETURN_IF_ERROR(launch(cuda::gemv_qkv_rope(L.qkv_w.data.ptr(), L.qkv_w.scale_ptr(), xn_.ptr(),
                                                          n, h_, e, ks(), L.qkv_w.block_scaled, attn_norm),
                                      "gemv_qkv_rope"));
        mark("qkv_rope_gemv");
      } else {
        HEARTH_RETURN_IF_ERROR(gemm(L.qkv_w, xn_.ptr(), n, qd_ + 2 * kvd_, h_, qkv_.as<float>()));
        mark("qkv_gemm");
        HEARTH_RETURN_IF_ERROR(
            launch(cuda::qkv_rope_store(qkv_.as<float>(), L.qkv_b.as<float>(), n, static_cast<int>(nh_),
                                        static_cast<int>(nkv_), static_cast<int>(hd_), rope_, in.pos,
                                        in.seq_of, in.table, static_cast<int>(sh.width),
                                        static_cast<int>(opt_.block_size), q_.as<float>(), kv, dtype_, ks()),
                   "qkv_rope_store"));
        mark("rope_store");
      }
      if (sh.num_tiles > 0) {
        HEARTH_RETURN_IF_ERROR(
            launch(cuda::prefill_attention(q_.as<float>(), kv, in.pos, in.seq_of, in.table, in.tiles,
                                           sh.num_tiles, sh.attn, att_.ptr(), ks()),
                   "prefill_attention"));
      }
      if (sh.n_dec > 0) {
        HEARTH_RETURN_IF_ERROR(
            launch(cuda::paged_attention(q_.as<float>(), kv, dtype_, in.pos, in.seq_of, in.table,
                                         sh.num_tiles > 0 ? in.dec_list : nullptr, sh.n_dec, sh.attn,
                                         partial_.as<float>(), att_.ptr(), dtype_, ks()),
                   "paged_attention"));
      }
      mark("attention");
      HEARTH_RETURN_IF_ERROR(project(L.o_w, att_.ptr(), n, qd_, L.o_b.as<float>(), pending));
      mark("o_proj");
      const bool gu_gemv = gemv_ok(L.gu_w, n, h_) && L.gu_b.ptr() == nullptr;
      const cuda::GemvFusion mlp_norm =
          gu_gemv ? norm_prologue(n, L.gu_w, pending, L.mlp_norm) : cuda::GemvFusion{};
      if (mlp_norm.norm_x == nullptr) {
        HEARTH_RETURN_IF_ERROR(
            launch(cuda::add_rmsnorm(x, pending.delta, pending.bias, L.mlp_norm.as<float>(), eps, n, h_,
                                     xn_.ptr(), dtype_, nullptr, ks()),
                   "add_rmsnorm"));
        mark("mlp_norm");
      }
      pending = Pending{};
      if (gu_gemv) {
        // Small batches: SiLU(gate) * up in the GEMV's epilogue (no f32 round trip, one kernel fewer).
        HEARTH_RETURN_IF_ERROR(
            launch(cuda::gemv_swiglu(L.gu_w.data.ptr(), L.gu_w.scale_ptr(), xn_.ptr(), n, inter_, h_,
                                     act_.ptr(), ks(), L.gu_w.block_scaled, mlp_norm),
                   "gemv_swiglu"));
        mark("gate_up_silu_gemv");
      } else {
        HEARTH_RETURN_IF_ERROR(gemm(L.gu_w, xn_.ptr(), n, 2 * inter_, h_, gu_.as<float>()));
        mark("gate_up_gemm");
        HEARTH_RETURN_IF_ERROR(
            launch(cuda::silu_mul(gu_.as<float>(), L.gu_b.as<float>(), n, inter_, act_.ptr(), dtype_, ks()),
                   "silu_mul"));
        mark("silu_mul");
      }
      HEARTH_RETURN_IF_ERROR(project(L.down_w, act_.ptr(), n, inter_, L.down_b.as<float>(), pending));
      mark("down_proj");
    }
    return Status::ok();
  }

  // An output projection (k inputs -> h_) into the residual stream: small batches add into x_ in the GEMV's
  // epilogue (pending stays empty); otherwise the product goes to delta_ and pending carries it (and the
  // bias) to the next add_rmsnorm.
  Status project(const GpuWeight& w, const void* in, int64_t n, int64_t k, const float* bias,
                 Pending& pending) {
    if (fuse_gemv_ && gemv_ok(w, n, k)) {
      pending = Pending{};
      return launch(cuda::gemv_residual(w.data.ptr(), w.scale_ptr(), in, n, h_, k, x_.as<float>(), bias, ks(),
                                        w.block_scaled),
                    "gemv_residual");
    }
    HEARTH_RETURN_IF_ERROR(gemm(w, in, n, h_, k, delta_.as<float>()));
    pending.delta = delta_.as<float>();
    pending.bias = bias;
    return Status::ok();
  }

  // The norm prologue for the GEMV that reads norm(x_) next, for one token and nothing pending. Each CTA
  // normalizes the rows itself, so it only pays at one token (H200, batch 1: 1.5B +1% bf16 / +5.5% FP8,
  // 7B +2.3% / +5.4%; batch 2 on the 1.5B: 4% slower than add_rmsnorm).
  cuda::GemvFusion norm_prologue(int64_t n, const GpuWeight& w, const Pending& pending,
                                 const DeviceBuffer& weight) const {
    cuda::GemvFusion f;
    if (!fuse_gemv_ || n != 1 || pending.delta != nullptr || !gemv_ok(w, n, h_) ||
        !cuda::gemv_norm_fits(n, h_))
      return f;
    f.norm_x = x_.as<float>();
    f.norm_w = weight.as<float>();
    f.norm_eps = static_cast<float>(spec_.rms_norm_eps);
    return f;
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
        for (int64_t d = 0; d < hd_; ++d)
          all[static_cast<size_t>(h * hd_ + d)] = src[static_cast<size_t>(h * hd_ + pair_source(d))];
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
        std::memcpy(storage.data() + static_cast<size_t>(h * hd_ + d) * src.row_bytes,
                    src.row(h * hd_ + pair_source(d)), src.row_bytes);
    WeightMatrix out = src;
    out.data = storage.data();
    return out;
  }

  int64_t hd_ = 0, nh_ = 0, nkv_ = 0, qd_ = 0, kvd_ = 0, inter_ = 0;
  bool permute_qk_ = false;
  // Small-batch fusions of the residual add and RMSNorm into the GEMVs; HEARTH_CUDA_NO_GEMV_FUSION=1 runs
  // the separate add_rmsnorm kernels (for comparisons).
  bool fuse_gemv_ = std::getenv("HEARTH_CUDA_NO_GEMV_FUSION") == nullptr;
  std::vector<DenseLayer> layers_;
  DeviceBuffer qkv_, q_, att_, gu_, act_;
};

}  // namespace

Result<std::unique_ptr<DeviceModel>> make_cuda_dense_model(std::shared_ptr<const Checkpoint> checkpoint,
                                                           const DeviceModelOptions& options) {
  auto m = std::make_unique<CudaDenseModel>(std::move(checkpoint), options);
  HEARTH_RETURN_IF_ERROR(m->load());
  return std::unique_ptr<DeviceModel>(std::move(m));
}

}  // namespace hearth
