#include "kernels/cpu/rope.h"

#include <algorithm>
#include <cmath>

namespace hearth {

namespace {
double yarn_get_mscale(double scale, double mscale) {
  if (scale <= 1.0) return 1.0;
  return 0.1 * mscale * std::log(scale) + 1.0;
}
}  // namespace

RopeTable make_rope_table(const ModelSpec& spec) {
  RopeTable t;
  t.rot_dim = spec.is_mla() ? spec.mla->qk_rope_head_dim : spec.head_dim;
  t.interleave = spec.rope_interleave;
  const int64_t dim = t.rot_dim;
  const float base = static_cast<float>(spec.rope_theta);
  const RopeScaling& rs = spec.rope_scaling;
  // Default frequencies, float32 like torch: 1 / base ** (arange(0, dim, 2) / dim).
  std::vector<float> pos_freqs(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(dim);
    pos_freqs[i] = std::pow(base, e);
  }
  t.inv_freq.resize(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i) t.inv_freq[i] = 1.0f / pos_freqs[i];
  const float factor = static_cast<float>(rs.factor);
  switch (rs.type) {
    case RopeType::kDefault:
    case RopeType::kDynamic:  // dynamic NTK equals default up to the original length; longer is not scaled
      break;
    case RopeType::kLinear:
      for (float& f : t.inv_freq) f /= factor;
      break;
    case RopeType::kLlama3: {
      const double old_len = static_cast<double>(rs.original_max_position_embeddings.value_or(8192));
      const double low_wavelen = old_len / rs.low_freq_factor;
      const double high_wavelen = old_len / rs.high_freq_factor;
      for (float& f : t.inv_freq) {
        const double wavelen = 2.0 * M_PI / f;
        if (wavelen > low_wavelen) {
          f = f / factor;
        } else if (wavelen >= high_wavelen) {
          const float smooth = static_cast<float>((old_len / wavelen - rs.low_freq_factor) /
                                                  (rs.high_freq_factor - rs.low_freq_factor));
          f = (1.0f - smooth) * f / factor + smooth * f;
        }
      }
      break;
    }
    case RopeType::kYarn: {
      const double orig =
          static_cast<double>(rs.original_max_position_embeddings.value_or(spec.max_position_embeddings));
      auto correction_dim = [&](double rotations) {
        return (static_cast<double>(dim) * std::log(orig / (rotations * 2.0 * M_PI))) /
               (2.0 * std::log(static_cast<double>(spec.rope_theta)));
      };
      double low = std::floor(correction_dim(rs.beta_fast));
      double high = std::ceil(correction_dim(rs.beta_slow));
      low = std::max(low, 0.0);
      high = std::min(high, static_cast<double>(dim - 1));
      if (low == high) high += 0.001;
      for (int64_t i = 0; i < dim / 2; ++i) {
        const float ramp =
            std::clamp(static_cast<float>((static_cast<double>(i) - low) / (high - low)), 0.0f, 1.0f);
        const float extrap_factor = 1.0f - ramp;
        const float extrap = 1.0f / pos_freqs[i];
        const float interp = 1.0f / (factor * pos_freqs[i]);
        t.inv_freq[i] = interp * (1.0f - extrap_factor) + extrap * extrap_factor;
      }
      if (rs.attention_factor) {
        t.attention_factor = static_cast<float>(*rs.attention_factor);
      } else if (rs.mscale && rs.mscale_all_dim && *rs.mscale != 0.0 && *rs.mscale_all_dim != 0.0) {
        t.attention_factor = static_cast<float>(yarn_get_mscale(rs.factor, *rs.mscale) /
                                                yarn_get_mscale(rs.factor, *rs.mscale_all_dim));
      } else {
        t.attention_factor = static_cast<float>(yarn_get_mscale(rs.factor, 1.0));
      }
      break;
    }
  }
  return t;
}

float attention_softmax_scale(const ModelSpec& spec) {
  const double head = static_cast<double>(spec.head_dim);
  double scale = 1.0 / std::sqrt(head);
  const RopeScaling& rs = spec.rope_scaling;
  if (spec.is_mla() && rs.type == RopeType::kYarn && rs.mscale_all_dim && *rs.mscale_all_dim != 0.0) {
    const double m = yarn_get_mscale(rs.factor, *rs.mscale_all_dim);
    scale *= m * m;
  }
  return static_cast<float>(scale);
}

void rope_cos_sin(const RopeTable& rope, int64_t pos, float* cs) {
  const float p = static_cast<float>(pos);
  for (size_t i = 0; i < rope.inv_freq.size(); ++i) {
    const float angle = rope.inv_freq[i] * p;  // float32 product, as torch computes it
    cs[2 * i] = static_cast<float>(std::cos(static_cast<double>(angle))) * rope.attention_factor;
    cs[2 * i + 1] = static_cast<float>(std::sin(static_cast<double>(angle))) * rope.attention_factor;
  }
}

void apply_rope(const RopeTable& rope, const float* cs, float* x, int64_t n_heads, int64_t head_stride) {
  const int64_t half = rope.rot_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_stride;
    if (rope.interleave) {
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[2 * i], b = v[2 * i + 1], c = cs[2 * i], s = cs[2 * i + 1];
        v[2 * i] = a * c - b * s;
        v[2 * i + 1] = b * c + a * s;
      }
    } else {
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half], c = cs[2 * i], s = cs[2 * i + 1];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
      }
    }
  }
}

}  // namespace hearth
