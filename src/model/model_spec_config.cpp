// config.json <-> ModelSpec. Unknown keys are ignored; known keys of the wrong type, or with values
// outside the documented bounds, are errors naming the key.
#include <cmath>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "core/json_guard.h"
#include "core/mapped_file.h"
#include "model/model_spec.h"

namespace hearth {
namespace {

using json = nlohmann::json;

// Typed, optional access to the keys of one JSON object; `prefix` ("rope_scaling.") qualifies the key
// in messages. A key holding null counts as absent. Absent keys leave *out unchanged.
class Fields {
 public:
  Fields(const json& obj, std::string prefix) : obj_(obj), prefix_(std::move(prefix)) {}

  const json* get(std::string_view key) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  bool has(std::string_view key) const { return get(key) != nullptr; }
  std::string name(std::string_view key) const { return prefix_ + std::string(key); }

  Status type_error(std::string_view key, std::string_view expected, const json& v) const {
    return make_error(ErrorCode::kInvalidArgument, "{}: expected {}, got {}", name(key), expected,
                      v.type_name());
  }

  Status int_value(std::string_view key, const json& v, int64_t* out) const {
    if (v.is_number_integer() && !v.is_number_unsigned()) {
      *out = v.get<int64_t>();
      return Status::ok();
    }
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return make_error(ErrorCode::kOutOfRange, "{}: {} is too large", name(key), u);
      }
      *out = static_cast<int64_t>(u);
      return Status::ok();
    }
    if (v.is_number_float()) {  // 4096.0 is accepted; 4096.5 is not
      const double d = v.get<double>();
      if (!std::isfinite(d) || std::trunc(d) != d || std::fabs(d) > 9.0e15) {
        return make_error(ErrorCode::kInvalidArgument, "{}: {} is not an integer", name(key), d);
      }
      *out = static_cast<int64_t>(d);
      return Status::ok();
    }
    return type_error(key, "an integer", v);
  }

  Status opt_int(std::string_view key, int64_t* out) const {
    const json* v = get(key);
    return v ? int_value(key, *v, out) : Status::ok();
  }
  Status req_int(std::string_view key, int64_t* out) const {
    if (!has(key)) return make_error(ErrorCode::kInvalidArgument, "{}: required key is missing", name(key));
    return opt_int(key, out);
  }
  Status opt_double(std::string_view key, double* out) const {
    const json* v = get(key);
    if (!v) return Status::ok();
    if (!v->is_number()) return type_error(key, "a number", *v);
    *out = v->get<double>();
    return Status::ok();
  }
  Status opt_double(std::string_view key, std::optional<double>* out) const {
    if (!has(key)) return Status::ok();
    double d = 0;
    HEARTH_RETURN_IF_ERROR(opt_double(key, &d));
    *out = d;
    return Status::ok();
  }
  Status opt_bool(std::string_view key, bool* out) const {
    const json* v = get(key);
    if (!v) return Status::ok();
    if (!v->is_boolean()) return type_error(key, "true or false", *v);
    *out = v->get<bool>();
    return Status::ok();
  }
  Status opt_string(std::string_view key, std::string* out) const {
    const json* v = get(key);
    if (!v) return Status::ok();
    if (!v->is_string()) return type_error(key, "a string", *v);
    *out = v->get<std::string>();
    return Status::ok();
  }
  // An int or a list of ints (bos/eos token ids).
  Status opt_int_list(std::string_view key, std::vector<int64_t>* out) const {
    const json* v = get(key);
    if (!v) return Status::ok();
    out->clear();
    if (!v->is_array()) {
      int64_t id = 0;
      HEARTH_RETURN_IF_ERROR(int_value(key, *v, &id));
      out->push_back(id);
      return Status::ok();
    }
    if (v->size() > 64) {
      return make_error(ErrorCode::kOutOfRange, "{}: {} ids is more than 64", name(key), v->size());
    }
    for (const json& e : *v) {
      int64_t id = 0;
      HEARTH_RETURN_IF_ERROR(int_value(key, e, &id));
      out->push_back(id);
    }
    return Status::ok();
  }

 private:
  const json& obj_;
  std::string prefix_;
};

