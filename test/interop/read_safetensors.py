#!/usr/bin/python3
"""Reads a .safetensors file the way the reference implementation checks it, with its own parser (the
`safetensors` package is not needed), and prints JSON: the metadata, the layout facts a test asserts
(header length a multiple of 8, data aligned, offsets tiling the data in file order) and every tensor's
dtype, shape and values (as PyTorch reads them with torch.frombuffer).

    /usr/bin/python3 test/interop/read_safetensors.py FILE
"""
import json
import struct
import sys

import torch

DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}


def main(path):
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    text = blob[8 : 8 + n].decode("utf-8")
    header = json.loads(text)
    meta = header.pop("__metadata__", None)
    data = blob[8 + n :]
    order = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"])
    pos, tiled = 0, True
    for _, info in order:
        begin, end = info["data_offsets"]
        tiled = tiled and begin == pos
        pos = end
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        raw = data[begin:end]
        t = torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        t = t.reshape(info["shape"])
        tensors[name] = {"dtype": info["dtype"], "shape": list(t.shape), "values": t.reshape(-1).tolist()}
    print(json.dumps({
        "metadata": meta,
        "headerLength": n,
        "startsWithBrace": text.startswith("{"),
        "tiled": tiled and pos == len(data),
        "fileOrder": [name for name, _ in order],
        "tensors": tensors,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
