#!/usr/bin/env python3
"""Writes a tiny but complete qwen2-architecture GGUF v3 model (random weights) for the CLI tests,
laid out as docs/formats.md ("GGUF") describes, with the metadata keys and llama.cpp tensor names
that src/model/model_spec_gguf.cpp and src/model/checkpoint.cpp expect. Written from the format
description, independently of hearth's C++ GgufWriter, so the test checks hearth against a second
implementation.

    python3 make_gguf_model.py OUT.gguf [--facts FACTS.json] [--drop-tensor NAME]
                               [--shape NAME D0,D1,...] [--drop-key KEY]

Shapes: hidden 64, 2 layers, 4 heads of 16 with 2 KV heads (GQA), ffn 128, vocab 259 (the 256 bytes
as GPT-2 byte-level tokens, ids = byte values, then <|endoftext|>, <|im_start|>, <|im_end|>), context
4096. Types: norms and biases F32, token_embd F16, every projection and output.weight Q8_0.
--facts writes what hearth should report (parameter counts, KV-cache bytes, dtypes and bytes).
--drop-tensor / --shape (a PyTorch-order shape, outermost first) / --drop-key break the file on
purpose, keeping it otherwise valid, so that the only error is the one under test.
"""
import argparse
import json
import random
import struct
import sys

# GGUF metadata value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
# ggml tensor types
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8
TYPE_NAMES = {GGML_F32: "F32", GGML_F16: "F16", GGML_Q8_0: "Q8_0"}
ALIGNMENT = 32

HIDDEN, LAYERS, HEADS, KV_HEADS, FFN, CONTEXT = 64, 2, 4, 2, 128, 4096
HEAD_DIM = HIDDEN // HEADS
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VOCAB = 256 + len(SPECIAL)


def gguf_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def encode_kv(key, vtype, value):
    out = gguf_string(key)
    if isinstance(vtype, tuple):  # (ARRAY, element type)
        elem = vtype[1]
        out += struct.pack("<IIQ", ARRAY, elem, len(value))
        return out + b"".join(encode_scalar(elem, x) for x in value)
    return out + struct.pack("<I", vtype) + encode_scalar(vtype, value)


def encode_scalar(vtype, value):
    if vtype == STRING:
        return gguf_string(value)
    fmt = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<B",
           U64: "<Q", I64: "<q", F64: "<d"}[vtype]
    return struct.pack(fmt, int(value) if vtype == BOOL else value)