Status parse_architecture(const Fields& f, Architecture* out) {
  if (const json* archs = f.get("architectures")) {
    if (!archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
      return f.type_error("architectures", "a non-empty list of strings", *archs);
    }
    const std::string name = (*archs)[0].get<std::string>();
    if (auto a = architecture_from_name(name)) {
      *out = *a;
      return Status::ok();
    }
    return make_error(ErrorCode::kUnsupported, "architectures: '{}' is not supported (supported: {})", name,
                      supported_architectures_list());
  }
  std::string model_type;
  HEARTH_RETURN_IF_ERROR(f.opt_string("model_type", &model_type));
  if (model_type.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "architectures: missing, and no model_type either (supported: {})",
                      supported_architectures_list());
  }
  if (auto a = architecture_from_model_type(model_type)) {
    *out = *a;
    return Status::ok();
  }
  return make_error(ErrorCode::kUnsupported, "model_type: '{}' is not supported (supported: {})", model_type,
                    supported_architectures_list());
}

Status parse_dtype(const Fields& f, DType* out) {
  const char* key = f.has("dtype") ? "dtype" : "torch_dtype";  // transformers 5 renamed it
  std::string name;
  HEARTH_RETURN_IF_ERROR(f.opt_string(key, &name));
  if (name.empty()) return Status::ok();
  if (name.rfind("torch.", 0) == 0) name = name.substr(6);
  if (name == "bfloat16") {
    *out = DType::kBF16;
  } else if (name == "float16" || name == "half") {
    *out = DType::kF16;
  } else if (name == "float32" || name == "float") {
    *out = DType::kF32;
  } else {
    return make_error(ErrorCode::kUnsupported, "{}: '{}' is not one of bfloat16, float16, float32", key,
                      name);
  }
  return Status::ok();
}

// `obj` is rope_scaling or rope_parameters; `prefix` names it in messages.
Status parse_rope(const json& obj, const std::string& prefix, ModelSpec* spec) {
  if (!obj.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: expected an object, got {}",
                      prefix.substr(0, prefix.size() - 1), obj.type_name());
  }
  // transformers 5 may key rope_parameters by layer type; the decoder layers here are full attention.
  if (auto it = obj.find("full_attention"); it != obj.end() && it->is_object()) {
    return parse_rope(*it, prefix + "full_attention.", spec);
  }
  const Fields f(obj, prefix);
  HEARTH_RETURN_IF_ERROR(f.opt_double("rope_theta", &spec->rope_theta));
  std::string type;
  HEARTH_RETURN_IF_ERROR(f.opt_string(f.has("rope_type") ? "rope_type" : "type", &type));
  RopeScaling& r = spec->rope_scaling;
  r = RopeScaling{};
  if (type.empty() || type == "default") return Status::ok();
  if (type == "linear") {
    r.type = RopeType::kLinear;
  } else if (type == "dynamic") {
    r.type = RopeType::kDynamic;
  } else if (type == "yarn") {
    r.type = RopeType::kYarn;
  } else if (type == "llama3") {
    r.type = RopeType::kLlama3;
  } else {
    return make_error(
        ErrorCode::kUnsupported,
        "{}rope_type: '{}' is not supported (supported: default, linear, dynamic, yarn, llama3)", prefix,
        type);
  }
  if (!f.has("factor")) {
    return make_error(ErrorCode::kInvalidArgument, "{}factor: required by rope type {}", prefix, type);
  }
  HEARTH_RETURN_IF_ERROR(f.opt_double("factor", &r.factor));
  if (f.has("original_max_position_embeddings")) {
    int64_t orig = 0;
    HEARTH_RETURN_IF_ERROR(f.opt_int("original_max_position_embeddings", &orig));
    r.original_max_position_embeddings = orig;
  }
  if (r.type == RopeType::kYarn) {
    HEARTH_RETURN_IF_ERROR(f.opt_double("beta_fast", &r.beta_fast));
    HEARTH_RETURN_IF_ERROR(f.opt_double("beta_slow", &r.beta_slow));
    HEARTH_RETURN_IF_ERROR(f.opt_double("mscale", &r.mscale));
    HEARTH_RETURN_IF_ERROR(f.opt_double("mscale_all_dim", &r.mscale_all_dim));
    HEARTH_RETURN_IF_ERROR(f.opt_double("attention_factor", &r.attention_factor));
  }
  if (r.type == RopeType::kLlama3) {
    HEARTH_RETURN_IF_ERROR(f.opt_double("low_freq_factor", &r.low_freq_factor));
    HEARTH_RETURN_IF_ERROR(f.opt_double("high_freq_factor", &r.high_freq_factor));
  }
  return Status::ok();
}

