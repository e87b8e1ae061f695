// DeepSeek V2 / V3 / R1 on CUDA: multi-head latent attention in absorbed form over a cache of
// [RMSNorm(latent) | RoPE(k_pe)] rows, and DeepSeek MoE (routed + shared experts, dense first layers).
// A layer:
//   add+RMSNorm -> q (q_a -> norm -> q_b, or q_proj) and kv_a GEMMs -> latent norm + RoPE + cache store
//   -> q_lat = W_UK^T q_nope (per-head batched GEMM) -> MLA attention over the latents
//   -> W_UV o_lat (batched GEMM) -> O GEMM -> add+RMSNorm -> dense MLP, or: router GEMM -> top-k routing
//   -> routed experts (GEMVs over stacked weights: one per pair for small batches, grouped by expert for
//   large ones) + shared experts -> weighted combine.
// FP8 checkpoints (V3's 128x128 block scales) stay FP8 when computing in bf16 (scales expanded per row and
// 128 columns); in f32 (parity runs) they are dequantized at load.
#include <fmt/format.h>

#include <cstdlib>

#include "core/log.h"
#include "engine/cuda/cuda_model_base.h"
#include "kernels/cpu/matmul.h"

namespace hearth {
namespace {

struct DsLayer {
  DeviceBuffer attn_norm, mlp_norm;  // f32
  GpuWeight q_w, q_a_w, q_b_w;       // q_proj, or q_a_proj + q_b_proj
  DeviceBuffer q_a_norm, kv_a_norm;  // f32
  GpuWeight kv_a_w;                  // [lora + rope][hidden]
  DeviceBuffer uk_t;                 // T [heads][lora][nope]: W_UK[h]^T
  DeviceBuffer kv_b_w;               // T [heads * (nope + v)][lora] (W_UV rows read in place)
  GpuWeight o_w;                     // [hidden][heads * v]
  bool moe = false;
  GpuWeight gu_w, down_w;  // dense MLP or shared experts (gate/up interleaved)
  int64_t mlp_inter = 0;
  GpuWeight router_w;            // T [experts][hidden], never FP8 (routing decisions are discontinuous)
  DeviceBuffer correction_bias;  // f32 [experts], V3
  DeviceBuffer experts_gu;       // T [experts][2 inter][hidden], gate/up interleaved per expert
  DeviceBuffer experts_down;     // T [experts][hidden][inter]
  // FP8 checkpoints computed in bf16: the experts stay e4m3 (bytes above) with scales per row and 128
  // columns, [experts][ceil(cols / 128)][rows].
  DeviceBuffer experts_gu_scale, experts_down_scale;
};

class CudaDeepseekModel final : public CudaModelBase {
 public:
  using CudaModelBase::CudaModelBase;

