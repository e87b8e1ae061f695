#!/usr/bin/env bash
# hearth plan end to end: the issue's JSON form (DeepSeek-V3 FP8 on H100 needs more than one node), a
# config.json path (R1-Distill-Qwen-7B BF16 fits one 80 GB GPU), the table, the HTML report,
# calibration from a bench JSON, the GPU list, and clear errors.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init

expect_exit 0 "$HEARTH" plan --help
CHECK="--list-gpus lists the catalog" expect_exit 0 "$HEARTH" plan --list-gpus
check "the catalog has H100, H20, MI300X and Ascend 910B" grep -q "ascend-910b" "$IT_OUT"

CHECK="deepseek-v3 fp8 on h100-80g --json: weights, KV, GPUs, nodes, TP and TCO; more than one node" \
  expect_json_stdout 'd["weights_bytes"] > 600e9 and d["kv_bytes_per_token"] == 70272 and d["gpus"] >= 16 and d["nodes"] >= 2 and d["tensor_parallel"] == 8 and len(d["tco"]["forms"]) == 3' \
  "$HEARTH" plan --model deepseek-v3 --precision fp8 --gpu h100-80g --json

CHECK="R1-Distill-Qwen-7B from its config.json: BF16 fits one 80 GB GPU" \
  expect_json_stdout 'd["gpus_per_replica"] == 1 and abs(d["weights_bytes"] - 15.23e9) < 0.1e9' \
  "$HEARTH" plan --model "$ROOT/tests/fixtures/configs/deepseek-r1-distill-qwen-7b.json" --gpu h100-sxm --json

CHECK="the table shows the replica, the fleet and the TCO" expect_exit 0 "$HEARTH" plan --model r1-distill-llama-70b \
  --gpu a100-80g --html "$IT_TMP/plan.html"
check "table: TCO over 3 years, three forms" grep -q "private cloud" "$IT_OUT"
check "the HTML report has a chart" grep -q "<svg" "$IT_TMP/plan.html"

printf '%s\n' '{"completed": 64, "concurrency": 16, "output_tokens_per_s": 400.0, "tpot": {"p50": 0.03},' \
  '"input_len": 128, "output_len": 256}' >"$IT_TMP/bench.json"
CHECK="--calibrate with a bench JSON reports the factor" expect_json_stdout \
  '0 < d["calibration_factor"] < 1 and any("calibrated" in n for n in d["notes"])' \
  "$HEARTH" plan --model r1-distill-qwen-7b --gpu h100-sxm --calibrate "$IT_TMP/bench.json" --json

CHECK="unknown GPU: exit 2 listing the catalog" expect_error 2 "h100-sxm" "$HEARTH" plan --model deepseek-v3 --gpu tpu
CHECK="unknown model: exit 1 listing the presets" expect_error 1 "r1-distill-qwen-7b" "$HEARTH" plan --model nope
CHECK="bad precision: exit 2" expect_error 2 "fp4" "$HEARTH" plan --model deepseek-v3 --precision fp4
CHECK="no model: exit 2" expect_error 2 "--model" "$HEARTH" plan
finish