Status parse_mla(const Fields& f, ModelSpec* spec) {
  MlaSpec m;
  HEARTH_RETURN_IF_ERROR(f.opt_int("q_lora_rank", &m.q_lora_rank));  // null: no query compression
  if (!f.has("q_lora_rank")) m.q_lora_rank = 0;
  HEARTH_RETURN_IF_ERROR(f.req_int("kv_lora_rank", &m.kv_lora_rank));
  HEARTH_RETURN_IF_ERROR(f.req_int("qk_nope_head_dim", &m.qk_nope_head_dim));
  HEARTH_RETURN_IF_ERROR(f.req_int("qk_rope_head_dim", &m.qk_rope_head_dim));
  HEARTH_RETURN_IF_ERROR(f.req_int("v_head_dim", &m.v_head_dim));
  // Checked here too (validate() repeats it) so the sum below cannot overflow.
  for (int64_t v : {m.qk_nope_head_dim, m.qk_rope_head_dim}) {
    if (v < 0 || v > ModelSpecLimits::kMaxHeadDim) {
      return make_error(ErrorCode::kOutOfRange, "{}: {} is outside [0, {}]",
                        v == m.qk_nope_head_dim ? "qk_nope_head_dim" : "qk_rope_head_dim", v,
                        ModelSpecLimits::kMaxHeadDim);
    }
  }
  spec->head_dim = m.qk_nope_head_dim + m.qk_rope_head_dim;
  spec->mla = m;
  return Status::ok();
}

Status parse_moe(const Fields& f, ModelSpec* spec) {
  int64_t experts = 0;
  HEARTH_RETURN_IF_ERROR(f.opt_int("n_routed_experts", &experts));
  if (experts == 0) return Status::ok();  // absent, null or 0: a dense DeepSeek model
  const bool v3 = spec->architecture == Architecture::kDeepseekV3;
  MoeSpec m;
  m.n_routed_experts = experts;
  m.topk_method = v3 ? TopkMethod::kNoauxTc : TopkMethod::kGreedy;
  m.scoring_func = v3 ? ScoringFunc::kSigmoid : ScoringFunc::kSoftmax;
  m.norm_topk_prob = v3;
  m.routed_scaling_factor = v3 ? 2.5 : 1.0;
  HEARTH_RETURN_IF_ERROR(f.opt_int("n_shared_experts", &m.n_shared_experts));
  HEARTH_RETURN_IF_ERROR(f.req_int("num_experts_per_tok", &m.num_experts_per_tok));
  HEARTH_RETURN_IF_ERROR(f.req_int("moe_intermediate_size", &m.moe_intermediate_size));
  HEARTH_RETURN_IF_ERROR(f.opt_int("first_k_dense_replace", &m.first_k_dense_replace));
  HEARTH_RETURN_IF_ERROR(f.opt_int("moe_layer_freq", &m.moe_layer_freq));
  HEARTH_RETURN_IF_ERROR(f.opt_int("n_group", &m.n_group));
  HEARTH_RETURN_IF_ERROR(f.opt_int("topk_group", &m.topk_group));
  HEARTH_RETURN_IF_ERROR(f.opt_bool("norm_topk_prob", &m.norm_topk_prob));
  HEARTH_RETURN_IF_ERROR(f.opt_double("routed_scaling_factor", &m.routed_scaling_factor));
  std::string method;
  HEARTH_RETURN_IF_ERROR(f.opt_string("topk_method", &method));
  if (method == "greedy" || method == "gready") {  // "gready": DeepSeek-V2's configuration default
    m.topk_method = TopkMethod::kGreedy;
  } else if (method == "group_limited_greedy") {
    m.topk_method = TopkMethod::kGroupLimitedGreedy;
  } else if (method == "noaux_tc") {
    m.topk_method = TopkMethod::kNoauxTc;
  } else if (!method.empty()) {
    return make_error(
        ErrorCode::kUnsupported,
        "topk_method: '{}' is not supported (supported: greedy, group_limited_greedy, noaux_tc)", method);
  }
  std::string scoring;
  HEARTH_RETURN_IF_ERROR(f.opt_string("scoring_func", &scoring));
  if (scoring == "softmax") {
    m.scoring_func = ScoringFunc::kSoftmax;
  } else if (scoring == "sigmoid") {
    m.scoring_func = ScoringFunc::kSigmoid;
  } else if (!scoring.empty()) {
    return make_error(ErrorCode::kUnsupported,
                      "scoring_func: '{}' is not supported (supported: softmax, sigmoid)", scoring);
  }
  spec->moe = m;
  return Status::ok();
}