  Status load() {
    HEARTH_RETURN_IF_ERROR(init_device());
    const ModelSpec& s = spec_;
    if (!s.is_mla() || !s.is_moe())
      return make_error(ErrorCode::kUnsupported, "DeepSeek models without MLA or MoE are not supported");
    if (s.attention_bias)
      return make_error(ErrorCode::kUnsupported, "DeepSeek attention biases are not supported on CUDA yet");
    const MlaSpec& mla = *s.mla;
    const MoeSpec& moe = *s.moe;
    nh_ = s.num_attention_heads;
    nope_ = mla.qk_nope_head_dim;
    rope_dim_ = mla.qk_rope_head_dim;
    vd_ = mla.v_head_dim;
    lora_ = mla.kv_lora_rank;
    qr_ = mla.q_lora_rank;
    qk_ = nope_ + rope_dim_;
    ne_ = moe.n_routed_experts;
    topk_ = moe.num_experts_per_tok;
    mi_ = moe.moe_intermediate_size;
    const std::string first_q =
        qr_ > 0 ? "model.layers.0.self_attn.q_a_proj.weight" : "model.layers.0.self_attn.q_proj.weight";
    choose_dtype(first_q);

    ThreadPool pool(0);
    ModelWeights w(ckpt_, WeightLoadOptions{}, &pool);
    HEARTH_LOG_INFO("cuda: loading {} ({} layers, MLA + MoE, {}) onto {}", ckpt_->path(), s.num_hidden_layers,
                    dtype_ == GpuDType::kF32 ? "f32" : "bf16", device_name_);
    HEARTH_RETURN_IF_ERROR(load_ends(w, pool, make_rope_table(s)));

    layers_.resize(static_cast<size_t>(s.num_hidden_layers));
    int64_t max_inter = 1;
    for (int64_t l = 0; l < s.num_hidden_layers; ++l) {
      DsLayer& L = layers_[static_cast<size_t>(l)];
      const std::string p = fmt::format("model.layers.{}", l);
      const std::string a = p + ".self_attn";
      HEARTH_RETURN_IF_ERROR(upload_vector(w, p + ".input_layernorm.weight", h_, L.attn_norm));
      HEARTH_RETURN_IF_ERROR(upload_vector(w, p + ".post_attention_layernorm.weight", h_, L.mlp_norm));
      if (qr_ > 0) {
        HEARTH_ASSIGN_OR_RETURN(WeightMatrix qa, w.matrix(a + ".q_a_proj.weight", qr_, h_));
        HEARTH_RETURN_IF_ERROR(upload_weight({qa}, L.q_a_w, a + ".q_a_proj", pool));
        HEARTH_RETURN_IF_ERROR(upload_vector(w, a + ".q_a_layernorm.weight", qr_, L.q_a_norm));
        HEARTH_ASSIGN_OR_RETURN(WeightMatrix qb, w.matrix(a + ".q_b_proj.weight", nh_ * qk_, qr_));
        HEARTH_RETURN_IF_ERROR(upload_weight({qb}, L.q_b_w, a + ".q_b_proj", pool));
      } else {
        HEARTH_ASSIGN_OR_RETURN(WeightMatrix q, w.matrix(a + ".q_proj.weight", nh_ * qk_, h_));
        HEARTH_RETURN_IF_ERROR(upload_weight({q}, L.q_w, a + ".q_proj", pool));
      }
      HEARTH_ASSIGN_OR_RETURN(WeightMatrix kva,
                              w.matrix(a + ".kv_a_proj_with_mqa.weight", lora_ + rope_dim_, h_));
      HEARTH_RETURN_IF_ERROR(upload_weight({kva}, L.kv_a_w, a + ".kv_a_proj_with_mqa", pool));
      HEARTH_RETURN_IF_ERROR(upload_vector(w, a + ".kv_a_layernorm.weight", lora_, L.kv_a_norm));
      HEARTH_ASSIGN_OR_RETURN(WeightMatrix kvb,
                              w.embedding(a + ".kv_b_proj.weight", nh_ * (nope_ + vd_), lora_));
      HEARTH_RETURN_IF_ERROR(upload_matrices({kvb}, L.kv_b_w, a + ".kv_b_proj", pool));
      // W_UK[h]^T: row (h * lora + c), column i = kv_b[h * (nope + v) + i][c].
      std::vector<float> ukt(static_cast<size_t>(nh_ * lora_ * nope_));
      std::vector<float> row(static_cast<size_t>(lora_));
      for (int64_t hh = 0; hh < nh_; ++hh)
        for (int64_t i = 0; i < nope_; ++i) {
          decode_row(kvb, hh * (nope_ + vd_) + i, row.data());
          for (int64_t c = 0; c < lora_; ++c) ukt[static_cast<size_t>((hh * lora_ + c) * nope_ + i)] = row[c];
        }
      HEARTH_RETURN_IF_ERROR(
          upload_matrices({f32_view(ukt, nh_ * lora_, nope_)}, L.uk_t, a + " W_UK^T", pool));
      HEARTH_ASSIGN_OR_RETURN(WeightMatrix o, w.matrix(a + ".o_proj.weight", h_, nh_ * vd_));
      HEARTH_RETURN_IF_ERROR(upload_weight({o}, L.o_w, a + ".o_proj", pool));

      if (s.is_moe_layer(l)) {
        L.moe = true;
        HEARTH_ASSIGN_OR_RETURN(WeightMatrix router, w.embedding(p + ".mlp.gate.weight", ne_, h_));
        HEARTH_RETURN_IF_ERROR(upload_matrices({router}, L.router_w.data, p + ".mlp.gate", pool));
        L.router_w.rows = ne_;
        L.router_w.cols = h_;
        if (s.architecture == Architecture::kDeepseekV3 || moe.topk_method == TopkMethod::kNoauxTc)
          HEARTH_RETURN_IF_ERROR(
              upload_vector(w, p + ".mlp.gate.e_score_correction_bias", ne_, L.correction_bias));
        // Expert 0 decides the format (every expert must match it).
        HEARTH_ASSIGN_OR_RETURN(WeightMatrix g0, w.expert(l, 0, "gate_proj", mi_, h_));
        HEARTH_ASSIGN_OR_RETURN(WeightMatrix u0, w.expert(l, 0, "up_proj", mi_, h_));
        HEARTH_ASSIGN_OR_RETURN(WeightMatrix d0, w.expert(l, 0, "down_proj", h_, mi_));
        const bool fp8 = native_fp8({g0, u0}) && native_fp8({d0});
        const int64_t tb = fp8 ? 1 : cuda::dtype_bytes(dtype_);
        const uint64_t gu_bytes = static_cast<uint64_t>(2 * mi_ * h_ * tb),
                       dn_bytes = static_cast<uint64_t>(h_ * mi_ * tb);
        const int64_t gu_scales = (h_ + 127) / 128 * 2 * mi_, dn_scales = (mi_ + 127) / 128 * h_;
        HEARTH_RETURN_IF_ERROR(
            L.experts_gu.allocate(gu_bytes * static_cast<uint64_t>(ne_), "routed experts gate/up"));
        HEARTH_RETURN_IF_ERROR(
            L.experts_down.allocate(dn_bytes * static_cast<uint64_t>(ne_), "routed experts down"));
        weight_bytes_ += (gu_bytes + dn_bytes) * static_cast<uint64_t>(ne_);
        if (fp8) {
          HEARTH_RETURN_IF_ERROR(L.experts_gu_scale.allocate(static_cast<uint64_t>(gu_scales * ne_) * 4,
                                                             "routed experts gate/up scales"));
          HEARTH_RETURN_IF_ERROR(L.experts_down_scale.allocate(static_cast<uint64_t>(dn_scales * ne_) * 4,
                                                               "routed experts down scales"));
          weight_bytes_ += L.experts_gu_scale.bytes() + L.experts_down_scale.bytes();
        }
        for (int64_t e = 0; e < ne_; ++e) {
          WeightMatrix g = g0, u = u0, d = d0;
          if (e > 0) {
            HEARTH_ASSIGN_OR_RETURN(g, w.expert(l, e, "gate_proj", mi_, h_));
            HEARTH_ASSIGN_OR_RETURN(u, w.expert(l, e, "up_proj", mi_, h_));
            HEARTH_ASSIGN_OR_RETURN(d, w.expert(l, e, "down_proj", h_, mi_));
          }
          if (fp8) {
            if (!native_fp8({g, u}) || !native_fp8({d}))
              return make_error(ErrorCode::kInvalidArgument,
                                "{}: expert {} is not stored like expert 0 (FP8)", p, e);
            HEARTH_RETURN_IF_ERROR(
                upload_fp8_rows(static_cast<char*>(L.experts_gu.ptr()) + gu_bytes * static_cast<uint64_t>(e),
                                L.experts_gu_scale.as<float>() + gu_scales * e, {g, u}, /*interleave=*/true));
            HEARTH_RETURN_IF_ERROR(upload_fp8_rows(
                static_cast<char*>(L.experts_down.ptr()) + dn_bytes * static_cast<uint64_t>(e),
                L.experts_down_scale.as<float>() + dn_scales * e, {d}, /*interleave=*/false));
            continue;
          }
          HEARTH_RETURN_IF_ERROR(
              upload_rows(static_cast<char*>(L.experts_gu.ptr()) + gu_bytes * static_cast<uint64_t>(e),
                          {g, u}, pool, true));
          HEARTH_RETURN_IF_ERROR(upload_rows(
              static_cast<char*>(L.experts_down.ptr()) + dn_bytes * static_cast<uint64_t>(e), {d}, pool));
        }
        if (moe.n_shared_experts > 0)
          HEARTH_RETURN_IF_ERROR(load_mlp(w, pool, p + ".mlp.shared_experts", moe.n_shared_experts * mi_, L));
      } else {
        HEARTH_RETURN_IF_ERROR(load_mlp(w, pool, p + ".mlp", s.intermediate_size, L));
      }
      max_inter = std::max(max_inter, L.mlp_inter);
      if ((l + 1) % 8 == 0 || l + 1 == s.num_hidden_layers)
        HEARTH_LOG_INFO("cuda: layer {}/{} on the device ({:.2f} GiB)", l + 1, s.num_hidden_layers,
                        static_cast<double>(weight_bytes_) / (1 << 30));
    }
    route_.n_experts = static_cast<int>(ne_);
    route_.top_k = static_cast<int>(topk_);
    route_.n_group = static_cast<int>(moe.n_group);
    route_.topk_group = static_cast<int>(moe.topk_group);
    route_.method = moe.topk_method == TopkMethod::kGreedy    ? 0
                    : moe.topk_method == TopkMethod::kNoauxTc ? 2
                                                              : 1;
    route_.sigmoid = moe.scoring_func == ScoringFunc::kSigmoid;
    route_.norm_topk = moe.norm_topk_prob;
    route_.scale_after_norm = s.architecture == Architecture::kDeepseekV3;
    route_.routed_scaling = static_cast<float>(moe.routed_scaling_factor);
    mla_.nh = static_cast<int>(nh_);
    mla_.nope = static_cast<int>(nope_);
    mla_.rope = static_cast<int>(rope_dim_);
    mla_.lora = static_cast<int>(lora_);
    mla_.q_stride = static_cast<int>(nh_ * qk_);

    const int64_t T = opt_.max_batch_tokens;
    const int64_t tb = cuda::dtype_bytes(dtype_);
    const int64_t kdim = lora_ + rope_dim_;
    HEARTH_RETURN_IF_ERROR(alloc(q_, static_cast<uint64_t>(T * nh_ * qk_ * 4), "q"));
    if (qr_ > 0) {
      HEARTH_RETURN_IF_ERROR(alloc(qa_, static_cast<uint64_t>(T * qr_ * 4), "q_a"));
      HEARTH_RETURN_IF_ERROR(alloc(qan_, static_cast<uint64_t>(T * qr_ * tb), "q_a normed"));
    }
    HEARTH_RETURN_IF_ERROR(alloc(ckv_, static_cast<uint64_t>(T * kdim * 4), "kv_a"));
    HEARTH_RETURN_IF_ERROR(alloc(qcat_, static_cast<uint64_t>(T * nh_ * kdim * 4), "q latent + rope"));
    HEARTH_RETURN_IF_ERROR(alloc(qnope_, static_cast<uint64_t>(T * nh_ * nope_ * tb), "q nope"));
    HEARTH_RETURN_IF_ERROR(alloc(olat_, static_cast<uint64_t>(T * nh_ * lora_ * tb), "attention latents"));
    HEARTH_RETURN_IF_ERROR(alloc(att_, static_cast<uint64_t>(T * nh_ * vd_ * tb), "attention out"));
    HEARTH_RETURN_IF_ERROR(alloc(gu_, static_cast<uint64_t>(T * 2 * max_inter * 4), "gate/up"));
    HEARTH_RETURN_IF_ERROR(alloc(act_, static_cast<uint64_t>(T * max_inter * tb), "mlp activation"));
    HEARTH_RETURN_IF_ERROR(alloc(router_, static_cast<uint64_t>(T * ne_ * 4), "router logits"));
    HEARTH_RETURN_IF_ERROR(alloc(experts_, static_cast<uint64_t>(T * topk_ * 4), "expert ids"));
    HEARTH_RETURN_IF_ERROR(alloc(weights_, static_cast<uint64_t>(T * topk_ * 4), "expert weights"));
    HEARTH_RETURN_IF_ERROR(
        alloc(moe_act_, static_cast<uint64_t>(T * topk_ * mi_ * tb), "expert activations"));
    HEARTH_RETURN_IF_ERROR(alloc(moe_y_, static_cast<uint64_t>(T * topk_ * h_ * 4), "expert outputs"));
    HEARTH_RETURN_IF_ERROR(alloc(shared_y_, static_cast<uint64_t>(T * h_ * 4), "shared expert outputs"));
    HEARTH_RETURN_IF_ERROR(alloc(moe_order_, static_cast<uint64_t>(T * topk_ * 4), "expert pair order"));
    HEARTH_RETURN_IF_ERROR(alloc(
        moe_tasks_,
        static_cast<uint64_t>(cuda::moe_max_tasks(T * topk_, static_cast<int>(ne_))) * sizeof(cuda::MoeTask),
        "expert tasks"));
    HEARTH_RETURN_IF_ERROR(alloc(moe_num_tasks_, 4, "expert task count"));
    prefill_kernel_ = false;  // MLA prefill runs the flash-decoding kernel per token (tensor cores: next)
    return finish_load(kdim, nh_, 1, lora_);
  }

