"""The per-op cost of small ops in Python PyTorch: the baseline bench/op-overhead.ts compares with.

Same ops, same shapes, same thread count and the same timing scheme as the TypeScript side (warm-up,
calibrated iteration count, median of several repeats). Results are freed by reference counting inside
the timed statement, as a Python user's code frees them. Prints JSON: {"torch": version, "threads": n,
"ops": {name: µs per op}}. bench/op-overhead.ts runs it (npm run bench:ops); alone:
/usr/bin/python3 bench/op_overhead.py [--repeats N] [--target-ms MS] [--clock wall|cpu]
"""
import argparse
import json
import statistics
import time
import timeit

import torch


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--target-ms", type=float, default=60.0, help="time of one repeat")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall", help="cpu: the process's CPU time")
    return p.parse_args()


def main():
    args = parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    env = {
        "a": torch.randn(16),
        "b": torch.randn(16),
        "m": torch.randn(64, 64),
        "x": torch.randn(16, requires_grad=True),
    }
    # One statement per op; each must match the TypeScript side's op (see OPS there).
    ops = [
        ("numel (call only)", "a.numel()"),
        ("add 16 f32", "a.add(b)"),
        ("mul scalar 16 f32", "a.mul(2.5)"),
        ("matmul 64x64", "m.matmul(m)"),
        ("sum 16 f32", "a.sum()"),
        ("relu 16 f32", "a.relu()"),
        ("view 16 -> 4x4", "a.view(4, 4)"),
        ("reshape 16 -> 2x8", "a.reshape(2, 8)"),
        ("add+sum+backward (grad)", "x.add(b).sum().backward()"),
    ]
    out = {}
    for name, stmt in ops:
        timer = timeit.Timer(stmt, timer=time.process_time if args.clock == "cpu" else time.perf_counter, globals=env)
        # Warm-up and calibration: how many iterations make one repeat of about target-ms.
        n, t = 100, 0.0
        while True:
            t = timer.timeit(n)
            if t >= 0.02:
                break
            n *= 4
        number = max(100, int(n * (args.target_ms / 1000.0) / t))
        times = timer.repeat(repeat=args.repeats, number=number)
        out[name] = statistics.median(times) / number * 1e6
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "ops": out}))


if __name__ == "__main__":
    main()
