#!/usr/bin/python3
"""Loads a torch.save file with PyTorch's own torch.load(weights_only=True) (the loader that refuses
anything but tensors and plain containers) and prints JSON: the loaded object's type, whether every zip
entry's CRC checks (zipfile.testzip), and every tensor's dtype, shape and values.

    /usr/bin/python3 test/interop/torch_load.py FILE
"""
import json
import sys
import zipfile

import torch


def main(path):
    obj = torch.load(path, weights_only=True)
    with zipfile.ZipFile(path) as z:
        bad = z.testzip()
        names = z.namelist()
    tensors = {
        k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape), "values": v.reshape(-1).tolist()}
        for k, v in obj.items()
    }
    print(json.dumps({
        "type": type(obj).__module__ + "." + type(obj).__name__,
        "crcOk": bad is None,
        "records": names,
        "keys": list(obj.keys()),
        "tensors": tensors,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