Status parse_quantization(const json& q, ModelSpec* spec) {
  if (!q.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "quantization_config: expected an object, got {}",
                      q.type_name());
  }
  const Fields f(q, "quantization_config.");
  std::string method;
  HEARTH_RETURN_IF_ERROR(f.opt_string("quant_method", &method));
  if (method != "fp8") {
    return make_error(ErrorCode::kUnsupported,
                      "quantization_config.quant_method: '{}' is not supported (supported: fp8)", method);
  }
  QuantizationSpec& out = spec->quantization;
  out.method = QuantMethod::kFp8;
  HEARTH_RETURN_IF_ERROR(f.opt_string("fmt", &out.fmt));
  HEARTH_RETURN_IF_ERROR(f.opt_string("activation_scheme", &out.activation_scheme));
  const json* block = f.get("weight_block_size");
  if (!block) {
    return make_error(ErrorCode::kUnsupported,
                      "quantization_config.weight_block_size: missing; only block-wise fp8 is supported");
  }
  if (!block->is_array() || block->size() != 2) {
    return f.type_error("weight_block_size", "a list of 2 integers", *block);
  }
  HEARTH_RETURN_IF_ERROR(f.int_value("weight_block_size[0]", (*block)[0], &out.block_rows));
  HEARTH_RETURN_IF_ERROR(f.int_value("weight_block_size[1]", (*block)[1], &out.block_cols));
  return Status::ok();
}

Status parse_root(const json& root, ModelSpec* spec) {
  if (!root.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "expected a JSON object, got {}", root.type_name());
  }
  const Fields f(root, "");
  HEARTH_RETURN_IF_ERROR(parse_architecture(f, &spec->architecture));
  const bool deepseek =
      spec->architecture == Architecture::kDeepseekV2 || spec->architecture == Architecture::kDeepseekV3;
  HEARTH_RETURN_IF_ERROR(f.req_int("hidden_size", &spec->hidden_size));
  HEARTH_RETURN_IF_ERROR(f.req_int("num_hidden_layers", &spec->num_hidden_layers));
  HEARTH_RETURN_IF_ERROR(f.req_int("num_attention_heads", &spec->num_attention_heads));
  spec->num_key_value_heads = spec->num_attention_heads;
  HEARTH_RETURN_IF_ERROR(f.opt_int("num_key_value_heads", &spec->num_key_value_heads));
  HEARTH_RETURN_IF_ERROR(f.req_int("intermediate_size", &spec->intermediate_size));
  HEARTH_RETURN_IF_ERROR(f.req_int("vocab_size", &spec->vocab_size));
  HEARTH_RETURN_IF_ERROR(f.req_int("max_position_embeddings", &spec->max_position_embeddings));
  HEARTH_RETURN_IF_ERROR(f.opt_double("rms_norm_eps", &spec->rms_norm_eps));
  HEARTH_RETURN_IF_ERROR(f.opt_double("rope_theta", &spec->rope_theta));
  HEARTH_RETURN_IF_ERROR(f.opt_bool("tie_word_embeddings", &spec->tie_word_embeddings));
  spec->rope_interleave = deepseek;
  HEARTH_RETURN_IF_ERROR(f.opt_bool("rope_interleave", &spec->rope_interleave));
  HEARTH_RETURN_IF_ERROR(f.opt_bool("attention_bias", &spec->attention_bias));
  if (spec->architecture == Architecture::kQwen2) spec->attention_bias = true;  // q/k/v biases, always
  if (spec->architecture == Architecture::kLlama) {
    HEARTH_RETURN_IF_ERROR(f.opt_bool("mlp_bias", &spec->mlp_bias));
  }
  HEARTH_RETURN_IF_ERROR(parse_dtype(f, &spec->torch_dtype));
  HEARTH_RETURN_IF_ERROR(f.opt_int_list("bos_token_id", &spec->bos_token_ids));
  HEARTH_RETURN_IF_ERROR(f.opt_int_list("eos_token_id", &spec->eos_token_ids));

  // rope_parameters (transformers 5, also carries rope_theta) wins over rope_scaling.
  if (const json* rp = f.get("rope_parameters")) {
    HEARTH_RETURN_IF_ERROR(parse_rope(*rp, "rope_parameters.", spec));
  } else if (const json* rs = f.get("rope_scaling")) {
    HEARTH_RETURN_IF_ERROR(parse_rope(*rs, "rope_scaling.", spec));
  }

  if (deepseek) {
    HEARTH_RETURN_IF_ERROR(parse_mla(f, spec));
    HEARTH_RETURN_IF_ERROR(parse_moe(f, spec));
    HEARTH_RETURN_IF_ERROR(f.opt_int("num_nextn_predict_layers", &spec->num_nextn_predict_layers));
  } else if (f.has("head_dim")) {
    HEARTH_RETURN_IF_ERROR(f.opt_int("head_dim", &spec->head_dim));
  } else {
    if (spec->num_attention_heads <= 0 || spec->hidden_size % spec->num_attention_heads != 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "num_attention_heads: {} does not divide hidden_size ({}) and there is no head_dim",
                        spec->num_attention_heads, spec->hidden_size);
    }
    spec->head_dim = spec->hidden_size / spec->num_attention_heads;
  }
  if (const json* q = f.get("quantization_config")) {
    HEARTH_RETURN_IF_ERROR(parse_quantization(*q, spec));
  }
  return spec->validate();
}

