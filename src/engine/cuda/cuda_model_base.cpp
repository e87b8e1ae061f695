#include "engine/cuda/cuda_model_base.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/half.h"
#include "core/log.h"
#include "kernels/cpu/matmul.h"
#include "model/fp8_block.h"

namespace hearth {
namespace {

// Token buckets of captured decode graphs.
constexpr int64_t kGraphBuckets[] = {1,  2,   4,   8,   12,  16,  24,  32,  48,  64,
                                     96, 128, 160, 192, 224, 256, 320, 384, 448, 512};

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

}  // namespace

CudaModelBase::CudaModelBase(std::shared_ptr<const Checkpoint> ckpt, const DeviceModelOptions& options)
    : ckpt_(std::move(ckpt)), spec_(ckpt_->spec()), opt_(options) {}

CudaModelBase::~CudaModelBase() {
  print_profile();
  for (cudaEvent_t e : events_) cudaEventDestroy(e);
  for (auto& [k, g] : graphs_) cudaGraphExecDestroy(g);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

Status CudaModelBase::init_device() {
  int count = 0;
  if (const cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess || count == 0) {
    cudaGetLastError();
    return make_error(
        ErrorCode::kUnsupported,
        "no usable CUDA device ({}): check the NVIDIA driver with nvidia-smi, or run with --device cpu",
        e != cudaSuccess ? cudaGetErrorString(e) : "none found");
  }
  if (opt_.device < 0 || opt_.device >= count) {
    return make_error(ErrorCode::kInvalidArgument, "--device cuda:{}: this machine has {} CUDA device(s)",
                      opt_.device, count);
  }
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
  h_ = spec_.hidden_size;
  vocab_ = spec_.vocab_size;
  return Status::ok();
}

Status CudaModelBase::load_ends(ModelWeights& w, ThreadPool& pool, const RopeTable& rope) {
  HEARTH_ASSIGN_OR_RETURN(WeightMatrix embed, w.embedding("model.embed_tokens.weight", vocab_, h_));
  HEARTH_RETURN_IF_ERROR(upload_matrices({embed}, embed_, "embedding", pool));
  if (spec_.tie_word_embeddings && ckpt_->find("lm_head.weight") == nullptr) {
    HEARTH_RETURN_IF_ERROR(
        upload_weight({embed}, lm_head_, "lm_head (tied)", pool));  // its own copy: may be FP8
  } else {
    HEARTH_ASSIGN_OR_RETURN(WeightMatrix lm, w.matrix("lm_head.weight", vocab_, h_));
    HEARTH_RETURN_IF_ERROR(upload_weight({lm}, lm_head_, "lm_head", pool));
  }
  HEARTH_RETURN_IF_ERROR(upload_vector(w, "model.norm.weight", h_, final_norm_));
  HEARTH_RETURN_IF_ERROR(upload_f32(rope.inv_freq.data(), rope.inv_freq.size(), inv_freq_, "rope"));
  rope_.inv_freq = inv_freq_.as<float>();
  rope_.rot_dim = static_cast<int>(rope.rot_dim);
  rope_.attention_factor = rope.attention_factor;
  rope_.interleave = rope.interleave;
  scale_ = attention_softmax_scale(spec_);
  return Status::ok();
}

void CudaModelBase::choose_dtype(const std::string& probe) {
  switch (opt_.precision) {
    case GpuPrecision::kF32: dtype_ = GpuDType::kF32; return;
    case GpuPrecision::kBF16: dtype_ = GpuDType::kBF16; return;
    case GpuPrecision::kAuto: break;
  }
  const TensorView* t = ckpt_->find(probe);
  dtype_ = t != nullptr && t->dtype == DType::kF32 ? GpuDType::kF32 : GpuDType::kBF16;
}

Status CudaModelBase::alloc(DeviceBuffer& buf, uint64_t bytes, const char* what) {
  HEARTH_RETURN_IF_ERROR(buf.allocate(bytes, what));
  activation_bytes_ += bytes;
  return Status::ok();
}

Status CudaModelBase::finish_load(int64_t kv_token_elems, int64_t attn_nh, int64_t attn_nkv,
                                  int64_t attn_hd) {
  kv_token_elems_ = kv_token_elems;
  attn_nh_ = attn_nh;
  attn_nkv_ = attn_nkv;
  attn_hd_ = attn_hd;
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
  const int64_t partial_floats = std::max(partial_token_splits_ * attn_nh_ * (attn_hd_ + 2), S * 192);
  if (std::getenv("HEARTH_CUDA_NO_PREFILL_KERNEL") != nullptr) prefill_kernel_ = false;
  HEARTH_RETURN_IF_ERROR(alloc(x_, static_cast<uint64_t>(T * h_ * 4), "residual"));
  HEARTH_RETURN_IF_ERROR(alloc(delta_, static_cast<uint64_t>(T * h_ * 4), "residual delta"));
  HEARTH_RETURN_IF_ERROR(alloc(xn_, static_cast<uint64_t>(T * h_ * tb), "normed"));
  HEARTH_RETURN_IF_ERROR(alloc(partial_, static_cast<uint64_t>(partial_floats * 4), "attention partials"));
  HEARTH_RETURN_IF_ERROR(alloc(xf_, static_cast<uint64_t>(S * h_ * tb), "final norm"));
  HEARTH_RETURN_IF_ERROR(alloc(logits_, static_cast<uint64_t>(S * vocab_ * 4), "logits"));
  HEARTH_RETURN_IF_ERROR(alloc(ids_, static_cast<uint64_t>(S * 4), "ids"));
  HEARTH_RETURN_IF_ERROR(alloc(lps_, static_cast<uint64_t>(S * 4), "logprobs"));
  HEARTH_RETURN_IF_ERROR(
      alloc(sample_rows_, static_cast<uint64_t>(S) * sizeof(cuda::SampleRow), "sampling rows"));
  HEARTH_RETURN_IF_ERROR(alloc(masks_, static_cast<uint64_t>(S * vocab_), "guided-decoding masks"));
  HEARTH_RETURN_IF_ERROR(alloc(
      top_, static_cast<uint64_t>(S * cuda::kMaxTopLogprobs) * sizeof(cuda::LogprobEntry), "top logprobs"));
  HEARTH_RETURN_IF_ERROR(alloc(dev_meta_, static_cast<uint64_t>(meta_.total * 4), "metadata"));
  HEARTH_RETURN_IF_ERROR(alloc(workspace_, 64ull << 20, "cuBLASLt workspace"));
  if (fp8_scratch_elems_ > 0) {
    HEARTH_RETURN_IF_ERROR(
        alloc(fp8_scratch_, static_cast<uint64_t>(fp8_scratch_elems_) * 2, "FP8 dequant scratch"));
    // Activations quantized for the FP8 GEMMs: T x max_k e4m3 and one scale per token and 128 columns.
    HEARTH_RETURN_IF_ERROR(alloc(act_fp8_, static_cast<uint64_t>(T * fp8_max_cols_), "FP8 activations"));
    HEARTH_RETURN_IF_ERROR(alloc(act_scale_, static_cast<uint64_t>(T * ((fp8_max_cols_ + 127) / 128) * 4),
                                 "FP8 activation scales"));
  }
  HEARTH_RETURN_IF_ERROR(host_meta_.allocate(static_cast<uint64_t>(meta_.total * 4), "metadata staging"));
  HEARTH_RETURN_IF_ERROR(host_out_.allocate(
      static_cast<uint64_t>(S) * (8 + cuda::kMaxTopLogprobs * sizeof(cuda::LogprobEntry)), "output staging"));
  HEARTH_RETURN_IF_ERROR(
      host_sample_.allocate(static_cast<uint64_t>(S) * sizeof(cuda::SampleRow), "sampling rows staging"));
  HEARTH_ASSIGN_OR_RETURN(blas_, cuda::BlasLt::create(workspace_.ptr(), workspace_.bytes()));
  HEARTH_RETURN_IF_ERROR(allocate_kv());
  HEARTH_LOG_INFO("cuda: weights {:.2f} GiB, activations {:.2f} GiB, KV {:.2f} GiB ({} blocks x {} tokens)",
                  static_cast<double>(weight_bytes_) / (1 << 30),
                  static_cast<double>(activation_bytes_) / (1 << 30),
                  static_cast<double>(kv_.bytes()) / (1 << 30), num_blocks_, opt_.block_size);
  return Status::ok();
}

Status CudaModelBase::forward(const ForwardBatch& batch, std::vector<float>& logits,
                              std::vector<DeviceToken>& tokens) {
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

  // Rows sampled here beyond the argmax (temperature, top logprobs): one block per row after the step.
  cuda::SampleRow* srows = host_sample_.as<cuda::SampleRow>();
  int nsample = 0;
  bool want_top = false;
  r = 0;
  for (const SequenceChunk& c : batch.chunks) {
    if (!c.want_logits) continue;
    const DeviceSampling& d = c.sampling;
    if (c.device_sample && (d.temperature > 0.0f || d.top_logprobs > 0 || d.allowed != nullptr)) {
      cuda::SampleRow& sr = srows[nsample++];
      sr = {static_cast<int32_t>(r),
            d.top_k,
            std::clamp(d.top_logprobs, 0, cuda::kMaxTopLogprobs),
            d.temperature,
            d.top_p,
            d.min_p,
            d.seed,
            nullptr};
      if (d.allowed != nullptr) {
        uint8_t* mask = masks_.as<uint8_t>() + r * vocab_;
        HEARTH_CUDA(
            cudaMemcpyAsync(mask, d.allowed, static_cast<size_t>(vocab_), cudaMemcpyHostToDevice, stream_),
            "mask copy");
        sr.allowed = mask;
      }
      want_top = want_top || d.top_logprobs > 0;
    }
    ++r;
  }
  if (nsample > 0) {
    HEARTH_CUDA(
        cudaMemcpyAsync(sample_rows_.ptr(), srows, static_cast<size_t>(nsample) * sizeof(cuda::SampleRow),
                        cudaMemcpyHostToDevice, stream_),
        "sampling rows copy");
    HEARTH_RETURN_IF_ERROR(
        launch(cuda::sample_rows(logits_.as<float>(), vocab_, sample_rows_.as<cuda::SampleRow>(), nsample,
                                 ids_.as<int32_t>(), lps_.as<float>(), top_.as<cuda::LogprobEntry>(),
                                 {stream_, false}),
               "sample"));
    mark("sample");
  }

  // Outputs: every row's token; full logits only for rows the host samples.
  HEARTH_CUDA(cudaMemcpyAsync(host_out_.ptr(), ids_.ptr(), static_cast<size_t>(rows) * 4,
                              cudaMemcpyDeviceToHost, stream_),
              "token copy");
  HEARTH_CUDA(cudaMemcpyAsync(host_out_.as<int32_t>() + opt_.max_seqs, lps_.ptr(),
                              static_cast<size_t>(rows) * 4, cudaMemcpyDeviceToHost, stream_),
              "logprob copy");
  auto* host_top = reinterpret_cast<cuda::LogprobEntry*>(host_out_.as<int32_t>() + 2 * opt_.max_seqs);
  if (want_top) {
    HEARTH_CUDA(
        cudaMemcpyAsync(host_top, top_.ptr(),
                        static_cast<size_t>(rows * cuda::kMaxTopLogprobs) * sizeof(cuda::LogprobEntry),
                        cudaMemcpyDeviceToHost, stream_),
        "top logprobs copy");
  }
  logits.resize(static_cast<size_t>(rows * vocab_));
  r = 0;
  for (const SequenceChunk& c : batch.chunks) {
    if (!c.want_logits) continue;
    if (!c.device_sample) {
      HEARTH_CUDA(cudaMemcpyAsync(logits.data() + r * vocab_, logits_.as<float>() + r * vocab_,
                                  static_cast<size_t>(vocab_) * 4, cudaMemcpyDeviceToHost, stream_),
                  "logits copy");
    }
    ++r;
  }
  HEARTH_CUDA(cudaStreamSynchronize(stream_), "forward");
  collect_profile(sh.n);
  tokens.resize(static_cast<size_t>(rows));
  const int32_t* ids = host_out_.as<int32_t>();
  const float* lps = reinterpret_cast<const float*>(ids + opt_.max_seqs);
  r = 0;
  for (const SequenceChunk& c : batch.chunks) {
    if (!c.want_logits) continue;
    DeviceToken& t = tokens[static_cast<size_t>(r)];
    t.id = ids[r];
    t.logprob = lps[r];
    t.num_top = 0;
    if (c.device_sample && c.sampling.top_logprobs > 0) {
      t.num_top = static_cast<int32_t>(
          std::min<int64_t>({c.sampling.top_logprobs, cuda::kMaxTopLogprobs, DeviceToken::kMaxTop, vocab_}));
      const cuda::LogprobEntry* e = host_top + r * cuda::kMaxTopLogprobs;
      for (int32_t k = 0; k < t.num_top; ++k) t.top[static_cast<size_t>(k)] = {e[k].id, e[k].logprob};
    }
    ++r;
  }
  return Status::ok();
}

void CudaModelBase::plan_attention(StepShape& sh, int64_t ctx_cap) const {
  cuda::AttentionShape& a = sh.attn;
  a.nh = static_cast<int>(attn_nh_);
  a.nkv = static_cast<int>(attn_nkv_);
  a.hd = static_cast<int>(attn_hd_);
  a.scale = scale_;
  a.block_size = static_cast<int>(opt_.block_size);
  a.table_width = static_cast<int>(sh.width);
  const int64_t group = attn_nh_ / attn_nkv_;
  const int64_t nd = std::max<int64_t>(1, sh.n_dec);
  const int64_t ctas = nd * attn_nkv_ * ((group + 7) / 8);
  int64_t splits = std::max<int64_t>(1, (2 * sms_ + ctas - 1) / ctas);
  splits = std::min(splits, std::max<int64_t>(1, (ctx_cap + 31) / 32));
  splits = std::min(splits, partial_token_splits_ / nd);
  splits = std::max<int64_t>(1, splits);
  int64_t len = (ctx_cap + splits - 1) / splits;
  len = (len + 31) / 32 * 32;
  a.splits = static_cast<int>(splits);
  a.split_len = static_cast<int>(len);
  a.cluster = 0;
  // Few CTAs and short contexts: the splits become one cluster that divides each token's actual context and
  // merges in shared memory (no combine launch). Worth it while a CTA has at most kClusterTiles tiles of the
  // planned capacity; longer contexts keep the wider split + combine.
  constexpr int64_t kClusterTiles = 8;
  if (attn_cluster_ > 1 && splits > 1) {
    const int64_t c = std::min<int64_t>(attn_cluster_, splits);
    if (ctx_cap <= c * 32 * kClusterTiles) {
      a.cluster = static_cast<int>(c);
      a.splits = static_cast<int>(c);
    }
  }
}

Status CudaModelBase::launch(int rc, const char* what) const {
  if (rc == 0) return Status::ok();
  return make_error(ErrorCode::kInternal, "CUDA kernel {} failed: {}", what,
                    cudaGetErrorString(static_cast<cudaError_t>(rc)));
}

Status CudaModelBase::gemm(const GpuWeight& w, const void* x, int64_t n, int64_t rows, int64_t k, float* y) {
  if (gemv_ok(w, n, k))
    return launch(cuda::gemv(w.data.ptr(), w.scale_ptr(), x, n, rows, k, y, rows, ks(), w.block_scaled),
                  "gemv");
  if (w.fp8) {
    // Native FP8 on tensor cores: tokens quantized per row (or per row and 128 columns for block-scaled
    // weights), products scaled by both operands' scales.
    if (fp8_gemm_ && k % 16 == 0) {
      HEARTH_RETURN_IF_ERROR(launch(
          cuda::quantize_fp8(x, n, k, w.block_scaled ? 128 : k, act_fp8_.ptr(), act_scale_.as<float>(), ks()),
          "quantize_fp8"));
      const Status st = blas_->gemm_fp8(
          w.data.ptr(), w.scale_ptr(), act_fp8_.ptr(), act_scale_.as<float>(),
          w.block_scaled ? cuda::BlasLt::Fp8Scaling::kBlock1x128 : cuda::BlasLt::Fp8Scaling::kRowwise, n,
          rows, k, y, rows, stream_);
      if (st.is_ok() || st.code() != ErrorCode::kUnsupported) return st;
      if (!fp8_fallback_logged_) {  // this shape (or every shape) goes through a bf16 copy of the weight
        HEARTH_LOG_WARN("cuda: {} ({} x {} x {}); such FP8 GEMMs dequantize the weight to bf16 (slower)",
                        st.message(), n, rows, k);
        fp8_fallback_logged_ = true;
      }
    }
    HEARTH_RETURN_IF_ERROR(launch(cuda::dequant_fp8_rows(w.data.ptr(), w.scale_ptr(), rows, k,
                                                         fp8_scratch_.ptr(), ks(), w.block_scaled),
                                  "dequant_fp8"));
    return blas_->gemm(fp8_scratch_.ptr(), x, dtype_, n, rows, k, y, rows, stream_);
  }
  return blas_->gemm(w.data.ptr(), x, dtype_, n, rows, k, y, rows, stream_);
}

Status CudaModelBase::upload_weight(std::initializer_list<WeightMatrix> parts, GpuWeight& out,
                                    const std::string& what, ThreadPool& pool, bool interleave) {
  int64_t rows = 0;
  const int64_t cols = parts.begin()->cols;
  for (const WeightMatrix& m : parts) rows += m.rows;
  out.rows = rows;
  out.cols = cols;
  if (native_fp8(parts)) {
    out.fp8 = true;
    out.block_scaled = true;
    const int64_t kb = (cols + 127) / 128;
    HEARTH_RETURN_IF_ERROR(out.data.allocate(static_cast<uint64_t>(rows * cols), what.c_str()));
    HEARTH_RETURN_IF_ERROR(out.scale.allocate(static_cast<uint64_t>(kb * rows) * 4, what.c_str()));
    weight_bytes_ += out.data.bytes() + out.scale.bytes();
    fp8_scratch_elems_ = std::max(fp8_scratch_elems_, rows * cols);
    fp8_max_cols_ = std::max(fp8_max_cols_, cols);
    return upload_fp8_rows(out.data.ptr(), out.scale.as<float>(), parts, interleave);
  }
  out.fp8 = opt_.fp8_weights && dtype_ == GpuDType::kBF16;
  if (!out.fp8) return upload_matrices(parts, out.data, what, pool, interleave);
  HEARTH_RETURN_IF_ERROR(out.data.allocate(static_cast<uint64_t>(rows * cols), what.c_str()));
  HEARTH_RETURN_IF_ERROR(out.scale.allocate(static_cast<uint64_t>(rows) * 4, what.c_str()));
  weight_bytes_ += out.data.bytes() + out.scale.bytes();
  fp8_scratch_elems_ = std::max(fp8_scratch_elems_, rows * cols);
  fp8_max_cols_ = std::max(fp8_max_cols_, cols);
  const int64_t stride = interleave ? static_cast<int64_t>(parts.size()) : 1;
  int64_t first = 0;
  const int64_t slab = std::max<int64_t>(1, (int64_t{16} << 20) / (cols * 4));
  std::vector<float> f32;
  std::vector<uint8_t> q;
  std::vector<float> sc;
  for (const WeightMatrix& m : parts) {
    for (int64_t a = 0; a < m.rows; a += slab) {
      const int64_t cnt = std::min(slab, m.rows - a);
      f32.resize(static_cast<size_t>(cnt * cols));
      q.resize(f32.size());
      sc.resize(static_cast<size_t>(cnt));
      // Decode (any format the CPU reads), then e4m3 with scale = amax / 448 per row.
      pool.parallel_for(cnt, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          float* r = f32.data() + i * cols;
          decode_row(m, a + i, r);
          float amax = 0.0f;
          for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(r[c]));
          const float s = amax > 0.0f ? amax / kFp8E4M3Max : 1.0f;
          sc[static_cast<size_t>(i)] = s;
          for (int64_t c = 0; c < cols; ++c)
            q[static_cast<size_t>(i * cols + c)] = fp8_e4m3_from_float(r[c] / s);
        }
      });
      const size_t dst_row = static_cast<size_t>(first + a * stride);
      HEARTH_CUDA(cudaMemcpy2D(static_cast<uint8_t*>(out.data.ptr()) + dst_row * static_cast<size_t>(cols),
                               static_cast<size_t>(cols * stride), q.data(), static_cast<size_t>(cols),
                               static_cast<size_t>(cols), static_cast<size_t>(cnt), cudaMemcpyHostToDevice),
                  "weight upload");
      HEARTH_CUDA(cudaMemcpy2D(out.scale.as<float>() + dst_row, static_cast<size_t>(4 * stride), sc.data(), 4,
                               4, static_cast<size_t>(cnt), cudaMemcpyHostToDevice),
                  "scale upload");
    }
    first += interleave ? 1 : m.rows;
  }
  return Status::ok();
}

