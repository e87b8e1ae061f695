#pragma once
// CUDA kernels of the GPU engine, as host-callable launchers: pure compute over device pointers on a
// stream, no allocation, no policy. Every launcher returns the launch error (cudaGetLastError) as an
// int (0 = success) so that callers compiled without the CUDA headers can use them.
//
// Conventions. "T" tensors (weights, GEMM inputs, the KV cache) are GpuDType::kF32 or kBF16; the
// residual stream, GEMM outputs and logits are f32. Per-token metadata lives on the device so that a
// decode step can be captured in a CUDA graph once and replayed with new values:
//   tok[n]       token ids
//   pos[n]       positions; a negative position marks a padding token (no KV write, no attention)
//   seq_of[n]    the token's sequence (row of the block-table matrix)
//   block_table  [num_seqs][table_width] block ids
// A KV layer is [num_blocks * block_size slots][2 * kv_dim] in T: K heads, then V heads (the CPU
// cache's layout; block tables index the same blocks on either device).
#include <cstdint>

struct CUstream_st;
struct __nv_bfloat16;

namespace hearth::cuda {

using Stream = CUstream_st*;

// Where a kernel runs: the stream, and whether it may overlap the previous kernel's tail (programmatic
// dependent launch: it starts early and waits for its predecessor's results). Only safe when every kernel
// of the sequence is one of these launchers (cuBLAS kernels in between were seen to break it).
struct Launch {
  Stream stream = nullptr;
  bool pdl = false;
};

enum class GpuDType : uint8_t { kF32 = 0, kBF16 = 1 };

inline int dtype_bytes(GpuDType t) {
  return t == GpuDType::kF32 ? 4 : 2;
}

// x[t] = embed[tok[t]] (f32 out), embed [vocab][hidden] in `et`.
int embed_rows(const void* embed, GpuDType et, const int32_t* tok, int64_t n, int64_t hidden, float* x,
               Launch s);

// For each row t < n: x[t] += delta[t] + bias (delta/bias optional, f32), then
// out[t] = rmsnorm(x[t]) * weight (f32 weight) written in `ot`. With `rows` (device, n entries), row t
// of the output is the norm of row rows[t] of x and x is not modified (the final norm of logit rows).
int add_rmsnorm(float* x, const float* delta, const float* bias, const float* weight, float eps, int64_t n,
                int64_t hidden, void* out, GpuDType ot, const int32_t* rows, Launch s);

struct RopeParams {
  const float* inv_freq = nullptr;  // device, rot_dim / 2
  int rot_dim = 0;
  float attention_factor = 1.0f;
  bool interleave = false;
};

// qkv: n rows of [q (nh * hd) | k (nkv * hd) | v (nkv * hd)] f32 (+ bias, f32, optional). Applies RoPE to
// q and k, writes q (f32, n x nh * hd) and K/V into the cache layer (`kvt`) at the token's slot.
int qkv_rope_store(const float* qkv, const float* bias, int64_t n, int nh, int nkv, int hd,
                   const RopeParams& rope, const int32_t* pos, const int32_t* seq_of,
                   const int32_t* block_table, int table_width, int block_size, float* q, void* kv_layer,
                   GpuDType kvt, Launch s);

// gu: n rows of 2 * inter f32 with gate and up interleaved (column 2i = gate_i, 2i + 1 = up_i: the
// engine stores the fused gate/up weight with interleaved rows) (+ bias, interleaved the same way,
// optional); out[t][i] = silu(gate_i) * up_i, written in `ot`.
int silu_mul(const float* gu, const float* bias, int64_t n, int64_t inter, void* out, GpuDType ot, Launch s);

// Paged attention (flash-decoding): token t's query heads (f32, q[t][nh * hd]) attend to positions
// [0, pos[t]] of its sequence. Each of `splits` parts covers `split_len` positions; with splits > 1 the
// parts go to `partial` (f32, n * nh * (hd + 2) * splits) and a combine pass writes out. out: tokens x
// nh * hd in `ot`. hd <= 256, a multiple of 8 (bf16 KV) or 4 (f32 KV). With `list` (device, n entries)
// only the listed tokens are computed; without it tokens 0..n-1.
// splits > 1: fixed split_len-position parts, merged by a second (combine) launch through `partial`.
// cluster > 1 (instead): the actual context of each token divided among `cluster` CTAs of a thread-block
// cluster that merge in shared memory; `partial` unused. At most kMaxAttentionCluster, and only a size that
// attention_cluster_size() allows.
constexpr int kMaxAttentionCluster = 16;
struct AttentionShape {
  int nh = 0, nkv = 0, hd = 0;
  float scale = 1.0f;
  int block_size = 16;
  int table_width = 0;
  int splits = 1;
  int split_len = 0;
  int cluster = 0;
};
// The largest cluster size (16, 8, 4 or 2) paged_attention can run on this device for head_dim hd with
// these KV / output types, or 0 when clusters are unavailable (before Hopper).
int attention_cluster_size(int hd, GpuDType kvt, GpuDType ot);
int paged_attention(const float* q, const void* kv_layer, GpuDType kvt, const int32_t* pos,
                    const int32_t* seq_of, const int32_t* block_table, const int32_t* list, int64_t n,
                    const AttentionShape& shape, float* partial, void* out, GpuDType ot, Launch s);

// Prefill attention on tensor cores (bf16 KV and output, head_dim 16/32/64/128): each query tile is up to
// kPrefillTile consecutive tokens of one sequence (tiles: num_tiles x {first token, count}); the tile's
// tokens attend causally to [0, their position] over the paged cache (prefix-cached blocks included).
constexpr int kPrefillTile = 64;
bool prefill_attention_supported(int hd);
int prefill_attention(const float* q, const void* kv_layer, const int32_t* pos, const int32_t* seq_of,
                      const int32_t* block_table, const int32_t* tiles, int64_t num_tiles,
                      const AttentionShape& shape, void* out, Launch s);

// Small-batch matrix-vector products: y[t][r] = sum_k w[r][k] x[t][k] for n <= 8 rows of x (bf16), y f32 with
// row stride `ldy`. Weights are bf16 (w_scale null; k % 8 == 0) or FP8 e4m3 (w_scale; k % 16 == 0) with one
// f32 scale per row, or with `block_scales` one per row and 128 columns: w_scale[(c / 128) * rows + r]
// (DeepSeek-V3's 128x128 blocks expanded per row). 16-byte aligned rows.
constexpr int kGemvMaxRows = 8;
int gemv(const void* w, const float* w_scale, const void* x, int64_t n, int64_t rows, int64_t k, float* y,
         int64_t ldy, Launch s, bool block_scales = false);
// Fusions around the small-batch GEMV. norm_x set: the GEMV's x is RMSNorm(norm_x) * norm_w, computed by
// each CTA from the f32 residual rows (n x k; `x` is then ignored; gemv_norm_fits(n, k) must hold) instead
// of a separate add_rmsnorm kernel. bias: gemv_residual's per-row bias.
struct GemvFusion {
  const float* norm_x = nullptr;
  const float* norm_w = nullptr;
  float norm_eps = 0.0f;
  const float* bias = nullptr;
};
bool gemv_norm_fits(int64_t n, int64_t k);
// residual[t][r] += sum_k w[r][k] x[t][k] (+ bias[r]): the output projections adding into the f32 residual
// stream (row stride `rows`), which removes the add of the next add_rmsnorm.
int gemv_residual(const void* w, const float* w_scale, const void* x, int64_t n, int64_t rows, int64_t k,
                  float* residual, const float* bias, Launch s, bool block_scales = false);
// The gate/up GEMV with SiLU(gate) * up fused: w has 2 * inter rows, gate and up interleaved; act gets
// n x inter bf16.
int gemv_swiglu(const void* w, const float* w_scale, const void* x, int64_t n, int64_t inter, int64_t k,
                void* act, Launch s, bool block_scales = false, const GemvFusion& norm = {});
// FP8 e4m3 rows x cols with gemv's scales -> bf16 (the FP8 weights' path into cuBLASLt when it has no FP8
// algorithm for a shape).
int dequant_fp8_rows(const void* w, const float* scale, int64_t rows, int64_t cols, void* out, Launch s,
                     bool block_scales = false);
// Activations for FP8 GEMMs: x (n x k, bf16) -> out (n x k, e4m3) with one f32 scale per `group` columns of a
// row (amax / 448). group >= k: one scale per row, scale[row]; otherwise scale[g * n + row] for group g
// (column-major [groups][n]).
int quantize_fp8(const void* x, int64_t n, int64_t k, int64_t group, void* out, float* scale, Launch s);
// The QKV GEMV with qkv_rope_store fused (bf16 cache): w's rows are [q | k | v] heads whose rotated dims
// are stored as interleaved pairs (rope.interleave must be true; the engine permutes neox-style q/k
// rows at load, which attention does not notice since q and k share the permutation). Token t of x is
// the batch's token t (pos/seq_of indexed by t).
struct QkvRopeEpilogue {
  int nh = 0, nkv = 0, hd = 0;
  RopeParams rope;
  const int32_t* pos = nullptr;
  const int32_t* seq_of = nullptr;
  const int32_t* block_table = nullptr;
  int table_width = 0;
  int block_size = 16;
  const float* bias = nullptr;        // (nh + 2 nkv) * hd, optional
  float* q = nullptr;                 // n x nh * hd
  __nv_bfloat16* kv_layer = nullptr;  // the layer's cache (bf16)
};
int gemv_qkv_rope(const void* w, const float* w_scale, const void* x, int64_t n, int64_t k,
                  const QkvRopeEpilogue& e, Launch s, bool block_scales = false, const GemvFusion& norm = {});

// Per logit row r < n: argmax (lowest id on ties) and its log-softmax value. `scratch`: n * 192 floats.
int argmax_logprob(const float* logits, int64_t n, int64_t vocab, int32_t* ids, float* logprobs,
                   float* scratch, Launch s);

// One logit row the device samples (the host Sampler's parameters; no penalties, no guided decoding).
struct SampleRow {
  int32_t row = 0;           // logit row
  int32_t top_k = 0;         // 0: off
  int32_t top_logprobs = 0;  // [0, kMaxTopLogprobs]
  float temperature = 0.0f;  // 0: argmax (lowest id on ties)
  float top_p = 1.0f;
  float min_p = 0.0f;
  uint64_t seed = 0;                 // the row's random key: the same seed and logits give the same token
  const uint8_t* allowed = nullptr;  // device, vocab entries: only ids with a non-zero entry may be chosen
};
constexpr int kMaxTopLogprobs = 20;
struct LogprobEntry {
  int32_t id;
  float logprob;
};

// For each of the n `rows` (device array): the token of its logit row (argmax at temperature 0, else a draw
// from softmax(logits / T) restricted by top_k, min_p and top_p as the host Sampler restricts it; with
// `allowed`, disallowed ids count as -inf for the choice and not for the logprobs) into
// ids[row] with its raw log-softmax value in logprobs[row], and its top_logprobs highest raw entries into
// top[row * kMaxTopLogprobs ...] (highest first, ties: lower id first). One block per row.
int sample_rows(const float* logits, int64_t vocab, const SampleRow* rows, int n, int32_t* ids,
                float* logprobs, LogprobEntry* top, Launch s);

// Converts n f32 values to `dt` on the device (weights converted at load).
int convert_f32(const float* in, int64_t n, void* out, GpuDType dt, Launch s);

}  // namespace hearth::cuda