 private:
  static WeightMatrix f32_view(const std::vector<float>& v, int64_t rows, int64_t cols) {
    WeightMatrix m;
    m.dtype = DType::kF32;
    m.rows = rows;
    m.cols = cols;
    m.data = reinterpret_cast<const uint8_t*>(v.data());
    m.row_bytes = static_cast<uint64_t>(cols) * 4;
    return m;
  }

  Status load_mlp(ModelWeights& w, ThreadPool& pool, const std::string& prefix, int64_t inter, DsLayer& L) {
    HEARTH_ASSIGN_OR_RETURN(WeightMatrix g, w.matrix(prefix + ".gate_proj.weight", inter, h_));
    HEARTH_ASSIGN_OR_RETURN(WeightMatrix u, w.matrix(prefix + ".up_proj.weight", inter, h_));
    HEARTH_RETURN_IF_ERROR(upload_weight({g, u}, L.gu_w, prefix + " gate/up", pool, /*interleave=*/true));
    HEARTH_ASSIGN_OR_RETURN(WeightMatrix d, w.matrix(prefix + ".down_proj.weight", h_, inter));
    HEARTH_RETURN_IF_ERROR(upload_weight({d}, L.down_w, prefix + ".down_proj", pool));
    L.mlp_inter = inter;
    return Status::ok();
  }