// The whole step on stream_, reading metadata from dev_meta_: capturable.
Status CudaModelBase::run_body(const StepShape& sh) {
  StepInputs in;
  in.tok = dev_meta_.as<int32_t>();
  in.pos = in.tok + meta_.pos;
  in.seq_of = in.tok + meta_.seq_of;
  in.rows = in.tok + meta_.rows;
  in.table = in.tok + meta_.table;
  in.dec_list = in.tok + meta_.dec_list;
  in.tiles = in.tok + meta_.tiles;
  const int64_t n = sh.n;
  const float eps = static_cast<float>(spec_.rms_norm_eps);
  float* x = x_.as<float>();
  pdl_step_ = own_kernels_only(sh);
  mark(nullptr);
  HEARTH_RETURN_IF_ERROR(launch(cuda::embed_rows(embed_.ptr(), dtype_, in.tok, n, h_, x, ks()), "embed"));
  mark("embed");
  Pending pending;
  HEARTH_RETURN_IF_ERROR(run_layers(sh, in, pending));
  // The last residual add (all rows) unless the layers added it already, then the final norm of the
  // logit rows only.
  if (pending.delta != nullptr) {
    HEARTH_RETURN_IF_ERROR(launch(cuda::add_rmsnorm(x, pending.delta, pending.bias, final_norm_.as<float>(),
                                                    eps, n, h_, xn_.ptr(), dtype_, nullptr, ks()),
                                  "add_rmsnorm"));
    mark("final_add_norm");
  }
  HEARTH_RETURN_IF_ERROR(launch(cuda::add_rmsnorm(x, nullptr, nullptr, final_norm_.as<float>(), eps, sh.rows,
                                                  h_, xf_.ptr(), dtype_, in.rows, ks()),
                                "final_norm"));
  mark("final_norm_rows");
  HEARTH_RETURN_IF_ERROR(gemm(lm_head_, xf_.ptr(), sh.rows, vocab_, h_, logits_.as<float>()));
  mark("lm_head");
  HEARTH_RETURN_IF_ERROR(launch(cuda::argmax_logprob(logits_.as<float>(), sh.rows, vocab_, ids_.as<int32_t>(),
                                                     lps_.as<float>(), partial_.as<float>(), ks()),
                                "argmax"));
  mark("argmax");
  return Status::ok();
}

