#!/usr/bin/env python3
"""Rewrites a safetensors file with one deliberate defect for the CLI tests, keeping everything else
valid (docs/formats.md, "safetensors"), so that the error hearth reports is the one under test.

    python3 edit_safetensors.py IN OUT drop NAME          # remove a tensor and its bytes; the later
                                                          # data_offsets move down (no hole)
    python3 edit_safetensors.py IN OUT shape NAME D0,D1   # declare another shape of the same size
    python3 edit_safetensors.py IN OUT dtype NAME DTYPE   # declare another dtype of the same size
    python3 edit_safetensors.py IN OUT keep NAME          # keep only that tensor (a second shard)
    python3 edit_safetensors.py IN OUT copy               # no defect: a control for the rewriting
    python3 edit_safetensors.py IN OUT list               # print the tensor names, in data order

The header is written back compactly and space-padded to a multiple of 8, as the reference writer does.
"""
import json
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n].decode("utf-8"))
    return header, data[8 + n:]


def write(path, header, buffer):
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + buffer)


def by_offset(header):
    names = [k for k in header if k != "__metadata__"]
    return sorted(names, key=lambda k: header[k]["data_offsets"][0])


def drop(header, buffer, names):
    """Removes the tensors and their bytes, moving the later data_offsets down so no hole is left."""
    for name in names:
        begin, end = header.pop(name)["data_offsets"]
        for k in by_offset(header):
            b, e = header[k]["data_offsets"]
            if b >= end:
                header[k]["data_offsets"] = [b - (end - begin), e - (end - begin)]
        buffer = buffer[:begin] + buffer[end:]
    return header, buffer


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    src, out, op, args = argv[1], argv[2], argv[3], argv[4:]
    header, buffer = read(src)
    if op == "list":
        print("\n".join(by_offset(header)))
        return 0
    if op == "copy":
        write(out, header, buffer)
        return 0
    name = args[0]
    if name not in header:
        sys.exit(f"{src}: no tensor {name!r}")
    entry = header[name]
    if op == "drop":
        header, buffer = drop(header, buffer, [name])
    elif op == "keep":
        header, buffer = drop(header, buffer, [k for k in by_offset(header) if k != name])
    elif op == "shape":
        entry["shape"] = [int(x) for x in args[1].split(",")]
    elif op == "dtype":
        entry["dtype"] = args[1]
    else:
        sys.exit(f"unknown operation {op!r}")
    write(out, header, buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
