#!/usr/bin/env python3
"""Writes the safetensors fuzz seed corpus (fuzz/corpus/safetensors/): small valid files (`valid_*`,
including an FP8 weight with its block scales) and one crafted file per hardening rule of
docs/formats.md "## safetensors" (`bad_*`). Deterministic; rerun after changing it:

    python3 tools/fuzz_seeds/make_safetensors_seeds.py fuzz/corpus/safetensors

tests/model/safetensors_hardening_test.cpp checks that every valid_* seed opens and every bad_* seed
is rejected.
"""
import json
import os
import struct
import sys


def st(header, data=b"", n=None):
    """8-byte LE header length (or `n`), header, data."""
    h = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(h) if n is None else n) + h + data


def e(name, dtype, shape, begin, end):
    return '"%s":{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}' % (
        name, dtype, json.dumps(shape), begin, end)


def obj(*entries):
    return "{" + ",".join(entries) + "}"


DTYPES = [("F32", 4), ("F16", 2), ("BF16", 2), ("F64", 8), ("F8_E4M3", 1), ("F8_E5M2", 1), ("I8", 1),
          ("U8", 1), ("I16", 2), ("I32", 4), ("I64", 8), ("BOOL", 1)]


def every_dtype_entries():
    """Two elements of each dtype, each in its own 16-byte slot padded out by a U8 filler tensor."""
    out = []
    for i, (dtype, size) in enumerate(DTYPES):
        begin = 16 * i
        out.append(e("t" + dtype, dtype, [2], begin, begin + 2 * size))
        if 2 * size < 16:
            out.append(e("pad" + dtype, "U8", [16 - 2 * size], begin + 2 * size, begin + 16))
    return out


SEEDS = {
    "valid_two": st(obj(e("a", "F32", [2], 0, 8), e("b", "U8", [4], 8, 12)), bytes(range(12))),
    "valid_meta_padded": st('{"__metadata__":{"format":"pt"},' + e("w", "BF16", [2, 2], 0, 8) + "}      ",
                            bytes(8)),
    "valid_zero_size": st(obj(e("z", "F32", [0, 3], 0, 0), e("s", "I64", [], 0, 8)), bytes(8)),
    "valid_empty": st("{}      "),
    "valid_every_dtype": st(obj(*every_dtype_entries()), bytes(16 * len(DTYPES))),
    "valid_fp8_pair": st(obj(e("l.weight", "F8_E4M3", [3, 130], 0, 390),
                             e("l.weight_scale_inv", "F32", [1, 2], 390, 398)),
                         bytes([0x38] * 390) + struct.pack("<2f", 0.5, 2.0)),
    # A valid file whose FP8 pair is not: the scale should be [1, 2] (ceil(130 / 128) = 2).
    "valid_file_fp8_scale_shape_wrong": st(obj(e("l.weight", "F8_E4M3", [3, 130], 0, 390),
                                               e("l.weight_scale_inv", "F32", [1, 1], 390, 394)),
                              bytes(390) + struct.pack("<f", 1.0)),
    "bad_overlap": st(obj(e("x", "U8", [20], 0, 20), e("y", "U8", [20], 10, 30)), bytes(30)),
    "bad_hole": st(obj(e("a", "U8", [2], 0, 2), e("b", "U8", [2], 4, 6)), bytes(6)),
    "bad_trailing": st(obj(e("a", "U8", [2], 0, 2)), bytes(5)),
    "bad_past_end": st(obj(e("a", "U8", [16], 0, 16)), bytes(8)),
    "bad_nbytes": st(obj(e("a", "F32", [3, 2], 0, 20)), bytes(20)),
    "bad_dim_overflow": st(obj(e("a", "U8", [4294967296, 4294967296, 2], 0, 0))),
    "bad_size_overflow": st(obj(e("a", "F32", [4611686018427387904, 2], 0, 0))),
    "bad_too_many_dims": st(obj(e("a", "U8", [1] * 9, 0, 1)), bytes(1)),
    "bad_negative_dim": st(obj(e("a", "U8", [-1], 0, 0))),
    "bad_float_dim": st('{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,0]}}'),
    "bad_dtype": st(obj(e("a", "Q4_K", [1], 0, 1)), bytes(1)),
    "bad_duplicate": st(obj(e("a", "U8", [1], 0, 1), e("a", "U8", [1], 1, 2)), bytes(2)),
    "bad_duplicate_field": st('{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', bytes(1)),
    "bad_unknown_key": st('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":0}}', bytes(1)),
    "bad_missing_key": st('{"a":{"dtype":"U8","shape":[1]}}', bytes(1)),
    "bad_utf8_name": st(b'{"\xc3\x28":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}'),
    "bad_surrogate_name": st('{"a\\udc00":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}'),
    "bad_empty_name": st(obj(e("", "U8", [0], 0, 0))),
    "bad_nesting": st('{"__metadata__":{"k":[[[[[[[[[]]]]]]]]]}}'),
    "bad_meta_value": st('{"__metadata__":{"n":1}}'),
    "bad_not_object": st("[]"),
    "bad_not_json": st('{"a":{"dtype":"F32",'),
    "bad_header_len_past_end": st("{}", b"", n=1000),
    "bad_header_len_huge": st("{}", b"", n=0xFFFFFFFFFFFFFFFF),
    "bad_header_len_small": st("{}", b"", n=1),
    "bad_truncated": st(obj(e("a", "F32", [2], 0, 8)), bytes(8))[:-3],
    "bad_short": b"\x02\x00\x00",
    "bad_nul_in_header": st(b'{}\x00{"x":1}'),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus/safetensors"
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name + ".safetensors"), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(SEEDS), out))


if __name__ == "__main__":
    main()
