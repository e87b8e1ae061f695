#include "kernels/cuda/blas.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

namespace hearth::cuda {

struct BlasLt::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
    if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
    if (c != nullptr) cublasLtMatrixLayoutDestroy(c);
    if (desc != nullptr) cublasLtMatmulDescDestroy(desc);
  }
};

namespace {

Status blas_error(cublasStatus_t st, const char* what) {
  return make_error(ErrorCode::kInternal, "cuBLASLt {} failed: {} ({})", what, cublasLtGetStatusName(st),
                    cublasLtGetStatusString(st));
}

#define HEARTH_CUBLAS(call, what)                                   \
  do {                                                              \
    const cublasStatus_t st_ = (call);                              \
    if (st_ != CUBLAS_STATUS_SUCCESS) return blas_error(st_, what); \
  } while (0)

}  // namespace

Result<std::unique_ptr<BlasLt>> BlasLt::create(void* workspace, uint64_t bytes) {
  std::unique_ptr<BlasLt> b(new BlasLt());
  cublasLtHandle_t h = nullptr;
  HEARTH_CUBLAS(cublasLtCreate(&h), "create");
  b->handle_ = h;
  b->workspace_ = workspace;
  b->workspace_bytes_ = bytes;
  return b;
}

BlasLt::~BlasLt() {
  plans_.clear();
  if (handle_ != nullptr) cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_));
}

Result<BlasLt::Plan*> BlasLt::plan(const Key& key) {
  auto it = plans_.find(key);
  if (it != plans_.end()) {
    if (it->second == nullptr)  // refused before: do not ask the heuristic again
      return make_error(ErrorCode::kUnsupported, "cuBLASLt has no algorithm for this FP8 GEMM shape");
    return it->second.get();
  }
  const auto [mode, ti, yti, batch, n, rows, k, ldw, ldx, ldy, sw, sx, sy] = key;
  auto p = std::make_unique<Plan>();
  const cudaDataType_t ab = mode != 0                                     ? CUDA_R_8F_E4M3
                            : static_cast<GpuDType>(ti) == GpuDType::kF32 ? CUDA_R_32F
                                                                          : CUDA_R_16BF;
  const cudaDataType_t cd = static_cast<GpuDType>(yti) == GpuDType::kF32 ? CUDA_R_32F : CUDA_R_16BF;
  HEARTH_CUBLAS(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "descriptor");
  if (mode != 0) {
    // A is the weight, B the activations (column-major view below).
    const auto scaling = static_cast<Fp8Scaling>(mode);
    const cublasLtMatmulMatrixScale_t sa =
        scaling == Fp8Scaling::kBlock128     ? CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F
        : scaling == Fp8Scaling::kBlock1x128 ? CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F
                                             : CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    const cublasLtMatmulMatrixScale_t sb = scaling == Fp8Scaling::kRowwise
                                               ? CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F
                                               : CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
    HEARTH_CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &sa, sizeof(sa)),
                  "A scale mode");
    HEARTH_CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &sb, sizeof(sb)),
                  "B scale mode");
    // The heuristic wants scale pointers with the modes; each call sets its own (any 16-byte aligned
    // address will do here).
    const void* placeholder = workspace_;
    HEARTH_CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &placeholder,
                                                 sizeof(placeholder)),
                  "A scale");
    HEARTH_CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &placeholder,
                                                 sizeof(placeholder)),
                  "B scale");
  }
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  HEARTH_CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)),
                "transa");
  HEARTH_CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)),
                "transb");
  // Column-major view: C (rows x n, ld ldy) = W^T' (W is k x rows, ld ldw) * X (k x n, ld ldx).
  HEARTH_CUBLAS(
      cublasLtMatrixLayoutCreate(&p->a, ab, static_cast<uint64_t>(k), static_cast<uint64_t>(rows), ldw),
      "layout A");
  HEARTH_CUBLAS(
      cublasLtMatrixLayoutCreate(&p->b, ab, static_cast<uint64_t>(k), static_cast<uint64_t>(n), ldx),
      "layout B");
  HEARTH_CUBLAS(
      cublasLtMatrixLayoutCreate(&p->c, cd, static_cast<uint64_t>(rows), static_cast<uint64_t>(n), ldy),
      "layout C");
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    const struct {
      cublasLtMatrixLayout_t layout;
      int64_t stride;
    } ls[] = {{p->a, sw}, {p->b, sx}, {p->c, sy}};
    for (const auto& l : ls) {
      HEARTH_CUBLAS(cublasLtMatrixLayoutSetAttribute(l.layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                                     sizeof(count)),
                    "batch count");
      HEARTH_CUBLAS(cublasLtMatrixLayoutSetAttribute(l.layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                     &l.stride, sizeof(l.stride)),
                    "batch stride");
    }
  }
  cublasLtMatmulPreference_t pref = nullptr;
  HEARTH_CUBLAS(cublasLtMatmulPreferenceCreate(&pref), "preference");
  const uint64_t ws = workspace_bytes_;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(static_cast<cublasLtHandle_t>(handle_), p->desc,
                                                           p->a, p->b, p->c, p->c, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if ((st != CUBLAS_STATUS_SUCCESS || found == 0) && mode != 0) {
    // Scaled FP8 needs cuBLASLt >= 12.9 on sm_90 and some shapes (multiples of 4): anything else refuses it.
    plans_.emplace(key, nullptr);
    return make_error(ErrorCode::kUnsupported, "cuBLASLt {} has no FP8 {} GEMM here ({})",
                      cublasLtGetVersion(),
                      mode == static_cast<int>(Fp8Scaling::kRowwise) ? "row-scaled" : "block-scaled",
                      cublasLtGetStatusName(st));
  }
  if (st != CUBLAS_STATUS_SUCCESS) return blas_error(st, "heuristic");
  if (found == 0) {
    return make_error(ErrorCode::kUnsupported, "cuBLASLt has no algorithm for a {}x{}x{} {} GEMM (batch {})",
                      n, rows, k,
                      mode != 0                                     ? "fp8"
                      : static_cast<GpuDType>(ti) == GpuDType::kF32 ? "f32"
                                                                    : "bf16",
                      batch);
  }
  p->algo = result.algo;
  Plan* raw = p.get();
  plans_.emplace(key, std::move(p));
  return raw;
}

