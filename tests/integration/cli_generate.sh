#!/usr/bin/env bash
# hearth generate and hearth model convert, end to end on the engine fixtures: greedy output equals
# the transformers reference (text prompt tokenized by hearth, and --prompt-ids), --json carries ids,
# text, per-step logprobs and timings; the same through a GGUF file written by `model convert`
# (f32, q8_0); seeded sampling is reproducible; bad input fails with exit 1/2 and a message, never a
# crash.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init

FIX=$ROOT/tests/fixtures/engine
# want_ids FIXTURE N: the reference's first N greedy ids of prompt 0, as a JSON list.
want_ids() {
  python3 -c "import json,sys; r=json.load(open('$FIX/$1/reference.json')); print(json.dumps([s['id'] for s in r['prompts'][0]['steps'][:$2]]))"
}
prompt_text() { python3 -c "import json; print(json.load(open('$FIX/$1/reference.json'))['prompts'][0]['prompt'], end='')"; }
prompt_ids() { python3 -c "import json; print(','.join(map(str, json.load(open('$FIX/$1/reference.json'))['prompts'][0]['ids'])))"; }

expect_exit 0 "$HEARTH" generate --help
expect_exit 0 "$HEARTH" model convert --help

for f in qwen2 llama deepseek_v2 deepseek_v3; do
  want=$(want_ids "$f" 12)
  CHECK="$f: greedy --prompt equals transformers" expect_json_stdout "d['ids'] == $want" \
    "$HEARTH" generate -m "$FIX/$f" -p "$(prompt_text "$f")" -n 12 --temperature 0 --ignore-eos --json
  CHECK="$f: --prompt-ids equals the tokenized prompt" expect_json_stdout \
    "d['prompt_ids'] == [$(prompt_ids "$f")] and d['ids'] == $want" \
    "$HEARTH" generate -m "$FIX/$f" --prompt-ids "$(prompt_ids "$f")" -n 12 --temperature 0 --ignore-eos --json
  for t in f32 q8_0; do
    CHECK="$f: model convert --type $t" expect_exit 0 "$HEARTH" model convert "$FIX/$f" -o "$IT_TMP/$f-$t.gguf" --type $t
  done
  CHECK="$f: f32 GGUF (its own tokenizer) equals transformers" expect_json_stdout "d['ids'] == $want" \
    "$HEARTH" generate -m "$IT_TMP/$f-f32.gguf" -p "$(prompt_text "$f")" -n 12 --temperature 0 --ignore-eos --json
  CHECK="$f: q8_0 GGUF generates 12 tokens" expect_json_stdout "len(d['ids']) == 12" \
    "$HEARTH" generate -m "$IT_TMP/$f-q8_0.gguf" -p "$(prompt_text "$f")" -n 12 --temperature 0 --ignore-eos --json
done

J="$HEARTH generate -m $FIX/deepseek_v3 -p hello -n 6 --ignore-eos --json"
CHECK="--json: steps carry id, natural-log logprob <= 0 and --top-logprobs alternatives" expect_json_stdout \
  "len(d['steps']) == 6 and all(s['logprob'] <= 0 and len(s['top']) == 3 and s['top'][0][1] >= s['top'][1][1] for s in d['steps'])" \
  $J --temperature 0 --top-logprobs 3
CHECK="--json: greedy step logprob is the top alternative" expect_json_stdout \
  "all(s['id'] == s['top'][0][0] and abs(s['logprob'] - s['top'][0][1]) < 1e-6 for s in d['steps'])" \
  $J --temperature 0 --top-logprobs 1
CHECK="--json: timings" expect_json_stdout \
  "d['timings']['prefill_tokens'] > 0 and d['timings']['decode_tokens'] == 5 and d['timings']['threads'] >= 1" \
  $J --temperature 0
$J --temperature 1 --seed 7 >"$IT_TMP/s1.json" 2>/dev/null
CHECK="same --seed, same sampled tokens" expect_json_stdout \
  "d['ids'] == $(python3 -c "import json; print(json.load(open('$IT_TMP/s1.json'))['ids'])")" \
  $J --temperature 1 --seed 7
CHECK="q8_0 at load" expect_json_stdout "len(d['ids']) == 6" $J --quantize q8_0 --temperature 0
CHECK="text output streams to stdout" expect_exit 0 "$HEARTH" generate -m "$FIX/qwen2" -p hello -n 4

CHECK="no prompt: usage error" expect_error 2 "exactly one of --prompt and --prompt-ids" \
  "$HEARTH" generate -m "$FIX/qwen2" -n 4
CHECK="bad --prompt-ids" expect_error 1 "'x' is not a token id" "$HEARTH" generate -m "$FIX/qwen2" --prompt-ids 1,x
CHECK="id outside the vocabulary" expect_error 1 "outside the vocabulary" \
  "$HEARTH" generate -m "$FIX/qwen2" --prompt-ids 1,99999
CHECK="longer than the context" expect_error 1 "exceeds the context" \
  "$HEARTH" generate -m "$FIX/qwen2" --prompt-ids 1,2 -n 100000
CHECK="bad --top-p" expect_error 2 "top_p" "$HEARTH" generate -m "$FIX/qwen2" -p hi --top-p 1.5
if nvidia-smi -L >/dev/null 2>&1; then
  CHECK="--device cuda (GPU present): generates" expect_json_stdout "len(d['ids']) == 6" \
    $J --temperature 0 --device cuda
else
  CHECK="--device cuda without a GPU: a clear error" expect_error 1 "no usable CUDA device" \
    "$HEARTH" generate -m "$FIX/qwen2" -p hi --device cuda
fi
CHECK="--device must name cpu or cuda" expect_error 2 "--device must be cpu, cuda or cuda:N" \
  "$HEARTH" generate -m "$FIX/qwen2" -p hi --device gpu
CHECK="missing model" expect_error 1 "no such file" "$HEARTH" generate -m "$IT_TMP/nope" -p hi
CHECK="convert: unknown type" expect_error 2 "unknown GGUF type" \
  "$HEARTH" model convert "$FIX/qwen2" -o "$IT_TMP/x.gguf" --type q3_x
CHECK="convert: refuses to overwrite" expect_error 1 "exists" \
  "$HEARTH" model convert "$FIX/qwen2" -o "$IT_TMP/qwen2-f32.gguf" --type f32
finish
