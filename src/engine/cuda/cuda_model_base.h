#pragma once
// CudaModelBase: what every CUDA architecture shares — the device and its stream, the step's metadata
// (token ids, positions, block tables, logit rows, prefill tiles) copied once per step to fixed device
// buffers, CUDA graphs of decode steps, the embedding / final norm / LM head / argmax, the paged KV pool
// sized from free memory, weight upload in any checkpoint format, and per-kernel profiling
// (HEARTH_CUDA_PROFILE=1). A family implements run_layers(): the transformer layers of one step.
#include <cuda_runtime.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/thread_pool.h"
#include "engine/cuda/cuda_util.h"
#include "engine/device_model.h"
#include "engine/model_weights.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/blas.h"
#include "kernels/cuda/cuda_ops.h"

namespace hearth {

// A linear weight on the device: bf16/f32 rows, or FP8 e4m3 rows with one f32 scale per row (quantized at
// load) or, kept as the checkpoint ships them (DeepSeek-V3's 128x128 blocks), one per row and 128 columns:
// scale [ceil(cols / 128)][rows] (block_scaled).
struct GpuWeight {
  DeviceBuffer data;
  DeviceBuffer scale;  // FP8 only
  bool fp8 = false;
  bool block_scaled = false;
  int64_t rows = 0, cols = 0;
  const float* scale_ptr() const { return fp8 ? scale.as<float>() : nullptr; }
};

class CudaModelBase : public DeviceModel {
 public:
  CudaModelBase(std::shared_ptr<const Checkpoint> ckpt, const DeviceModelOptions& options);
  ~CudaModelBase() override;

  int64_t kv_num_blocks() const override { return num_blocks_; }
  int64_t kv_block_size() const override { return opt_.block_size; }
  int64_t max_batch_tokens() const override { return opt_.max_batch_tokens; }
  int64_t max_seqs() const override { return opt_.max_seqs; }
  DeviceMemoryReport memory() const override {
    return {weight_bytes_, kv_.bytes(), activation_bytes_, total_mem_, device_name_};
  }
  Status forward(const ForwardBatch& batch, std::vector<float>& logits,
                 std::vector<DeviceToken>& tokens) final;

 protected:
  using GpuDType = cuda::GpuDType;
  static constexpr int64_t kMinPrefillTile = 16;  // shorter chunks decode token by token

  struct StepShape {
    int64_t n = 0;          // tokens (padded for graphs)
    int64_t n_dec = 0;      // tokens for the flash-decoding kernel
    int64_t num_tiles = 0;  // query tiles for the prefill kernel (0: every token decodes, no list)
    int64_t rows = 0;       // logit rows
    int64_t width = 0;      // block-table width
    cuda::AttentionShape attn;
  };
  // Device pointers of the step's metadata.
  struct StepInputs {
    const int32_t* tok = nullptr;
    const int32_t* pos = nullptr;
    const int32_t* seq_of = nullptr;
    const int32_t* rows = nullptr;
    const int32_t* table = nullptr;
    const int32_t* dec_list = nullptr;
    const int32_t* tiles = nullptr;
  };
  // What the last layer leaves for the final residual add (f32 delta + bias, both optional).
  struct Pending {
    const float* delta = nullptr;
    const float* bias = nullptr;
  };

  // The family's layers over x_ (f32 residual, embedded): leaves x_ + pending = the final residual.
  virtual Status run_layers(const StepShape& sh, const StepInputs& in, Pending& pending) = 0;
  // Whether every kernel of a step of this shape is one of hearth's own (no cuBLAS): then kernels may
  // start early under programmatic dependent launch.
  virtual bool own_kernels_only(const StepShape& sh) const = 0;
  // The launch of this step's kernels.
  cuda::Launch ks() const { return {stream_, pdl_step_}; }

  // Load steps, in order: init_device(), the family's weights (load_ends() among them) and its own
  // buffers (alloc()), then finish_load().
  Status init_device();
  Status load_ends(ModelWeights& w, ThreadPool& pool, const RopeTable& rope);
  // dtype_ from opt_.precision; kAuto: f32 when `probe` (a linear weight) is stored in f32, else bf16.
  void choose_dtype(const std::string& probe);
  Status alloc(DeviceBuffer& buf, uint64_t bytes, const char* what);
  // kv_token_elems: T elements one token occupies per layer; attention geometry for split planning:
  // query heads, KV heads (groups), and the width of a head's partial output.
  Status finish_load(int64_t kv_token_elems, int64_t attn_nh, int64_t attn_nkv, int64_t attn_hd);

  Status launch(int rc, const char* what) const;
  // y (f32) = x w^T: the GEMV for small bf16 batches, cuBLASLt otherwise (FP8 weights are dequantized to a
  // bf16 scratch matrix for it).
  Status gemm(const GpuWeight& w, const void* x, int64_t n, int64_t rows, int64_t k, float* y);
  // Whether the small-batch GEMV reads this weight (n <= 8 rows of x, bf16 activations, aligned k).
  bool gemv_ok(const GpuWeight& w, int64_t n, int64_t k) const {
    return dtype_ == GpuDType::kBF16 && n <= cuda::kGemvMaxRows && k % (w.fp8 ? 16 : 8) == 0;
  }
  void mark(const char* name);  // profiling: the time since the previous mark belongs to `name`
  void* kv_layer(int64_t l) const {
    return static_cast<char*>(kv_.ptr()) +
           static_cast<uint64_t>(l) * static_cast<uint64_t>(num_blocks_ * opt_.block_size * kv_token_elems_) *
               cuda::dtype_bytes(dtype_);
  }

