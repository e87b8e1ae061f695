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

enum class GpuDType : uint8_t { kF32 = 0, kBF16 = 1 };

inline int dtype_bytes(GpuDType t) { return t == GpuDType::kF32 ? 4 : 2; }

// x[t] = embed[tok[t]] (f32 out), embed [vocab][hidden] in `et`.
int embed_rows(const void* embed, GpuDType et, const int32_t* tok, int64_t n, int64_t hidden, float* x,
               Stream s);

// For each row t < n: x[t] += delta[t] + bias (delta/bias optional, f32), then
// out[t] = rmsnorm(x[t]) * weight (f32 weight) written in `ot`. With `rows` (device, n entries), row t
// of the output is the norm of row rows[t] of x and x is not modified (the final norm of logit rows).
int add_rmsnorm(float* x, const float* delta, const float* bias, const float* weight, float eps,
                int64_t n, int64_t hidden, void* out, GpuDType ot, const int32_t* rows, Stream s);

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
                   GpuDType kvt, Stream s);

// gu: n rows of 2 * inter f32 with gate and up interleaved (column 2i = gate_i, 2i + 1 = up_i: the
// engine stores the fused gate/up weight with interleaved rows) (+ bias, interleaved the same way,
// optional); out[t][i] = silu(gate_i) * up_i, written in `ot`.
int silu_mul(const float* gu, const float* bias, int64_t n, int64_t inter, void* out, GpuDType ot, Stream s);

// Paged attention (flash-decoding): token t's query heads (f32, q[t][nh * hd]) attend to positions
// [0, pos[t]] of its sequence. Each of `splits` parts covers `split_len` positions; with splits > 1 the
// parts go to `partial` (f32, n * nh * (hd + 2) * splits) and a combine pass writes out. out: tokens x
// nh * hd in `ot`. hd <= 256, a multiple of 8 (bf16 KV) or 4 (f32 KV). With `list` (device, n entries)
// only the listed tokens are computed; without it tokens 0..n-1.
struct AttentionShape {
  int nh = 0, nkv = 0, hd = 0;
  float scale = 1.0f;
  int block_size = 16;
  int table_width = 0;
  int splits = 1;
  int split_len = 0;
};
int paged_attention(const float* q, const void* kv_layer, GpuDType kvt, const int32_t* pos,
                    const int32_t* seq_of, const int32_t* block_table, const int32_t* list, int64_t n,
                    const AttentionShape& shape, float* partial, void* out, GpuDType ot, Stream s);

// Prefill attention on tensor cores (bf16 KV and output, head_dim 16/32/64/128): each query tile is up to
// kPrefillTile consecutive tokens of one sequence (tiles: num_tiles x {first token, count}); the tile's
// tokens attend causally to [0, their position] over the paged cache (prefix-cached blocks included).
constexpr int kPrefillTile = 64;
bool prefill_attention_supported(int hd);
int prefill_attention(const float* q, const void* kv_layer, const int32_t* pos, const int32_t* seq_of,
                      const int32_t* block_table, const int32_t* tiles, int64_t num_tiles,
                      const AttentionShape& shape, void* out, Stream s);

// Small-batch matrix-vector products for bf16 weights: y[t][r] = sum_k w[r][k] x[t][k] for n <= 8 rows of
// x (bf16), y f32 with row stride `ldy`. Needs k % 8 == 0 and 16-byte aligned rows.
constexpr int kGemvMaxRows = 8;
int gemv_bf16(const void* w, const void* x, int64_t n, int64_t rows, int64_t k, float* y, int64_t ldy,
              Stream s);
// The gate/up GEMV with SiLU(gate) * up fused: w has 2 * inter rows, gate and up interleaved; act gets
// n x inter bf16.
int gemv_bf16_swiglu(const void* w, const void* x, int64_t n, int64_t inter, int64_t k, void* act, Stream s);
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
int gemv_bf16_qkv_rope(const void* w, const void* x, int64_t n, int64_t k, const QkvRopeEpilogue& e, Stream s);

// Per logit row r < n: argmax (lowest id on ties) and its log-softmax value. `scratch`: n * 192 floats.
int argmax_logprob(const float* logits, int64_t n, int64_t vocab, int32_t* ids, float* logprobs, float* scratch,
                   Stream s);

// Converts n f32 values to `dt` on the device (weights converted at load).
int convert_f32(const float* in, int64_t n, void* out, GpuDType dt, Stream s);

}  // namespace hearth::cuda