// ---- DeepSeek: multi-head latent attention (absorbed) and MoE --------------------------------------------
namespace hearth::cuda {

struct MlaShape {
  int nh = 0;        // query heads
  int nope = 0;      // qk_nope_head_dim
  int rope = 0;      // qk_rope_head_dim (rotated)
  int lora = 0;      // kv_lora_rank: the latent (also the value width in the absorbed form)
  int q_stride = 0;  // floats between tokens in q (nh * (nope + rope))
};

// Per token: RMSNorm(latent) * kv_norm and RoPE(k_pe) into the cache row [latent | k_pe] (T), RoPE of each
// head's q_pe into qcat[t][h][lora:] (f32; qcat rows are lora + rope per head), and each head's q_nope
// copied as T into qnope[t][h * nope] (the absorption GEMM's input).
int mla_rope_store(const float* ckv, const float* kv_norm, float eps, const float* q, int64_t n,
                   const MlaShape& shape, const RopeParams& rope, const int32_t* pos, const int32_t* seq_of,
                   const int32_t* block_table, int table_width, int block_size, void* kv_layer, GpuDType kvt,
                   float* qcat, void* qnope, GpuDType qt, Launch s);

// Absorbed MLA attention (flash-decoding): query head h of token t ([q_lat | q_pe] = qcat[t][h], f32)
// scores every cached row [latent | k_pe] of positions [0, pos[t]]; the output is the softmax-weighted sum
// of the latents: out[t][h] (lora wide, `ot`). Splits as paged_attention (shape.hd = lora for partials).
int mla_attention(const float* qcat, const void* kv_layer, GpuDType kvt, const int32_t* pos,
                  const int32_t* seq_of, const int32_t* block_table, int64_t n, const MlaShape& mla,
                  const AttentionShape& shape, float* partial, void* out, GpuDType ot, Launch s);

struct MoeRouteParams {
  int n_experts = 0;
  int top_k = 0;
  int n_group = 1;
  int topk_group = 1;
  int method = 0;          // 0 greedy, 1 group-limited greedy (group score = max), 2 noaux_tc (top-2 sum)
  bool sigmoid = false;    // scoring: sigmoid (V3) or softmax (V2)
  bool norm_topk = false;  // normalise the k weights
  bool scale_after_norm = false;
  float routed_scaling = 1.0f;
};
// Per token: the k experts (ascending ids) and their weights, exactly as the CPU's moe_route.
int moe_route(const float* router_logits, int64_t n, const MoeRouteParams& p, const float* correction_bias,
              int32_t* experts, float* weights, Launch s);

// Routed experts for `pairs` (token, slot) pairs (pair p is token p / k, expert experts[p]):
// act[p] = silu(gate) * up from the stacked, per-expert interleaved gate/up weights [experts][2
// inter][hidden]; then y[p] (f32) = down[experts[p]] act[p] with down stacked [experts][hidden][inter]. T:
// weights, x, act. With w_scale the weights are FP8 e4m3 (t must be kBF16: x and act bf16) with one scale per
// row and 128 columns, stacked [experts][ceil(cols / 128)][rows] (gemv's block_scales layout per expert).
int moe_experts_swiglu(const void* w_gu, const float* w_scale, const void* x, const int32_t* experts,
                       int64_t pairs, int k, int64_t inter, int64_t hidden, void* act, GpuDType t, Launch s);
int moe_experts_down(const void* w_down, const float* w_scale, const void* act, const int32_t* experts,
                     int64_t pairs, int64_t inter, int64_t hidden, float* y, GpuDType t, Launch s);
// The same two products for large batches, grouped by expert: moe_group sorts the pairs by expert into
// tasks of up to kMoeGroup pairs of one expert (scratch: order[pairs], tasks[moe_max_tasks], num_tasks[1]),
// then each task reads its expert's weights once for all its pairs. Bit-identical to the per-pair kernels.
constexpr int kMoeGroup = 8;
struct MoeTask {
  int32_t expert, start, count, pad;
};
struct MoeGroups {
  int32_t* order = nullptr;
  MoeTask* tasks = nullptr;
  int32_t* num_tasks = nullptr;
};
int64_t moe_max_tasks(int64_t pairs, int ne);
int moe_group(const int32_t* experts, int64_t pairs, int ne, const MoeGroups& g, Launch s);
int moe_grouped_swiglu(const void* w_gu, const float* w_scale, const void* x, const MoeGroups& g,
                       int64_t pairs, int ne, int k, int64_t inter, int64_t hidden, void* act, GpuDType t,
                       Launch s);
int moe_grouped_down(const void* w_down, const float* w_scale, const void* act, const MoeGroups& g,
                     int64_t pairs, int ne, int64_t inter, int64_t hidden, float* y, GpuDType t, Launch s);
// out[t] = sum_s weights[t][s] * y[t * k + s] (+ shared[t]).
int moe_combine(const float* y, const float* weights, const float* shared, int64_t n, int k, int64_t hidden,
                float* out, Launch s);

}  // namespace hearth::cuda