  // Uploads `parts` as one T matrix: concatenated rows, or with `interleave` (two parts of equal shape)
  // row r of part p at row 2r + p (gate/up pairs for the fused SwiGLU).
  Status upload_matrices(std::initializer_list<WeightMatrix> parts, DeviceBuffer& out,
                         const std::string& what, ThreadPool& pool, bool interleave = false);
  // A linear weight: as upload_matrices, or quantized to FP8 per row when opt_.fp8_weights; FP8 checkpoint
  // weights (128x128 block scales) stay FP8 when computing in bf16 (upload_fp8_rows).
  //
  Status upload_weight(std::initializer_list<WeightMatrix> parts, GpuWeight& out, const std::string& what,
                       ThreadPool& pool, bool interleave = false);
  // Whether `parts` are FP8 checkpoint weights that load as FP8 (bf16 compute, native FP8 not disabled).
  bool native_fp8(std::initializer_list<WeightMatrix> parts) const;
  // FP8 parts (128x128 block scales) as they are into dst (rows x cols bytes), their scales expanded to
  // [ceil(cols / 128)][rows] floats into dst_scale; interleave as upload_matrices.
  Status upload_fp8_rows(void* dst, float* dst_scale, std::initializer_list<WeightMatrix> parts,
                         bool interleave);
  // The same into device memory already allocated (a slice of a stacked tensor: routed experts).
  Status upload_rows(void* dst, std::initializer_list<WeightMatrix> parts, ThreadPool& pool,
                     bool interleave = false);
  Status upload_interleaved_bias(ModelWeights& w, const std::string& a, const std::string& b, int64_t n,
                                 DeviceBuffer& out);
  Status upload_f32(const float* data, size_t n, DeviceBuffer& out, const std::string& what);
  Status upload_vector(ModelWeights& w, const std::string& name, int64_t n, DeviceBuffer& out);

  std::shared_ptr<const Checkpoint> ckpt_;
  ModelSpec spec_;
  DeviceModelOptions opt_;
  std::string device_name_;
  int64_t sms_ = 1;
  uint64_t total_mem_ = 0;
  cudaStream_t stream_ = nullptr;
  GpuDType dtype_ = GpuDType::kBF16;
  int64_t h_ = 0, vocab_ = 0;
  float scale_ = 1.0f;  // attention softmax scale
  cuda::RopeParams rope_;
  bool prefill_kernel_ = false;  // the family's attention has a tensor-core prefill kernel
  int attn_cluster_ = 0;         // the family's decode attention may run clustered, up to this size
  bool pdl_step_ = false;        // this step's kernels may overlap (own_kernels_only)
  std::unique_ptr<cuda::BlasLt> blas_;
  // Step buffers every family uses.
  DeviceBuffer x_, delta_, xn_, partial_;
  uint64_t weight_bytes_ = 0;
  uint64_t activation_bytes_ = 0;

 private:
  struct MetaLayout {  // offsets in int32 units inside the metadata buffers
    int64_t pos = 0, seq_of = 0, rows = 0, dec_list = 0, tiles = 0, table = 0, total = 0;
  };
  void plan_attention(StepShape& sh, int64_t ctx_cap) const;
  Status run_body(const StepShape& sh);
  Status run_graph(const StepShape& sh);
  Status allocate_kv();
  void collect_profile(int64_t n);
  void print_profile() const;

  DeviceBuffer embed_, final_norm_, inv_freq_;
  GpuWeight lm_head_;
  DeviceBuffer fp8_scratch_;  // bf16 copy of one FP8 weight for cuBLASLt without FP8 algorithms
  int64_t fp8_scratch_elems_ = 0;
  DeviceBuffer act_fp8_, act_scale_;  // activations quantized for the FP8 GEMMs
  int64_t fp8_max_cols_ = 0;
  bool fp8_gemm_ = std::getenv("HEARTH_CUDA_NO_FP8_GEMM") == nullptr;  // cuBLASLt FP8 (else bf16 copies)
  bool fp8_fallback_logged_ = false;
  bool native_fp8_ = std::getenv("HEARTH_CUDA_DEQUANT_FP8") == nullptr;  // keep FP8 checkpoints in FP8
  DeviceBuffer kv_;
  int64_t kv_token_elems_ = 0;
  int64_t num_blocks_ = 0;
  int64_t table_width_max_ = 1;
  int64_t partial_token_splits_ = 1;
  int64_t attn_nh_ = 1, attn_nkv_ = 1, attn_hd_ = 1;
  MetaLayout meta_;
  DeviceBuffer xf_, logits_, ids_, lps_, sample_rows_, top_, masks_, dev_meta_, workspace_;
  PinnedBuffer host_meta_, host_out_, host_sample_;
  std::map<std::pair<int64_t, int64_t>, cudaGraphExec_t> graphs_;
  bool profile_ = false;
  std::vector<cudaEvent_t> events_;
  std::vector<std::pair<const char*, cudaEvent_t>> marks_;
  std::map<std::string, std::pair<int64_t, double>> profile_ms_;
};

}  // namespace hearth
