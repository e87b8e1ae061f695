#!/usr/bin/env python3
"""Writes the GGUF fuzz seed corpus (fuzz/corpus/gguf/): small valid files (every metadata type,
nested arrays, a tokenizer, one tensor of each supported ggml type) and one crafted file per
hardening rule of docs/formats.md "## GGUF". Deterministic; rerun after changing it:

    python3 tools/fuzz_seeds/make_gguf_seeds.py fuzz/corpus/gguf
"""
import os
import random
import struct
import sys

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
SCALAR_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<B",
              U64: "<Q", I64: "<q", F64: "<d"}

# ggml type id -> (block elements, block bytes)
GGML = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q5_0": (6, 32, 22),
        "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "Q2_K": (10, 256, 84), "Q3_K": (11, 256, 110),
        "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176), "Q6_K": (14, 256, 210), "I8": (24, 1, 1),
        "I16": (25, 1, 2), "I32": (26, 1, 4), "I64": (27, 1, 8), "F64": (28, 1, 8), "BF16": (30, 1, 2)}


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def value(t, v):
    if t == STRING:
        return gstr(v)
    if t == ARRAY:
        et, items = v
        out = struct.pack("<IQ", et, len(items))
        return out + b"".join(value(et, x) for x in items)
    return struct.pack(SCALAR_FMT[t], v)


def kv(key, t, v):
    return gstr(key) + struct.pack("<I", t) + value(t, v)


def tensor_info(name, dims, ggml_type, offset):
    out = gstr(name) + struct.pack("<I", len(dims))
    out += b"".join(struct.pack("<Q", d) for d in dims)
    return out + struct.pack("<IQ", ggml_type, offset)


def pad(b, a=32):
    return b + b"\0" * (-len(b) % a)


def gguf(kvs, tensors=(), version=3, alignment=32):
    """kvs: list of encoded kv bytes; tensors: list of (name, dims, ggml_type, data bytes)."""
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    data, infos = b"", b""
    for name, dims, t, payload in tensors:
        infos += tensor_info(name, dims, t, len(data))
        data = pad(data + payload, alignment)
    return pad(head + infos, alignment) + data


