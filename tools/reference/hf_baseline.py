#!/usr/bin/env python3
"""HF transformers baseline for bench/gpu/run.sh: the same synthesized model, bf16, eager attention.

Prints one JSON object per measurement (the shape gpu_bench prints): batch-1 greedy decode tokens/s and
static-batch output tokens/s (equal-length prompts, all sequences generate the same number of tokens).
Usage: hf_baseline.py MODEL_DIR LABEL [--decode-tokens N] [--batch B --batch-in I --batch-out O]
"""
import argparse
import json
import time

import torch
from transformers import AutoModelForCausalLM


def timed_generate(model, ids, new_tokens):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                         min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
    torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("label")
    ap.add_argument("--decode-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, nargs="*", default=[64])
    ap.add_argument("--batch-in", type=int, default=128)
    ap.add_argument("--batch-out", type=int, default=64)
    a = ap.parse_args()
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16, device_map="cuda",
                                                 attn_implementation="eager")
    model.eval()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        ids = torch.randint(10, vocab - 10, (1, 16), generator=g).cuda()
        timed_generate(model, ids, 8)  # warm-up
        _, secs = timed_generate(model, ids, a.decode_tokens)
        print(json.dumps({"label": a.label, "what": "hf_decode_b1", "tokens": a.decode_tokens,
                          "tok_per_s": round(a.decode_tokens / secs, 1)}), flush=True)
        for b in a.batch:
            ids = torch.randint(10, vocab - 10, (b, a.batch_in), generator=g).cuda()
            _, secs = timed_generate(model, ids, a.batch_out)
            print(json.dumps({"label": a.label, "what": "hf_batch", "batch": b, "in": a.batch_in,
                              "out": a.batch_out, "output_tok_per_s": round(b * a.batch_out / secs, 1)}),
                  flush=True)


if __name__ == "__main__":
    main()
