#pragma once
// ModelWeights: the tensors of an opened Checkpoint as the CPU kernels read them. Linear weights
// are WeightMatrix views into the memory-mapped files (F32/F16/BF16, FP8 + block scales, GGUF blocks):
// no second copy. Small 1-D tensors (norms, biases, router bias) are converted to owned f32. With
// WeightLoadOptions::quantize = kQ8_0, F32/F16/BF16 linear weights are quantized to Q8_0 at load
// into owned memory (half the bytes of BF16: faster CPU decode) and the mapped originals are not
// read again.
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "kernels/cpu/weight_matrix.h"
#include "model/checkpoint.h"

namespace hearth {

enum class LoadQuantization : uint8_t { kNone, kQ8_0 };

struct WeightLoadOptions {
  LoadQuantization quantize = LoadQuantization::kNone;
  // Q8_0 linear weights (from GGUF or quantized at load) multiply int8-quantized activations (W8A8,
  // llama.cpp's scheme) where the CPU has AVX-512 VNNI: faster decode, activations rounded to 8 bits.
  bool int8_activations = false;
};

class ModelWeights {
 public:
  ModelWeights(std::shared_ptr<const Checkpoint> checkpoint, WeightLoadOptions options, ThreadPool* pool);

  const ModelSpec& spec() const { return checkpoint_->spec(); }
  const Checkpoint& checkpoint() const { return *checkpoint_; }

  // A 2-D linear weight [rows, cols] by its Hugging Face name; errors name the tensor and what is wrong.
  Result<WeightMatrix> matrix(std::string_view name, int64_t rows, int64_t cols);
  // Routed expert `e` of `layer` ("gate_proj", "up_proj", "down_proj"): its own tensor in HF
  // checkpoints, a slice of the stacked per-layer tensor in GGUF files.
  Result<WeightMatrix> expert(int64_t layer, int64_t e, std::string_view proj, int64_t rows, int64_t cols);
  // The embedding table (never quantized at load: only the rows of the prompt's tokens are read).
  Result<WeightMatrix> embedding(std::string_view name, int64_t rows, int64_t cols);
  // A 1-D tensor of n elements as f32 (owned by this object).
  Result<const float*> vector(std::string_view name, int64_t n);
  // An owned f32 matrix built by the architecture (MLA's transposed key up-projection).
  WeightMatrix own_f32(std::vector<float> data, int64_t rows, int64_t cols);

  uint64_t mapped_bytes() const { return mapped_bytes_; }  // weights read in place from the files
  uint64_t owned_bytes() const { return owned_bytes_; }    // converted or quantized copies

 private:
  Result<WeightMatrix> view(const TensorView& t, int64_t rows, int64_t cols, std::string_view name,
                            bool allow_quantize);
  Result<WeightMatrix> quantize_q8_0(const WeightMatrix& w);
  WeightMatrix with_activation_mode(WeightMatrix w) const;

  std::shared_ptr<const Checkpoint> checkpoint_;
  WeightLoadOptions options_;
  ThreadPool* pool_;
  std::deque<std::vector<float>> f32_;  // owned f32 buffers (stable addresses)
  std::deque<AnonymousBuffer> bytes_;   // owned quantized buffers (huge pages where granted)
  uint64_t mapped_bytes_ = 0;
  uint64_t owned_bytes_ = 0;
};

}  // namespace hearth