json token_ids_json(const std::vector<int64_t>& ids) {
  if (ids.size() == 1) return ids[0];
  return ids;
}

}  // namespace

Result<ModelSpec> parse_model_spec(std::string_view config_json, std::string_view what) {
  JsonLimits limits;
  limits.max_bytes = ModelSpecLimits::kMaxConfigBytes;
  limits.max_depth = ModelSpecLimits::kMaxConfigDepth;
  HEARTH_RETURN_IF_ERROR(check_json_limits(config_json, limits, what));
  try {
    const json root = json::parse(config_json, nullptr, /*allow_exceptions=*/false);
    if (root.is_discarded()) {
      return make_error(ErrorCode::kCorrupt, "{}: not valid JSON (or not UTF-8)", what);
    }
    ModelSpec spec;
    Status st = parse_root(root, &spec);
    if (!st.is_ok()) return st.with_context(what);
    return spec;
  } catch (const std::exception& e) {  // nlohmann type errors or allocation failure
    return make_error(ErrorCode::kCorrupt, "{}: {}", what, e.what());
  }
}

Result<ModelSpec> load_model_spec(const std::string& config_path) {
  HEARTH_ASSIGN_OR_RETURN(std::string text, read_file(config_path, ModelSpecLimits::kMaxConfigBytes));
  return parse_model_spec(text, config_path);
}

