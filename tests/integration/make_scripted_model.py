#!/usr/bin/env python3
"""Writes a tiny Qwen2-architecture checkpoint whose greedy output is a fixed script of token ids.

Every layer's weights are zero, so the hidden state is the current token's embedding. Each token of
the chain (the prompt's last token, then the script) gets its own one-hot embedding dimension, and the
lm_head row of its successor reads that dimension: greedy decoding walks the chain whatever the rest
of the prompt is, and the last script token leads to `eos`. Tokens must be distinct (a successor model
cannot repeat one). stdlib only: safetensors written by hand (bf16).

usage: make_scripted_model.py OUT_DIR TOKENIZER_DIR EOS_ID START_ID ID [ID ...]
"""
import json
import os
import shutil
import struct
import sys


def main():
    out, tok_dir, eos, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    script = [int(x) for x in sys.argv[5:]]
    chain = [start] + script + [eos]
    if len(set(chain)) != len(chain):
        sys.exit("make_scripted_model: the chain repeats a token: %s" % chain)
    vocab, hidden, inter, heads, kv_heads = 151936, 64, 128, 4, 2
    head_dim = hidden // heads
    if len(chain) > hidden:
        sys.exit("make_scripted_model: chain longer than the hidden size")
    os.makedirs(out, exist_ok=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tok_dir, f), os.path.join(out, f))
    config = {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": hidden,
        "intermediate_size": inter, "num_hidden_layers": 1, "num_attention_heads": heads,
        "num_key_value_heads": kv_heads, "vocab_size": vocab, "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "bos_token_id": 151643, "eos_token_id": eos,
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": [eos], "do_sample": False}, f)

    one, four = b"\x80\x3f", b"\x80\x40"  # bf16 1.0, 4.0 (little-endian)
    embed = bytearray(vocab * hidden * 2)
    head = bytearray(vocab * hidden * 2)
    for dim, tok in enumerate(chain[:-1]):
        o = (tok * hidden + dim) * 2
        embed[o:o + 2] = one
        nxt = chain[dim + 1]
        o = (nxt * hidden + dim) * 2
        head[o:o + 2] = four
    ones = one * hidden
    L = "model.layers.0."
    tensors = [
        ("model.embed_tokens.weight", [vocab, hidden], bytes(embed)),
        (L + "input_layernorm.weight", [hidden], ones),
        (L + "self_attn.q_proj.weight", [heads * head_dim, hidden], bytes(heads * head_dim * hidden * 2)),
        (L + "self_attn.q_proj.bias", [heads * head_dim], bytes(heads * head_dim * 2)),
        (L + "self_attn.k_proj.weight", [kv_heads * head_dim, hidden], bytes(kv_heads * head_dim * hidden * 2)),
        (L + "self_attn.k_proj.bias", [kv_heads * head_dim], bytes(kv_heads * head_dim * 2)),
        (L + "self_attn.v_proj.weight", [kv_heads * head_dim, hidden], bytes(kv_heads * head_dim * hidden * 2)),
        (L + "self_attn.v_proj.bias", [kv_heads * head_dim], bytes(kv_heads * head_dim * 2)),
        (L + "self_attn.o_proj.weight", [hidden, heads * head_dim], bytes(hidden * heads * head_dim * 2)),
        (L + "post_attention_layernorm.weight", [hidden], ones),
        (L + "mlp.gate_proj.weight", [inter, hidden], bytes(inter * hidden * 2)),
        (L + "mlp.up_proj.weight", [inter, hidden], bytes(inter * hidden * 2)),
        (L + "mlp.down_proj.weight", [hidden, inter], bytes(hidden * inter * 2)),
        ("model.norm.weight", [hidden], ones),
        ("lm_head.weight", [vocab, hidden], bytes(head)),
    ]
    header, offset = {}, 0
    for name, shape, data in tensors:
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, _, data in tensors:
            f.write(data)


if __name__ == "__main__":
    main()
