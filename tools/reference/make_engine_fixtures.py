#!/usr/bin/env python3
"""Reference fixtures for the engine (issue #3): small random-weight models of each architecture in
HF layout, with greedy continuations and top-5 logprobs computed by transformers in float32 on CPU.

    python3 tools/reference/make_engine_fixtures.py OUT_DIR

Writes OUT_DIR/<name>/{config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
reference.json} for qwen2, llama, deepseek_v2, deepseek_v3, plus deepseek_v3_fp8 (the V3 model's
linear weights in HF's fine-grained FP8 layout: F8_E4M3 weights with 128x128 `weight_scale_inv`; its
reference is the same model with the FP8 weights dequantized back to float32, i.e. what a weight-only
FP8 path must compute). reference.json: {"prompts": [{"prompt", "ids", "steps": [{"id", "logprob",
"top": [[id, logprob] x5]}]}]}, logprobs = natural-log softmax of the last position's logits.
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOK_DIR = os.path.join(ROOT, "tests/fixtures/engine/tokenizer")
PROMPTS = ["Hello, world! The quick brown fox", "深度求索 DeepSeek 2026-11-28: 12345", "def f(x):\n    return x * 2",
           "<｜User｜>What is 2+2?<｜Assistant｜>"]
STEPS = 24
COMMON = dict(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=3, max_position_embeddings=512,
              rms_norm_eps=1e-6, tie_word_embeddings=False, initializer_range=0.15, bos_token_id=0, eos_token_id=1)


def build(name):
    from transformers import (DeepseekV2Config, DeepseekV2ForCausalLM, DeepseekV3Config, DeepseekV3ForCausalLM,
                              LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM)
    if name == "qwen2":
        cfg = Qwen2Config(**COMMON, num_attention_heads=4, num_key_value_heads=2,
                          rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
        return Qwen2ForCausalLM(cfg)
    if name == "llama":
        cfg = LlamaConfig(**COMMON, num_attention_heads=4, num_key_value_heads=2,
                          rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                           "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                           "original_max_position_embeddings": 64})
        return LlamaForCausalLM(cfg)
    mla = dict(num_attention_heads=4, num_key_value_heads=4, kv_lora_rank=32, qk_nope_head_dim=16,
               qk_rope_head_dim=8, v_head_dim=16, moe_intermediate_size=32, n_routed_experts=8,
               num_experts_per_tok=2, first_k_dense_replace=1)
    if name == "deepseek_v2":
        cfg = DeepseekV2Config(**COMMON, **mla, q_lora_rank=None, n_shared_experts=2, topk_method="greedy",
                               n_group=1, topk_group=1, norm_topk_prob=False, routed_scaling_factor=1.0,
                               rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                                                "original_max_position_embeddings": 128, "beta_fast": 32.0,
                                                "beta_slow": 1.0, "mscale": 0.707, "mscale_all_dim": 0.707})
        return DeepseekV2ForCausalLM(cfg)
    cfg = DeepseekV3Config(**COMMON, **mla, q_lora_rank=32, n_shared_experts=1, topk_method="noaux_tc", n_group=4,
                           topk_group=2, norm_topk_prob=True, routed_scaling_factor=2.5,
                           rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                                            "original_max_position_embeddings": 128, "beta_fast": 32.0,
                                            "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0})
    return DeepseekV3ForCausalLM(cfg)


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.dim() == 1:  # norms, biases, correction biases: not the trivial init
                p.copy_((1.0 if "norm" in n else 0.0) + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))
        for n, b in model.named_buffers():
            if "e_score_correction_bias" in n:
                b.copy_(0.1 * torch.randn(b.shape, generator=g))


def reference(model, tok):
    out = []
    for prompt in PROMPTS:
        ids = [tok.token_to_id("<｜begin▁of▁sentence｜>")] + tok.encode(prompt, add_special_tokens=False).ids
        seq = list(ids)
        steps = []
        with torch.no_grad():
            for _ in range(STEPS):
                logits = model(torch.tensor([seq])).logits[0, -1].double()
                lp = torch.log_softmax(logits, dim=-1)
                top = torch.topk(lp, 5)
                nxt = int(top.indices[0])
                steps.append({"id": nxt, "logprob": float(lp[nxt]),
                              "top": [[int(i), float(v)] for i, v in zip(top.indices, top.values)]})
                seq.append(nxt)
        out.append({"prompt": prompt, "ids": ids, "steps": steps})
    return {"prompts": out, "dtype": "float32", "engine": "transformers (CPU, eager)"}


def to_fp8(src_dir, dst_dir, model):
    """HF fine-grained FP8: every 2-D linear weight inside the layers -> F8_E4M3 + 128x128 scale_inv."""
    os.makedirs(dst_dir, exist_ok=True)
    sd = load_file(os.path.join(src_dir, "model.safetensors"))
    out, deq = {}, {}
    for name, w in sd.items():
        if w.dim() == 2 and ".layers." in name and "norm" not in name and not name.endswith("mlp.gate.weight"):
            rows, cols = w.shape
            scale = torch.ones(((rows + 127) // 128, (cols + 127) // 128), dtype=torch.float32)
            q = torch.empty_like(w, dtype=torch.float8_e4m3fn)
            back = torch.empty_like(w)
            for bi in range(scale.shape[0]):
                for bj in range(scale.shape[1]):
                    blk = w[bi * 128:(bi + 1) * 128, bj * 128:(bj + 1) * 128]
                    amax = blk.abs().max().clamp(min=1e-12)
                    s = amax / 448.0
                    qb = (blk / s).to(torch.float8_e4m3fn)
                    q[bi * 128:(bi + 1) * 128, bj * 128:(bj + 1) * 128] = qb
                    back[bi * 128:(bi + 1) * 128, bj * 128:(bj + 1) * 128] = qb.float() * s
                    scale[bi, bj] = s
            out[name] = q
            out[name + "_scale_inv"] = scale
            deq[name] = back
        else:
            out[name] = w
            deq[name] = w
    save_file(out, os.path.join(dst_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(src_dir, "config.json")) as f:
        cfg = json.load(f)
    cfg["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                  "weight_block_size": [128, 128]}
    with open(os.path.join(dst_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    # The reference model is the FP8 checkpoint dequantized to float32, loaded through from_pretrained so
    # that transformers maps the per-expert tensor names onto its own (possibly fused) expert layout.
    from transformers import DeepseekV3ForCausalLM
    tmp = dst_dir + ".f32"
    os.makedirs(tmp, exist_ok=True)
    save_file(deq, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump({k: v for k, v in cfg.items() if k != "quantization_config"}, f, indent=2)
    ref_model = DeepseekV3ForCausalLM.from_pretrained(tmp, dtype=torch.float32).eval()
    shutil.rmtree(tmp)
    return ref_model


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    tok = Tokenizer.from_file(os.path.join(TOK_DIR, "tokenizer.json"))
    assert tok.get_vocab_size(with_added_tokens=True) == COMMON["vocab_size"], "fixture tokenizer ids collide"
    assert tok.token_to_id("<｜begin▁of▁sentence｜>") == 0
    for i, name in enumerate(["qwen2", "llama", "deepseek_v2", "deepseek_v3"]):
        d = os.path.join(out, name)
        model = build(name).float().eval()
        randomize(model, 1000 + i)
        model.save_pretrained(d, safe_serialization=True)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(TOK_DIR, f), d)
        ref = reference(model, tok)
        with open(os.path.join(d, "reference.json"), "w") as f:
            json.dump(ref, f)
        print(name, "ok;", sum(p.numel() for p in model.parameters()), "params; first continuation",
              [s["id"] for s in ref["prompts"][0]["steps"]][:8], flush=True)
        if name == "deepseek_v3":
            d8 = os.path.join(out, "deepseek_v3_fp8")
            model = to_fp8(d, d8, model)
            for f in ("tokenizer.json", "tokenizer_config.json"):
                shutil.copy(os.path.join(TOK_DIR, f), d8)
            ref = reference(model, tok)
            ref["note"] = "weights dequantized from FP8 to float32; activations float32"
            with open(os.path.join(d8, "reference.json"), "w") as f:
                json.dump(ref, f)
            print("deepseek_v3_fp8 ok", flush=True)


if __name__ == "__main__":
    main()
