#!/usr/bin/env python3
"""Baseline for bench/tokenizer/tokenizer_bench.cpp: HF `tokenizers` (Rust) on the identical text.

    python3 bench/tokenizer/hf_tokenizers_bench.py TOKENIZER_DIR [--mb 10] [--runs 5] [--json FILE]

Modes as the C++ bench: one string (1 thread), line by line (1 thread: encode() in a loop), and
encode_batch over all lines (rayon, all cores).
"""
import argparse
import json
import os
import statistics
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tokenizer_dir")
    ap.add_argument("--corpus", default=os.path.join(ROOT, "tests/fixtures/tokenizer/corpus.jsonl"))
    ap.add_argument("--mb", type=float, default=10)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    import tokenizers

    with open(a.corpus, encoding="utf-8") as f:
        lines = [json.loads(l) for l in f if l.strip()]
    block = "\n".join(lines)
    text, all_lines = block, list(lines)
    while len(text.encode("utf-8")) < a.mb * 1e6:
        text += "\n" + block
        all_lines += lines
    mb = len(text.encode("utf-8")) / 1e6
    t0 = time.perf_counter()
    tok = tokenizers.Tokenizer.from_file(os.path.join(a.tokenizer_dir, "tokenizer.json"))
    load_s = time.perf_counter() - t0
    single, by_line, batch = [], [], []
    n_tokens = 0
    for r in range(a.runs + 1):
        s = time.perf_counter()
        n_tokens = len(tok.encode(text, add_special_tokens=False).ids)
        if r:
            single.append(mb / (time.perf_counter() - s))
    for _ in range(a.runs):
        s = time.perf_counter()
        for l in all_lines:
            tok.encode(l, add_special_tokens=False)
        by_line.append(mb / (time.perf_counter() - s))
    for _ in range(a.runs):
        s = time.perf_counter()
        tok.encode_batch(all_lines, add_special_tokens=False)
        batch.append(mb / (time.perf_counter() - s))
    res = {"tokenizer": a.tokenizer_dir, "tokenizers_version": tokenizers.__version__, "load_s": load_s, "text_mb": mb,
           "tokens": n_tokens, "single_mb_s": statistics.median(single), "by_line_mb_s": statistics.median(by_line),
           "batch_parallel_mb_s": statistics.median(batch), "cpus": os.cpu_count()}
    print(json.dumps(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