Status BlasLt::gemm(const void* w, const void* x, GpuDType t, int64_t n, int64_t rows, int64_t k, float* y,
                    int64_t ldy, Stream s) {
  Batched b;
  b.w = w;
  b.ldw = k;
  b.x = x;
  b.ldx = k;
  b.y = y;
  b.ldy = ldy;
  return gemm_batched(b, t, 1, n, rows, k, s);
}

Status BlasLt::gemm_batched(const Batched& b, GpuDType t, int64_t batch, int64_t n, int64_t rows, int64_t k,
                            Stream s) {
  if (n <= 0 || rows <= 0 || batch <= 0) return Status::ok();
  const Key key{0,
                static_cast<int>(t),
                static_cast<int>(b.yt),
                batch,
                n,
                rows,
                k,
                b.ldw,
                b.ldx,
                b.ldy,
                batch > 1 ? b.stride_w : 0,
                batch > 1 ? b.stride_x : 0,
                batch > 1 ? b.stride_y : 0};
  HEARTH_ASSIGN_OR_RETURN(Plan * p, plan(key));
  const float alpha = 1.0f, beta = 0.0f;
  HEARTH_CUBLAS(cublasLtMatmul(static_cast<cublasLtHandle_t>(handle_), p->desc, &alpha, b.w, p->a, b.x, p->b,
                               &beta, b.y, p->c, b.y, p->c, &p->algo, workspace_, workspace_bytes_, s),
                "matmul");
  return Status::ok();
}

Status BlasLt::gemm_fp8(const void* w, const float* w_scale, const void* x, const float* x_scale,
                        Fp8Scaling scaling, int64_t n, int64_t rows, int64_t k, float* y, int64_t ldy,
                        Stream s) {
  if (n <= 0 || rows <= 0) return Status::ok();
  const Key key{
      static_cast<int>(scaling), 0, static_cast<int>(GpuDType::kF32), 1, n, rows, k, k, k, ldy, 0, 0, 0};
  HEARTH_ASSIGN_OR_RETURN(Plan * p, plan(key));
  // The scale pointers change with every weight: set per call (a host-side attribute, captured by graphs).
  HEARTH_CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scale,
                                               sizeof(w_scale)),
                "A scale");
  HEARTH_CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scale,
                                               sizeof(x_scale)),
                "B scale");
  const float alpha = 1.0f, beta = 0.0f;
  HEARTH_CUBLAS(cublasLtMatmul(static_cast<cublasLtHandle_t>(handle_), p->desc, &alpha, w, p->a, x, p->b,
                               &beta, y, p->c, y, p->c, &p->algo, workspace_, workspace_bytes_, s),
                "fp8 matmul");
  return Status::ok();
}

}  // namespace hearth::cuda