Status CudaModelBase::run_graph(const StepShape& sh) {
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
void CudaModelBase::mark(const char* name) {
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

void CudaModelBase::collect_profile(int64_t n) {
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

void CudaModelBase::print_profile() const {
  if (!profile_ || profile_ms_.empty()) return;
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [k, v] : profile_ms_)
    rows.emplace_back(v.second, fmt::format("{:<28}{:>10}{:>12.3f}{:>12.2f}", k, v.first, v.second,
                                            1e3 * v.second / static_cast<double>(v.first)));
  std::sort(rows.rbegin(), rows.rend());
  std::fprintf(stderr, "cuda profile: %-21s%10s%12s%12s\n", "kernel", "calls", "total ms", "mean us");
  for (const auto& r : rows) std::fprintf(stderr, "cuda profile: %s\n", r.second.c_str());
}

Status CudaModelBase::allocate_kv() {
  const uint64_t block_bytes = static_cast<uint64_t>(spec_.num_hidden_layers * opt_.block_size *
                                                     kv_token_elems_ * cuda::dtype_bytes(dtype_));
  int64_t blocks = opt_.num_blocks;
  if (blocks <= 0) {
    size_t free = 0, total = 0;
    HEARTH_CUDA(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
    const double allowed = opt_.gpu_memory_utilization * static_cast<double>(total);
    const double used = static_cast<double>(total - free);
    const double budget = allowed - used;
    blocks = budget > 0 ? static_cast<int64_t>(budget / static_cast<double>(block_bytes)) : 0;
    if (blocks < 1) {
      return make_error(
          ErrorCode::kResourceExhausted,
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

bool CudaModelBase::native_fp8(std::initializer_list<WeightMatrix> parts) const {
  if (!native_fp8_ || dtype_ != GpuDType::kBF16) return false;
  for (const WeightMatrix& m : parts) {
    if (m.dtype != DType::kF8_E4M3 || m.block_scale == nullptr || m.block_rows != 128 ||
        m.block_cols != 128 || m.cols % 16 != 0 || m.cols != parts.begin()->cols ||
        m.row_bytes != static_cast<uint64_t>(m.cols))
      return false;
  }
  return true;
}

Status CudaModelBase::upload_fp8_rows(void* dst, float* dst_scale, std::initializer_list<WeightMatrix> parts,
                                      bool interleave) {
  int64_t rows = 0;
  for (const WeightMatrix& m : parts) rows += m.rows;
  const int64_t cols = parts.begin()->cols;
  const int64_t kb = (cols + 127) / 128;
  const int64_t stride = interleave ? static_cast<int64_t>(parts.size()) : 1;
  std::vector<float> scale(static_cast<size_t>(kb * rows));
  int64_t first = 0;  // destination row of the part's row 0
  for (const WeightMatrix& m : parts) {
    HEARTH_CUDA(cudaMemcpy2D(static_cast<uint8_t*>(dst) + static_cast<size_t>(first * cols),
                             static_cast<size_t>(cols * stride), m.data, m.row_bytes,
                             static_cast<size_t>(cols), static_cast<size_t>(m.rows), cudaMemcpyHostToDevice),
                "FP8 weight upload");
    // The checkpoint's [ceil(rows / 128)][scale_cols] block grid, one entry per destination row and block.
    for (int64_t r = 0; r < m.rows; ++r) {
      const float* src = m.block_scale + (r / 128) * m.scale_cols;
      const int64_t d = first + r * stride;
      for (int64_t b = 0; b < kb; ++b) scale[static_cast<size_t>(b * rows + d)] = src[b];
    }
    first += interleave ? 1 : m.rows;
  }
  HEARTH_CUDA(cudaMemcpy(dst_scale, scale.data(), scale.size() * 4, cudaMemcpyHostToDevice),
              "FP8 scale upload");
  return Status::ok();
}

Status CudaModelBase::upload_matrices(std::initializer_list<WeightMatrix> parts, DeviceBuffer& out,
                                      const std::string& what, ThreadPool& pool, bool interleave) {
  int64_t rows = 0;
  for (const WeightMatrix& m : parts) rows += m.rows;
  const uint64_t bytes = static_cast<uint64_t>(rows * parts.begin()->cols * cuda::dtype_bytes(dtype_));
  HEARTH_RETURN_IF_ERROR(out.allocate(bytes, what.c_str()));
  weight_bytes_ += bytes;
  return upload_rows(out.ptr(), parts, pool, interleave);
}

Status CudaModelBase::upload_rows(void* dst_base, std::initializer_list<WeightMatrix> parts, ThreadPool& pool,
                                  bool interleave) {
  const int64_t cols = parts.begin()->cols;
  const int64_t tb = cuda::dtype_bytes(dtype_);
  const size_t row_bytes = static_cast<size_t>(cols * tb);
  const int64_t stride = interleave ? static_cast<int64_t>(parts.size()) : 1;
  int64_t first = 0;  // destination row of the part's row 0
  for (const WeightMatrix& m : parts) {
    // Rows a..a+cnt of m go to destination rows (first + (a + i) * stride).
    auto put = [&](int64_t a, int64_t cnt, const void* src, size_t src_pitch) -> Status {
      char* dst = static_cast<char*>(dst_base) + static_cast<size_t>(first + a * stride) * row_bytes;
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

Status CudaModelBase::upload_interleaved_bias(ModelWeights& w, const std::string& a, const std::string& b,
                                              int64_t n, DeviceBuffer& out) {
  HEARTH_ASSIGN_OR_RETURN(const float* va, w.vector(a, n));
  HEARTH_ASSIGN_OR_RETURN(const float* vb, w.vector(b, n));
  std::vector<float> all(static_cast<size_t>(2 * n));
  for (int64_t i = 0; i < n; ++i) {
    all[static_cast<size_t>(2 * i)] = va[i];
    all[static_cast<size_t>(2 * i + 1)] = vb[i];
  }
  return upload_f32(all.data(), all.size(), out, a);
}

Status CudaModelBase::upload_f32(const float* data, size_t n, DeviceBuffer& out, const std::string& what) {
  HEARTH_RETURN_IF_ERROR(out.allocate(n * 4, what.c_str()));
  weight_bytes_ += n * 4;
  HEARTH_CUDA(cudaMemcpy(out.ptr(), data, n * 4, cudaMemcpyHostToDevice), "vector upload");
  return Status::ok();
}

Status CudaModelBase::upload_vector(ModelWeights& w, const std::string& name, int64_t n, DeviceBuffer& out) {
  HEARTH_ASSIGN_OR_RETURN(const float* v, w.vector(name, n));
  return upload_f32(v, static_cast<size_t>(n), out, name);
}

}  // namespace hearth