def byte_level_tokens():
    """GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest map to U+0100..."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def encode_tensor(ggml_type, values):
    if ggml_type == GGML_F32:
        return struct.pack(f"<{len(values)}f", *values)
    if ggml_type == GGML_F16:
        return struct.pack(f"<{len(values)}e", *values)
    assert ggml_type == GGML_Q8_0 and len(values) % 32 == 0
    out = []
    for i in range(0, len(values), 32):  # block_q8_0: f16 scale d, 32 x int8, value = d * q
        block = values[i:i + 32]
        amax = max(abs(x) for x in block)
        d = amax / 127 if amax else 1.0
        q = [max(-127, min(127, round(x / d))) for x in block]
        out.append(struct.pack("<e32b", d, *q))
    return b"".join(out)


def tensor_bytes(ggml_type, count):
    return {GGML_F32: 4 * count, GGML_F16: 2 * count, GGML_Q8_0: count // 32 * 34}[ggml_type]


def model_tensors():
    """(gguf name, PyTorch-order shape, ggml type, kind): kind 'norm' is filled with 1.0."""
    kv = KV_HEADS * HEAD_DIM
    t = [("token_embd.weight", [VOCAB, HIDDEN], GGML_F16, "w")]
    for layer in range(LAYERS):
        b = f"blk.{layer}."
        t += [
            (b + "attn_norm.weight", [HIDDEN], GGML_F32, "norm"),
            (b + "attn_q.weight", [HEADS * HEAD_DIM, HIDDEN], GGML_Q8_0, "w"),
            (b + "attn_q.bias", [HEADS * HEAD_DIM], GGML_F32, "w"),
            (b + "attn_k.weight", [kv, HIDDEN], GGML_Q8_0, "w"),
            (b + "attn_k.bias", [kv], GGML_F32, "w"),
            (b + "attn_v.weight", [kv, HIDDEN], GGML_Q8_0, "w"),
            (b + "attn_v.bias", [kv], GGML_F32, "w"),
            (b + "attn_output.weight", [HIDDEN, HEADS * HEAD_DIM], GGML_Q8_0, "w"),
            (b + "ffn_norm.weight", [HIDDEN], GGML_F32, "norm"),
            (b + "ffn_gate.weight", [FFN, HIDDEN], GGML_Q8_0, "w"),
            (b + "ffn_up.weight", [FFN, HIDDEN], GGML_Q8_0, "w"),
            (b + "ffn_down.weight", [HIDDEN, FFN], GGML_Q8_0, "w"),
        ]
    t += [("output_norm.weight", [HIDDEN], GGML_F32, "norm"),
          ("output.weight", [VOCAB, HIDDEN], GGML_Q8_0, "w")]
    return t


def metadata(drop_keys):
    tokens = byte_level_tokens() + SPECIAL
    a = "qwen2"
    kvs = [
        ("general.architecture", STRING, a),
        ("general.name", STRING, "hearth-it-tiny-qwen2"),
        ("general.file_type", U32, 7),  # llama.cpp LLAMA_FTYPE_MOSTLY_Q8_0
        ("general.quantization_version", U32, 2),
        ("general.alignment", U32, ALIGNMENT),
        (f"{a}.block_count", U32, LAYERS),
        (f"{a}.context_length", U32, CONTEXT),
        (f"{a}.embedding_length", U32, HIDDEN),
        (f"{a}.feed_forward_length", U32, FFN),
        (f"{a}.attention.head_count", U32, HEADS),
        (f"{a}.attention.head_count_kv", U32, KV_HEADS),
        (f"{a}.rope.freq_base", F32, 1000000.0),
        (f"{a}.attention.layer_norm_rms_epsilon", F32, 1e-6),
        ("tokenizer.ggml.model", STRING, "gpt2"),
        ("tokenizer.ggml.pre", STRING, "qwen2"),
        ("tokenizer.ggml.tokens", (ARRAY, STRING), tokens),
        ("tokenizer.ggml.token_type", (ARRAY, I32), [1] * 256 + [3] * len(SPECIAL)),
        ("tokenizer.ggml.merges", (ARRAY, STRING), []),
        ("tokenizer.ggml.eos_token_id", U32, 256 + SPECIAL.index("<|im_end|>")),
        ("tokenizer.ggml.add_bos_token", BOOL, False),
    ]
    return [kv for kv in kvs if kv[0] not in drop_keys]


def facts():
    kv = KV_HEADS * HEAD_DIM
    per_layer = (2 * HIDDEN  # norms
                 + HEADS * HEAD_DIM * HIDDEN + HEADS * HEAD_DIM  # q + bias
                 + 2 * (kv * HIDDEN + kv)  # k, v + biases
                 + HIDDEN * HEADS * HEAD_DIM  # o
                 + 3 * FFN * HIDDEN)  # gate, up, down
    embedding = VOCAB * HIDDEN
    total = embedding + VOCAB * HIDDEN + HIDDEN + LAYERS * per_layer
    dtypes = {}
    for _, shape, ggml_type, _ in model_tensors():
        n = 1
        for d in shape:
            n *= d
        s = dtypes.setdefault(TYPE_NAMES[ggml_type], {"tensors": 0, "bytes": 0})
        s["tensors"] += 1
        s["bytes"] += tensor_bytes(ggml_type, n)
    return {
        "architecture": "Qwen2ForCausalLM", "layers": LAYERS, "hidden_size": HIDDEN, "vocab_size": VOCAB,
        "context_length": CONTEXT, "heads": HEADS, "kv_heads": KV_HEADS, "head_dim": HEAD_DIM,
        "parameters_total": total, "parameters_active": total - embedding,
        "kv_cache_bytes_per_token": 2 * KV_HEADS * HEAD_DIM * LAYERS * 2,  # K and V, bf16
        "dtypes": dtypes, "tensor_count": len(model_tensors()),
        "total_bytes": sum(s["bytes"] for s in dtypes.values()),
    }


def write_model(path, drop_tensors, shapes, drop_keys):
    rng = random.Random(1234)
    kvs = metadata(drop_keys)
    infos, blobs, offset = [], [], 0
    for name, shape, ggml_type, kind in model_tensors():
        if name in drop_tensors:
            continue
        n = 1
        for d in shape:
            n *= d
        values = [1.0] * n if kind == "norm" else [rng.gauss(0.0, 0.02) for _ in range(n)]
        data = encode_tensor(ggml_type, values)
        shape = shapes.get(name, shape)  # a changed shape keeps the byte count (same element count)
        dims = list(reversed(shape))  # ggml order: innermost first
        infos.append(gguf_string(name) + struct.pack(f"<I{len(dims)}QIQ", len(dims), *dims, ggml_type, offset))
        pad = -len(data) % ALIGNMENT
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    header = b"GGUF" + struct.pack("<IQQ", 3, len(infos), len(kvs))
    header += b"".join(encode_kv(*kv) for kv in kvs) + b"".join(infos)
    header += b"\0" * (-len(header) % ALIGNMENT)
    with open(path, "wb") as f:
        f.write(header)
        f.write(b"".join(blobs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--facts", help="write what hearth should report to this JSON file")
    ap.add_argument("--drop-tensor", action="append", default=[], help="leave this tensor out")
    ap.add_argument("--shape", nargs=2, action="append", default=[], metavar=("NAME", "DIMS"),
                    help="declare this tensor with another shape of the same element count")
    ap.add_argument("--drop-key", action="append", default=[], help="leave this metadata key out")
    args = ap.parse_args()
    shapes = {name: [int(x) for x in dims.split(",")] for name, dims in args.shape}
    write_model(args.out, set(args.drop_tensor), shapes, set(args.drop_key))
    if args.facts:
        with open(args.facts, "w", encoding="utf-8") as f:
            json.dump(facts(), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
