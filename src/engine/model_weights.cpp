#include "engine/model_weights.h"

#include <cstring>

#include <fmt/format.h>

#include "core/half.h"
#include "core/mapped_file.h"
#include "kernels/cpu/matmul.h"
#include "model/fp8_block.h"
#include "model/quant.h"

namespace hearth {

ModelWeights::ModelWeights(std::shared_ptr<const Checkpoint> checkpoint, WeightLoadOptions options,
                           ThreadPool* pool)
    : checkpoint_(std::move(checkpoint)), options_(options), pool_(pool) {}

Result<WeightMatrix> ModelWeights::view(const TensorView& t, int64_t rows, int64_t cols,
                                        std::string_view name, bool allow_quantize) {
  if (!cpu_can_read(t.dtype)) {
    return make_error(ErrorCode::kUnsupported, "{}: tensor {} has dtype {}, which the CPU engine cannot read",
                      t.file, name, dtype_name(t.dtype));
  }
  if (static_cast<int64_t>(t.numel()) != rows * cols) {
    return make_error(ErrorCode::kCorrupt, "{}: tensor {} has {} elements, expected {} x {}", t.file, name,
                      t.numel(), rows, cols);
  }
  WeightMatrix w;
  w.dtype = t.dtype;
  w.rows = rows;
  w.cols = cols;
  w.row_bytes = weight_row_bytes(t.dtype, cols);
  if (w.row_bytes == 0 || w.row_bytes * static_cast<uint64_t>(rows) != t.data.size()) {
    return make_error(ErrorCode::kCorrupt, "{}: tensor {} ({}) rows of {} elements do not fit its {} bytes",
                      t.file, name, dtype_name(t.dtype), cols, t.data.size());
  }
  w.data = t.data.data();
  if (t.dtype == DType::kF8_E4M3) {
    const std::string sname = fp8_scale_inv_name(name);
    const TensorView* s = checkpoint_->find(sname);
    if (s == nullptr) {
      return make_error(ErrorCode::kCorrupt, "{}: FP8 tensor {} has no {}", t.file, name, sname);
    }
    const QuantizationSpec& q = spec().quantization;
    HEARTH_RETURN_IF_ERROR(validate_fp8_block_pair(t, *s, static_cast<uint32_t>(q.block_rows),
                                                   static_cast<uint32_t>(q.block_cols)));
    auto& scales = f32_.emplace_back(s->numel());
    std::memcpy(scales.data(), s->data.data(), scales.size() * 4);  // mapped data may be unaligned
    owned_bytes_ += scales.size() * 4;
    w.block_scale = scales.data();
    w.block_rows = q.block_rows;
    w.block_cols = q.block_cols;
    w.scale_cols = static_cast<int64_t>(s->shape[1]);
  }
  const bool float_type = t.dtype == DType::kF32 || t.dtype == DType::kF16 || t.dtype == DType::kBF16;
  if (allow_quantize && options_.quantize == LoadQuantization::kQ8_0 && float_type && cols % 32 == 0) {
    return quantize_q8_0(w);
  }
  mapped_bytes_ += w.bytes();
  return w;
}

Result<WeightMatrix> ModelWeights::quantize_q8_0(const WeightMatrix& w) {
  WeightMatrix q = w;
  q.dtype = DType::kQ8_0;
  q.row_bytes = weight_row_bytes(DType::kQ8_0, w.cols);
  HEARTH_ASSIGN_OR_RETURN(AnonymousBuffer alloc,
                          AnonymousBuffer::allocate(q.row_bytes * static_cast<uint64_t>(w.rows)));
  auto& buf = bytes_.emplace_back(std::move(alloc));
  q.data = buf.data();
  owned_bytes_ += buf.size();
  auto work = [&](int64_t r0, int64_t r1) {
    std::vector<float> row(w.cols);
    for (int64_t r = r0; r < r1; ++r) {
      decode_row(w, r, row.data());
      for (float& v : row)
        if (!std::isfinite(v)) v = 0.0f;  // quantize() rejects non-finite input; weights never hold any
      (void)quantize(DType::kQ8_0, row, std::span<uint8_t>(buf.data() + r * q.row_bytes, q.row_bytes));
    }
  };
  if (pool_ != nullptr) {
    pool_->parallel_for(w.rows, work, 64);
  } else {
    work(0, w.rows);
  }
  release_mapped_pages(w.data, w.bytes());  // the copy replaces the mapped original
  return q;
}

Result<WeightMatrix> ModelWeights::matrix(std::string_view name, int64_t rows, int64_t cols) {
  const TensorView* t = checkpoint_->find(name);
  if (t == nullptr)
    return make_error(ErrorCode::kNotFound, "{}: tensor {} is missing", checkpoint_->path(), name);
  HEARTH_ASSIGN_OR_RETURN(WeightMatrix w, view(*t, rows, cols, name, true));
  return with_activation_mode(w);
}

WeightMatrix ModelWeights::with_activation_mode(WeightMatrix w) const {
  w.int8_activations = options_.int8_activations && w.dtype == DType::kQ8_0;
  return w;
}

Result<WeightMatrix> ModelWeights::embedding(std::string_view name, int64_t rows, int64_t cols) {
  const TensorView* t = checkpoint_->find(name);
  if (t == nullptr)
    return make_error(ErrorCode::kNotFound, "{}: tensor {} is missing", checkpoint_->path(), name);
  return view(*t, rows, cols, name, false);
}

Result<WeightMatrix> ModelWeights::expert(int64_t layer, int64_t e, std::string_view proj, int64_t rows,
                                          int64_t cols) {
  const std::string hf = fmt::format("model.layers.{}.mlp.experts.{}.{}.weight", layer, e, proj);
  if (checkpoint_->find(hf) != nullptr) return matrix(hf, rows, cols);
  const std::string stacked = gguf_tensor_name(hf);
  const TensorView* t = stacked.empty() ? nullptr : checkpoint_->find(stacked);
  if (t == nullptr)
    return make_error(ErrorCode::kNotFound, "{}: tensor {} is missing", checkpoint_->path(), hf);
  const int64_t n_exp = spec().moe ? spec().moe->n_routed_experts : 0;
  HEARTH_ASSIGN_OR_RETURN(WeightMatrix all, view(*t, n_exp * rows, cols, stacked, false));
  mapped_bytes_ -= all.bytes();  // counted per expert below
  WeightMatrix w = all.slice_rows(e * rows, rows);
  const bool float_type = w.dtype == DType::kF32 || w.dtype == DType::kF16 || w.dtype == DType::kBF16;
  if (options_.quantize == LoadQuantization::kQ8_0 && float_type && cols % 32 == 0) {
    HEARTH_ASSIGN_OR_RETURN(WeightMatrix q, quantize_q8_0(w));
    return with_activation_mode(q);
  }
  mapped_bytes_ += w.bytes();
  return with_activation_mode(w);
}

Result<const float*> ModelWeights::vector(std::string_view name, int64_t n) {
  const TensorView* t = checkpoint_->find(name);
  if (t == nullptr)
    return make_error(ErrorCode::kNotFound, "{}: tensor {} is missing", checkpoint_->path(), name);
  if (static_cast<int64_t>(t->numel()) != n) {
    return make_error(ErrorCode::kCorrupt, "{}: tensor {} has {} elements, expected {}", t->file, name,
                      t->numel(), n);
  }
  auto& out = f32_.emplace_back(static_cast<size_t>(n));
  const Status st = dequantize(t->dtype, t->data, static_cast<uint64_t>(n), out.data());
  if (!st.is_ok()) return st.with_context(fmt::format("{}: tensor {}", t->file, name));
  owned_bytes_ += out.size() * 4;
  return static_cast<const float*>(out.data());
}

WeightMatrix ModelWeights::own_f32(std::vector<float> data, int64_t rows, int64_t cols) {
  auto& buf = f32_.emplace_back(std::move(data));
  owned_bytes_ += buf.size() * 4;
  WeightMatrix w;
  w.dtype = DType::kF32;
  w.rows = rows;
  w.cols = cols;
  w.row_bytes = static_cast<uint64_t>(cols) * 4;
  w.data = reinterpret_cast<const uint8_t*>(buf.data());
  return w;
}

}  // namespace hearth