  // gate/up GEMM -> SiLU * up -> down GEMM into y (f32).
  Status mlp(const DsLayer& L, int64_t n, float* y) {
    HEARTH_RETURN_IF_ERROR(gemm(L.gu_w, xn_.ptr(), n, 2 * L.mlp_inter, h_, gu_.as<float>()));
    HEARTH_RETURN_IF_ERROR(launch(
        cuda::silu_mul(gu_.as<float>(), nullptr, n, L.mlp_inter, act_.ptr(), dtype_, ks()), "silu_mul"));
    HEARTH_RETURN_IF_ERROR(gemm(L.down_w, act_.ptr(), n, h_, L.mlp_inter, y));
    mark("mlp");
    return Status::ok();
  }

  bool own_kernels_only(const StepShape&) const override { return false; }  // MLA's batched GEMMs are cuBLAS

  Status run_layers(const StepShape& sh, const StepInputs& in, Pending& pending) override {
    const int64_t n = sh.n;
    const float eps = static_cast<float>(spec_.rms_norm_eps);
    const int64_t kdim = lora_ + rope_dim_;
    float* x = x_.as<float>();
    float* delta = delta_.as<float>();
    for (size_t l = 0; l < layers_.size(); ++l) {
      const DsLayer& L = layers_[l];
      void* kv = kv_layer(static_cast<int64_t>(l));
      HEARTH_RETURN_IF_ERROR(launch(cuda::add_rmsnorm(x, pending.delta, pending.bias, L.attn_norm.as<float>(),
                                                      eps, n, h_, xn_.ptr(), dtype_, nullptr, ks()),
                                    "add_rmsnorm"));
      mark("attn_norm");
      if (qr_ > 0) {
        HEARTH_RETURN_IF_ERROR(gemm(L.q_a_w, xn_.ptr(), n, qr_, h_, qa_.as<float>()));
        HEARTH_RETURN_IF_ERROR(
            launch(cuda::add_rmsnorm(qa_.as<float>(), nullptr, nullptr, L.q_a_norm.as<float>(), eps, n, qr_,
                                     qan_.ptr(), dtype_, nullptr, ks()),
                   "q_a_norm"));
        HEARTH_RETURN_IF_ERROR(gemm(L.q_b_w, qan_.ptr(), n, nh_ * qk_, qr_, q_.as<float>()));
      } else {
        HEARTH_RETURN_IF_ERROR(gemm(L.q_w, xn_.ptr(), n, nh_ * qk_, h_, q_.as<float>()));
      }
      HEARTH_RETURN_IF_ERROR(gemm(L.kv_a_w, xn_.ptr(), n, kdim, h_, ckv_.as<float>()));
      mark("q_kv_a");
      HEARTH_RETURN_IF_ERROR(
          launch(cuda::mla_rope_store(ckv_.as<float>(), L.kv_a_norm.as<float>(), eps, q_.as<float>(), n, mla_,
                                      rope_, in.pos, in.seq_of, in.table, static_cast<int>(sh.width),
                                      static_cast<int>(opt_.block_size), kv, dtype_, qcat_.as<float>(),
                                      qnope_.ptr(), dtype_, ks()),
                 "mla_rope_store"));
      mark("mla_rope_store");
      // q_lat[t][h] = W_UK[h]^T q_nope[t][h], into the first lora columns of each head's qcat row.
      cuda::BlasLt::Batched absorb;
      absorb.w = L.uk_t.ptr();
      absorb.ldw = nope_;
      absorb.stride_w = lora_ * nope_;
      absorb.x = qnope_.ptr();
      absorb.ldx = nh_ * nope_;
      absorb.stride_x = nope_;
      absorb.y = qcat_.ptr();
      absorb.ldy = nh_ * kdim;
      absorb.stride_y = kdim;
      absorb.yt = GpuDType::kF32;
      HEARTH_RETURN_IF_ERROR(blas_->gemm_batched(absorb, dtype_, nh_, n, lora_, nope_, stream_));
      mark("absorb_q");
      HEARTH_RETURN_IF_ERROR(
          launch(cuda::mla_attention(qcat_.as<float>(), kv, dtype_, in.pos, in.seq_of, in.table, n, mla_,
                                     sh.attn, partial_.as<float>(), olat_.ptr(), dtype_, ks()),
                 "mla_attention"));
      mark("attention");
      // v[t][h] = W_UV[h] o_lat[t][h]: W_UV[h] is rows [h (nope + v) + nope, + v) of kv_b.
      cuda::BlasLt::Batched uv;
      uv.w = static_cast<const char*>(L.kv_b_w.ptr()) + nope_ * lora_ * cuda::dtype_bytes(dtype_);
      uv.ldw = lora_;
      uv.stride_w = (nope_ + vd_) * lora_;
      uv.x = olat_.ptr();
      uv.ldx = nh_ * lora_;
      uv.stride_x = lora_;
      uv.y = att_.ptr();
      uv.ldy = nh_ * vd_;
      uv.stride_y = vd_;
      uv.yt = dtype_;
      HEARTH_RETURN_IF_ERROR(blas_->gemm_batched(uv, dtype_, nh_, n, vd_, lora_, stream_));
      HEARTH_RETURN_IF_ERROR(gemm(L.o_w, att_.ptr(), n, h_, nh_ * vd_, delta));
      mark("uv_o");
      HEARTH_RETURN_IF_ERROR(launch(cuda::add_rmsnorm(x, delta, nullptr, L.mlp_norm.as<float>(), eps, n, h_,
                                                      xn_.ptr(), dtype_, nullptr, ks()),
                                    "add_rmsnorm"));
      mark("mlp_norm");
      if (!L.moe) {
        HEARTH_RETURN_IF_ERROR(mlp(L, n, delta));
      } else {
        HEARTH_RETURN_IF_ERROR(gemm(L.router_w, xn_.ptr(), n, ne_, h_, router_.as<float>()));
        HEARTH_RETURN_IF_ERROR(
            launch(cuda::moe_route(router_.as<float>(), n, route_, L.correction_bias.as<float>(),
                                   experts_.as<int32_t>(), weights_.as<float>(), ks()),
                   "moe_route"));
        mark("moe_route");
        const int64_t pairs = n * topk_;
        if (grouped_experts_ && pairs > ne_) {
          // More pairs than experts: group them by expert so that each expert's weights are read once per
          // kMoeGroup pairs instead of once per pair.
          const cuda::MoeGroups g{moe_order_.as<int32_t>(), moe_tasks_.as<cuda::MoeTask>(),
                                  moe_num_tasks_.as<int32_t>()};
          const int ne = static_cast<int>(ne_);
          HEARTH_RETURN_IF_ERROR(
              launch(cuda::moe_group(experts_.as<int32_t>(), pairs, ne, g, ks()), "moe_group"));
          HEARTH_RETURN_IF_ERROR(
              launch(cuda::moe_grouped_swiglu(L.experts_gu.ptr(), L.experts_gu_scale.as<float>(), xn_.ptr(),
                                              g, pairs, ne, static_cast<int>(topk_), mi_, h_, moe_act_.ptr(),
                                              dtype_, ks()),
                     "moe_grouped_swiglu"));
          HEARTH_RETURN_IF_ERROR(launch(
              cuda::moe_grouped_down(L.experts_down.ptr(), L.experts_down_scale.as<float>(), moe_act_.ptr(),
                                     g, pairs, ne, mi_, h_, moe_y_.as<float>(), dtype_, ks()),
              "moe_grouped_down"));
        } else {
          HEARTH_RETURN_IF_ERROR(
              launch(cuda::moe_experts_swiglu(L.experts_gu.ptr(), L.experts_gu_scale.as<float>(), xn_.ptr(),
                                              experts_.as<int32_t>(), pairs, static_cast<int>(topk_), mi_, h_,
                                              moe_act_.ptr(), dtype_, ks()),
                     "moe_experts_swiglu"));
          HEARTH_RETURN_IF_ERROR(
              launch(cuda::moe_experts_down(L.experts_down.ptr(), L.experts_down_scale.as<float>(),
                                            moe_act_.ptr(), experts_.as<int32_t>(), pairs, mi_, h_,
                                            moe_y_.as<float>(), dtype_, ks()),
                     "moe_experts_down"));
        }
        mark("moe_experts");
        const bool shared = L.gu_w.data.ptr() != nullptr;
        if (shared) HEARTH_RETURN_IF_ERROR(mlp(L, n, shared_y_.as<float>()));
        HEARTH_RETURN_IF_ERROR(launch(cuda::moe_combine(moe_y_.as<float>(), weights_.as<float>(),
                                                        shared ? shared_y_.as<float>() : nullptr, n,
                                                        static_cast<int>(topk_), h_, delta, ks()),
                                      "moe_combine"));
        mark("moe_combine");
      }
      pending.delta = delta;
      pending.bias = nullptr;
    }
    return Status::ok();
  }

  int64_t nh_ = 0, nope_ = 0, rope_dim_ = 0, vd_ = 0, lora_ = 0, qr_ = 0, qk_ = 0;
  int64_t ne_ = 0, topk_ = 0, mi_ = 0;
  cuda::MlaShape mla_;
  cuda::MoeRouteParams route_;
  std::vector<DsLayer> layers_;
  DeviceBuffer q_, qa_, qan_, ckv_, qcat_, qnope_, olat_, att_, gu_, act_, router_, experts_, weights_,
      moe_act_, moe_y_, shared_y_, moe_order_, moe_tasks_, moe_num_tasks_;
  bool grouped_experts_ = std::getenv("HEARTH_CUDA_PER_PAIR_EXPERTS") == nullptr;
};

}  // namespace

Result<std::unique_ptr<DeviceModel>> make_cuda_deepseek_model(std::shared_ptr<const Checkpoint> checkpoint,
                                                              const DeviceModelOptions& options) {
  auto m = std::make_unique<CudaDeepseekModel>(std::move(checkpoint), options);
  HEARTH_RETURN_IF_ERROR(m->load());
  return std::unique_ptr<DeviceModel>(std::move(m));
}

}  // namespace hearth