def random_block(rng, ggml_name, n_blocks=1):
    tid, be, bb = GGML[ggml_name]
    raw = bytearray(rng.randbytes(bb * n_blocks))
    return tid, be, bytes(raw)


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(42)
    arch = kv("general.architecture", STRING, "llama")
    seeds = {}

    # ---- valid files ----
    seeds["valid_minimal.gguf"] = gguf([arch])
    seeds["valid_v2.gguf"] = gguf([arch], version=2)
    seeds["valid_all_value_types.gguf"] = gguf([
        arch, kv("u8", U8, 7), kv("i8", I8, -7), kv("u16", U16, 700), kv("i16", I16, -700), kv("u32", U32, 7 << 20),
        kv("i32", I32, -(7 << 20)), kv("f32", F32, 1.5), kv("bool", BOOL, 1), kv("u64", U64, 1 << 40),
        kv("i64", I64, -(1 << 40)), kv("f64", F64, 0.25), kv("str", STRING, "héllo"),
        kv("arr.f32", ARRAY, (F32, [1.0, 2.0])), kv("arr.bool", ARRAY, (BOOL, [0, 1])),
        kv("arr.nested", ARRAY, (ARRAY, [(U32, [1, 2]), (STRING, ["a", "b"]), (ARRAY, [(I8, [-1])])])),
        kv("arr.empty", ARRAY, (STRING, [])),
    ])
    tokens = ["<s>", "</s>", "Ġ", "h", "e", "he", "Ġhe", "你"]
    seeds["valid_tokenizer.gguf"] = gguf([
        kv("general.architecture", STRING, "deepseek2"), kv("tokenizer.ggml.model", STRING, "gpt2"),
        kv("tokenizer.ggml.pre", STRING, "deepseek-v3"), kv("tokenizer.ggml.tokens", ARRAY, (STRING, tokens)),
        kv("tokenizer.ggml.token_type", ARRAY, (I32, [3, 3, 1, 1, 1, 1, 1, 1])),
        kv("tokenizer.ggml.merges", ARRAY, (STRING, ["h e", "Ġ he"])),
        kv("tokenizer.ggml.scores", ARRAY, (F32, [0.0] * 8)),
        kv("tokenizer.ggml.bos_token_id", U32, 0), kv("tokenizer.ggml.eos_token_id", U32, 1),
        kv("tokenizer.ggml.add_bos_token", BOOL, 1), kv("tokenizer.ggml.add_eos_token", BOOL, 0),
        kv("tokenizer.chat_template", STRING, "{% for m in messages %}{{ m.content }}{% endfor %}"),
    ])
    for name in GGML:
        be = GGML[name][1]
        rows = 2 if be == 256 else 1
        elems = be if be > 1 else 8
        tid, _, payload = random_block(rng, name, rows if be > 1 else 8)
        seeds[f"valid_tensor_{name.lower()}.gguf"] = gguf([arch], [("w", [elems, rows], tid, payload)])
    seeds["valid_alignment64.gguf"] = gguf(
        [kv("general.alignment", U32, 64), arch],
        [("a", [3], 0, b"\0" * 12), ("b", [4, 2], 1, b"\1" * 16)], alignment=64)

    # ---- malformed files (one per hardening rule) ----
    ok_tensor = gguf([arch], [("w", [8], 0, b"\0" * 32)])
    seeds["bad_truncated.gguf"] = ok_tensor[:len(ok_tensor) - 5]
    seeds["bad_magic.gguf"] = b"GGML" + ok_tensor[4:]
    seeds["bad_version1.gguf"] = b"GGUF" + struct.pack("<III", 1, 0, 0)
    seeds["bad_big_endian.gguf"] = b"GGUF" + struct.pack(">IQQ", 3, 0, 0)
    seeds["bad_huge_tensor_count.gguf"] = b"GGUF" + struct.pack("<IQQ", 3, 1 << 60, 0)
    seeds["bad_huge_kv_count.gguf"] = b"GGUF" + struct.pack("<IQQ", 3, 0, (1 << 64) - 1)
    seeds["bad_huge_array.gguf"] = gguf([gstr("a") + struct.pack("<IIQ", ARRAY, U64, 1 << 61)])
    seeds["bad_string_past_end.gguf"] = gguf([gstr("s") + struct.pack("<IQ", STRING, 1 << 40) + b"abc"])
    seeds["bad_utf8_key.gguf"] = gguf([kv(b"k\xc0\xaf", U32, 1)])
    seeds["bad_utf8_tensor_name.gguf"] = gguf([arch], [(b"w\xff", [8], 0, b"\0" * 32)])
    seeds["bad_value_type.gguf"] = gguf([gstr("x") + struct.pack("<II", 13, 0)])
    seeds["bad_array_element_type.gguf"] = gguf([gstr("x") + struct.pack("<IIQ", ARRAY, 77, 0)])
    seeds["bad_bool.gguf"] = gguf([gstr("b") + struct.pack("<IB", BOOL, 2)])
    deep = struct.pack("<I", ARRAY) + struct.pack("<IQ", ARRAY, 1) * 9 + struct.pack("<IQ", U8, 1) + b"\1"
    seeds["bad_deep_nesting.gguf"] = gguf([gstr("deep") + deep])
    seeds["bad_duplicate_key.gguf"] = gguf([arch, arch])
    seeds["bad_duplicate_tensor.gguf"] = gguf([arch], [("w", [8], 0, b"\0" * 32), ("w", [8], 0, b"\0" * 32)])
    for label, a in (("48", 48), ("0", 0), ("huge", 1 << 21)):
        seeds[f"bad_alignment_{label}.gguf"] = gguf([kv("general.alignment", U32, a)])
    seeds["bad_alignment_u64.gguf"] = gguf([kv("general.alignment", U64, 32)])

    def one_tensor(dims, t, offset, data_len):
        head = b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + arch + tensor_info("w", dims, t, offset)
        return pad(head) + b"\0" * data_len

    seeds["bad_ndims_0.gguf"] = one_tensor([], 0, 0, 32)
    seeds["bad_ndims_5.gguf"] = one_tensor([1] * 5, 0, 0, 32)
    seeds["bad_zero_dim.gguf"] = one_tensor([8, 0], 0, 0, 32)
    seeds["bad_huge_dim.gguf"] = one_tensor([1 << 63], 0, 0, 32)
    seeds["bad_dims_overflow.gguf"] = one_tensor([1 << 32, 1 << 32, 2], 0, 0, 32)
    seeds["bad_dims_times_size_overflow.gguf"] = one_tensor([1 << 31, 1 << 31], 0, 0, 32)
    seeds["bad_ragged_block.gguf"] = one_tensor([33, 2], 2, 0, 64)
    seeds["bad_ggml_type.gguf"] = one_tensor([256], 16, 0, 256)
    seeds["bad_misaligned_offset.gguf"] = one_tensor([8], 0, 4, 64)
    seeds["bad_offset_past_end.gguf"] = one_tensor([8], 0, 32, 32)
    seeds["bad_offset_overflow.gguf"] = one_tensor([8], 0, (1 << 64) - 32, 32)
    head = b"GGUF" + struct.pack("<IQQ", 3, 2, 0) + tensor_info("a", [16], 0, 0) + tensor_info("b", [8], 0, 32)
    seeds["bad_overlap.gguf"] = pad(head) + b"\0" * 64
    seeds["bad_tokens_u32.gguf"] = gguf([kv("tokenizer.ggml.model", STRING, "gpt2"),
                                         kv("tokenizer.ggml.tokens", ARRAY, (U32, [1, 2]))])
    seeds["bad_token_id.gguf"] = gguf([kv("tokenizer.ggml.model", STRING, "gpt2"),
                                       kv("tokenizer.ggml.tokens", ARRAY, (STRING, ["a", "b"])),
                                       kv("tokenizer.ggml.eos_token_id", U32, 2)])

    for name, data in sorted(seeds.items()):
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus/gguf")