json model_spec_to_hf_config(const ModelSpec& s) {
  const bool deepseek = s.is_mla();
  json j;
  j["architectures"] = json::array({std::string(architecture_name(s.architecture))});
  j["model_type"] = std::string(architecture_model_type(s.architecture));
  j["hidden_size"] = s.hidden_size;
  j["num_hidden_layers"] = s.num_hidden_layers;
  j["num_attention_heads"] = s.num_attention_heads;
  j["num_key_value_heads"] = s.num_key_value_heads;
  j["intermediate_size"] = s.intermediate_size;
  j["vocab_size"] = s.vocab_size;
  j["max_position_embeddings"] = s.max_position_embeddings;
  j["rms_norm_eps"] = s.rms_norm_eps;
  j["rope_theta"] = s.rope_theta;
  j["tie_word_embeddings"] = s.tie_word_embeddings;
  if (deepseek) j["rope_interleave"] = s.rope_interleave;
  j["torch_dtype"] = std::string(torch_dtype_name(s.torch_dtype));
  j["hidden_act"] = "silu";
  j["initializer_range"] = 0.02;
  j["attention_dropout"] = 0.0;
  j["use_cache"] = true;
  if (!s.bos_token_ids.empty()) j["bos_token_id"] = token_ids_json(s.bos_token_ids);
  if (!s.eos_token_ids.empty()) j["eos_token_id"] = token_ids_json(s.eos_token_ids);
  if (!deepseek && s.num_attention_heads > 0 && s.head_dim != s.hidden_size / s.num_attention_heads) {
    j["head_dim"] = s.head_dim;
  }
  if (s.architecture == Architecture::kQwen2) j["use_sliding_window"] = false;
  if (s.architecture == Architecture::kLlama) {
    j["attention_bias"] = s.attention_bias;
    j["mlp_bias"] = s.mlp_bias;
    j["pretraining_tp"] = 1;
  }
  const RopeScaling& r = s.rope_scaling;
  if (r.type != RopeType::kDefault) {
    json rs;
    // DeepSeek's own configs say "type"; Llama 3.1's say "rope_type".
    rs[deepseek ? "type" : "rope_type"] = std::string(rope_type_name(r.type));
    rs["factor"] = r.factor;
    if (r.original_max_position_embeddings) {
      rs["original_max_position_embeddings"] = *r.original_max_position_embeddings;
    }
    if (r.type == RopeType::kYarn) {
      rs["beta_fast"] = r.beta_fast;
      rs["beta_slow"] = r.beta_slow;
      if (r.mscale) rs["mscale"] = *r.mscale;
      if (r.mscale_all_dim) rs["mscale_all_dim"] = *r.mscale_all_dim;
      if (r.attention_factor) rs["attention_factor"] = *r.attention_factor;
    }
    if (r.type == RopeType::kLlama3) {
      rs["low_freq_factor"] = r.low_freq_factor;
      rs["high_freq_factor"] = r.high_freq_factor;
    }
    j["rope_scaling"] = rs;
  }
  if (deepseek) {
    const MlaSpec& m = *s.mla;
    j["attention_bias"] = s.attention_bias;
    j["q_lora_rank"] = m.q_lora_rank > 0 ? json(m.q_lora_rank) : json(nullptr);
    j["kv_lora_rank"] = m.kv_lora_rank;
    j["qk_nope_head_dim"] = m.qk_nope_head_dim;
    j["qk_rope_head_dim"] = m.qk_rope_head_dim;
    j["v_head_dim"] = m.v_head_dim;
    if (s.moe) {
      const MoeSpec& e = *s.moe;
      j["n_routed_experts"] = e.n_routed_experts;
      j["n_shared_experts"] = e.n_shared_experts;
      j["num_experts_per_tok"] = e.num_experts_per_tok;
      j["moe_intermediate_size"] = e.moe_intermediate_size;
      j["first_k_dense_replace"] = e.first_k_dense_replace;
      j["moe_layer_freq"] = e.moe_layer_freq;
      j["n_group"] = e.n_group;
      j["topk_group"] = e.topk_group;
      j["topk_method"] = std::string(topk_method_name(e.topk_method));
      j["scoring_func"] = std::string(scoring_func_name(e.scoring_func));
      j["norm_topk_prob"] = e.norm_topk_prob;
      j["routed_scaling_factor"] = e.routed_scaling_factor;
      j["aux_loss_alpha"] = 0.001;
      j["seq_aux"] = true;
    } else {
      j["n_routed_experts"] = nullptr;
    }
    if (s.architecture == Architecture::kDeepseekV3) {
      j["num_nextn_predict_layers"] = s.num_nextn_predict_layers;
      j["ep_size"] = 1;
    }
  }
  if (s.quantization.method == QuantMethod::kFp8) {
    j["quantization_config"] = {
        {"quant_method", "fp8"},
        {"fmt", s.quantization.fmt},
        {"activation_scheme", s.quantization.activation_scheme},
        {"weight_block_size", json::array({s.quantization.block_rows, s.quantization.block_cols})},
    };
  }
  return j;
}

}  // namespace hearth
