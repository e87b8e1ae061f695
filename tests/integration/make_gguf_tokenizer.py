#!/usr/bin/env python3
"""Writes a header-only GGUF v3 file holding a Hugging Face tokenizer as tokenizer.ggml.* metadata,
laid out as llama.cpp's convert_hf_to_gguf does (docs/formats.md, "GGUF" and "Tokenizer metadata").
Written from the format description, independently of hearth's C++ GgufWriter, so the CLI test checks
hearth against a second implementation.

    python3 make_gguf_tokenizer.py TOKENIZER_DIR PRE OUT.gguf [--drop KEY]...

TOKENIZER_DIR holds tokenizer.json (+ tokenizer_config.json); PRE is the tokenizer.ggml.pre name
(deepseek-v3, qwen2, llama-bpe, ...). --drop leaves a key out (to test the error for a missing key).
"""
import argparse
import json
import os
import struct
import sys

# GGUF metadata value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
# llama.cpp token types
NORMAL, CONTROL, USER_DEFINED, UNUSED = 1, 3, 4, 5


def gguf_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def encode_value(vtype, value):
    if vtype == STRING:
        return gguf_string(value)
    if vtype == BOOL:
        return struct.pack("<B", 1 if value else 0)
    if vtype == U32:
        return struct.pack("<I", value)
    if vtype == I32:
        return struct.pack("<i", value)
    raise ValueError(f"unsupported value type {vtype}")


def encode_array(elem_type, items):
    out = [struct.pack("<IQ", elem_type, len(items))]
    if elem_type == I32:
        out.append(struct.pack(f"<{len(items)}i", *items))
    else:
        out.extend(encode_value(elem_type, x) for x in items)
    return b"".join(out)


def token_content(tok):
    """tokenizer_config.json spells special tokens as a string or an AddedToken object."""
    if isinstance(tok, dict):
        return tok.get("content")
    return tok


def template_starts_with_special(post):
    """True when a post-processor's single-sequence template begins with a special token (Llama 3
    adds BOS this way rather than through add_bos_token)."""
    if not isinstance(post, dict):
        return False
    if post.get("type") == "Sequence":
        return any(template_starts_with_special(p) for p in post.get("processors", []))
    if post.get("type") == "TemplateProcessing":
        single = post.get("single") or []
        return bool(single) and "SpecialToken" in single[0]
    return False


def build_metadata(tok_dir, pre):
    with open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    cfg = {}
    cfg_path = os.path.join(tok_dir, "tokenizer_config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
    model = tj["model"]
    if model.get("type") != "BPE":
        raise SystemExit(f"{tok_dir}/tokenizer.json: model.type {model.get('type')!r} is not BPE")

    vocab = model["vocab"]
    added = tj.get("added_tokens", [])
    n = max([i + 1 for i in vocab.values()] + [a["id"] + 1 for a in added])
    tokens = [None] * n
    types = [UNUSED] * n
    for text, i in vocab.items():
        tokens[i], types[i] = text, NORMAL
    for a in added:
        tokens[a["id"]] = a["content"]
        types[a["id"]] = CONTROL if a.get("special") else USER_DEFINED
    for i in range(n):
        if tokens[i] is None:
            tokens[i] = f"[PAD{i}]"
    merges = [m if isinstance(m, str) else f"{m[0]} {m[1]}" for m in model.get("merges", [])]
    ids = {t: i for i, t in enumerate(tokens)}

    kvs = [
        ("general.architecture", STRING, "tokenizer-only"),
        ("general.name", STRING, os.path.basename(os.path.normpath(tok_dir))),
        ("tokenizer.ggml.model", STRING, "gpt2"),
        ("tokenizer.ggml.pre", STRING, pre),
        ("tokenizer.ggml.tokens", (ARRAY, STRING), tokens),
        ("tokenizer.ggml.token_type", (ARRAY, I32), types),
        ("tokenizer.ggml.merges", (ARRAY, STRING), merges),
    ]
    bos = token_content(cfg.get("bos_token"))
    eos = token_content(cfg.get("eos_token"))
    if bos in ids:
        kvs.append(("tokenizer.ggml.bos_token_id", U32, ids[bos]))
    if eos in ids:
        kvs.append(("tokenizer.ggml.eos_token_id", U32, ids[eos]))
    add_bos = cfg.get("add_bos_token")
    if not isinstance(add_bos, bool):
        add_bos = bos in ids and template_starts_with_special(tj.get("post_processor"))
    kvs.append(("tokenizer.ggml.add_bos_token", BOOL, add_bos))
    kvs.append(("tokenizer.ggml.add_eos_token", BOOL, cfg.get("add_eos_token") is True))
    if isinstance(cfg.get("chat_template"), str):
        kvs.append(("tokenizer.chat_template", STRING, cfg["chat_template"]))
    return kvs


def write_gguf(path, kvs):
    parts = [b"GGUF", struct.pack("<IQQ", 3, 0, len(kvs))]
    for key, vtype, value in kvs:
        parts.append(gguf_string(key))
        if isinstance(vtype, tuple):
            parts.append(struct.pack("<I", ARRAY))
            parts.append(encode_array(vtype[1], value))
        else:
            parts.append(struct.pack("<I", vtype))
            parts.append(encode_value(vtype, value))
    data = b"".join(parts)
    data += b"\0" * (-len(data) % 32)  # pad to the default alignment: no tensors follow
    with open(path, "wb") as f:
        f.write(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tokenizer_dir")
    ap.add_argument("pre")
    ap.add_argument("out")
    ap.add_argument("--drop", action="append", default=[], help="leave this metadata key out")
    args = ap.parse_args()
    kvs = [kv for kv in build_metadata(args.tokenizer_dir, args.pre) if kv[0] not in args.drop]
    write_gguf(args.out, kvs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
