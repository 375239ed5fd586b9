"""The Python PyTorch baseline of bench/train-cpu.ts: LoRA training steps of a small Llama on the CPU.

/usr/bin/python3 here has torch 1.13 and neither transformers nor peft, so the model is written out in
plain PyTorch the way transformers' modeling_llama builds it (RMSNorm, rotary embeddings with
rotate_half, grouped-query attention, SwiGLU MLP, untied lm_head, the shifted-label causal-LM loss), and
the LoRA layer the way peft's lora.Linear computes it: base_layer(x) + lora_B(lora_A(dropout(x)))·scaling
with the base weight frozen. torch 1.13 has no F.scaled_dot_product_attention, so attention is the
composite (q·kᵀ·scale, causal mask, softmax, ·v) that transformers' eager attention computes.

Weights come from a folder bench/train-cpu.ts wrote (--save-init): config.json, model.safetensors,
adapter/adapter_model.safetensors and input_ids.safetensors, read with the small safetensors reader
below, so both sides start from identical weights and batch.

A step is forward, loss, backward, optimizer step, zero_grad(set_to_none=True), timed as the TypeScript
side times its own. With --serve (how bench/train-cpu.ts runs it) the script steps on request, one step
per 'step' line on stdin, answering one JSON line each, so that the two sides' steps can alternate and
see the same machine load. Alone, it runs --warmup steps, then --steps timed steps, and prints a summary.
Run: /usr/bin/python3 bench/llama_lora_cpu.py --init DIR [--steps N] [--warmup N] [--threads N] [--serve]
"""
import argparse
import json
import os
import statistics
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- safetensors: an 8-byte little-endian header length, a JSON header, then the raw tensor bytes ----

DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32}


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = bytearray(data[8 + n :])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in DTYPES:
            raise ValueError(f"{path}: tensor {name} has dtype {info['dtype']}, which this reader does not handle")
        start, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        count = (end - start) // torch.tensor([], dtype=dtype).element_size()
        t = torch.frombuffer(body, dtype=dtype, count=count, offset=start) if count else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


# ---- the model: transformers' Llama, written out ----


class LlamaRMSNorm(nn.Module):
    def __init__(self, hidden, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.to(torch.float32)
        variance = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(variance + self.eps)
        return self.weight * x.to(dtype)


class LlamaRotaryEmbedding(nn.Module):
    def __init__(self, head_dim, theta):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    @torch.no_grad()
    def forward(self, x, position_ids):
        freqs = position_ids.float().unsqueeze(-1) * self.inv_freq  # [B, S, D/2]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    cos = cos.unsqueeze(1)
    sin = sin.unsqueeze(1)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


class LlamaAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.num_heads = c["num_attention_heads"]
        self.num_kv = c["num_key_value_heads"]
        self.head_dim = c.get("head_dim") or c["hidden_size"] // self.num_heads
        self.scaling = self.head_dim**-0.5
        h = c["hidden_size"]
        self.q_proj = nn.Linear(h, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(h, self.num_kv * self.head_dim, bias=False)
        self.v_proj = nn.Linear(h, self.num_kv * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, h, bias=False)

    def forward(self, x, cos, sin, causal):
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.num_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.num_kv, self.head_dim).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        groups = self.num_heads // self.num_kv
        if groups > 1:  # repeat_kv
            k = k.repeat_interleave(groups, dim=1)
            v = v.repeat_interleave(groups, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) * self.scaling
        scores = scores.masked_fill(~causal, float("-inf"))
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, s, -1)
        return self.o_proj(out)


class LlamaMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, i = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = LlamaAttention(c)
        self.mlp = LlamaMLP(c)
        self.input_layernorm = LlamaRMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.post_attention_layernorm = LlamaRMSNorm(c["hidden_size"], c["rms_norm_eps"])

    def forward(self, x, cos, sin, causal):
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, causal)
        return h + self.mlp(self.post_attention_layernorm(h))


class LlamaModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([LlamaDecoderLayer(c) for _ in range(c["num_hidden_layers"])])
        self.norm = LlamaRMSNorm(c["hidden_size"], c["rms_norm_eps"])
        head_dim = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
        rope = c.get("rope_parameters") or {}
        self.rotary_emb = LlamaRotaryEmbedding(head_dim, rope.get("rope_theta", c.get("rope_theta", 10000.0)))

    def forward(self, input_ids):
        b, s = input_ids.shape
        h = self.embed_tokens(input_ids)
        position_ids = torch.arange(s).unsqueeze(0)
        cos, sin = self.rotary_emb(h, position_ids)
        causal = torch.ones(s, s, dtype=torch.bool).tril()
        for layer in self.layers:
            h = layer(h, cos, sin, causal)
        return self.norm(h)


class LlamaForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.model = LlamaModel(c)
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)

    def forward(self, input_ids, labels):
        logits = self.lm_head(self.model(input_ids)).float()
        # transformers' ForCausalLMLoss: labels padded with one ignored position and shifted left
        shift = F.pad(labels, (0, 1), value=-100)[:, 1:].reshape(-1)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), shift, ignore_index=-100)


# ---- LoRA: peft's lora.Linear forward, base frozen ----


class LoraLinear(nn.Module):
    def __init__(self, base, r, alpha, dropout):
        super().__init__()
        self.base_layer = base
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        self.scaling = alpha / r

    def forward(self, x):
        return self.base_layer(x) + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling


def inject_lora(model, targets, r, alpha, dropout):
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in targets and isinstance(child, nn.Linear):
                setattr(module, child_name, LoraLinear(child, r, alpha, dropout))
    for n, p in model.named_parameters():
        p.requires_grad_(".lora_A." in n or ".lora_B." in n)


def load_weights(model, init_dir):
    base = load_safetensors(os.path.join(init_dir, "model.safetensors"))
    adapter = load_safetensors(os.path.join(init_dir, "adapter", "adapter_model.safetensors"))
    own = dict(model.named_parameters())
    wanted = set(own)
    with torch.no_grad():
        for k, t in base.items():
            name = k if k in own else k.replace(".weight", ".base_layer.weight")
            if name not in own:
                raise KeyError(f"model.safetensors: no parameter for {k}")
            own[name].copy_(t)
            wanted.discard(name)
        for k, t in adapter.items():
            # base_model.model.<path>.lora_A.weight -> <path>.lora_A.weight
            name = k[len("base_model.model.") :] if k.startswith("base_model.model.") else k
            if name not in own:
                raise KeyError(f"adapter_model.safetensors: no parameter for {k}")
            own[name].copy_(t)
            wanted.discard(name)
    if wanted:
        raise KeyError(f"parameters not in the init files: {sorted(wanted)[:5]}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--init", required=True, help="folder written by train-cpu.js --save-init")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--serve", action="store_true", help="step on request: one line 'step' on stdin -> one JSON line on stdout ('exit' ends)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    with open(os.path.join(args.init, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(args.init, "adapter", "adapter_config.json")) as f:
        acfg = json.load(f)
    model = LlamaForCausalLM(config)
    inject_lora(model, set(acfg["target_modules"]), acfg["r"], acfg["lora_alpha"], acfg["lora_dropout"])
    load_weights(model, args.init)
    model.train()
    input_ids = load_safetensors(os.path.join(args.init, "input_ids.safetensors"))["input_ids"]
    batch, seq = input_ids.shape

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr)
    info = {
        "impl": "python",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": batch,
        "seq": seq,
        "trainable_params": sum(p.numel() for p in params),
        "total_params": sum(p.numel() for p in model.parameters()),
    }

    def step():
        """One step: the loss, its wall and CPU milliseconds, and the wall milliseconds of its phases."""
        c0 = time.process_time()
        t0 = time.perf_counter()
        loss = model(input_ids, input_ids)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        c1 = time.process_time()
        return {
            "loss": float(loss),
            "ms": (t3 - t0) * 1e3,
            "cpu_ms": (c1 - c0) * 1e3,
            "phases": {"forward": (t1 - t0) * 1e3, "backward": (t2 - t1) * 1e3, "optimizer": (t3 - t2) * 1e3},
        }

    if args.serve:
        print(json.dumps({"ready": True, **info}), flush=True)
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "step":
                print(json.dumps(step()), flush=True)
            elif cmd == "exit":
                return
            else:
                raise SystemExit(f"llama_lora_cpu.py --serve: unknown command {cmd!r} (expected 'step' or 'exit')")
        return

    warm = [step() for _ in range(args.warmup)]
    timed = [step() for _ in range(args.steps)]
    ms = statistics.median(s["ms"] for s in timed)
    summary = {
        **info,
        "steps": args.steps,
        "warmup": args.warmup,
        "ms_per_step": ms,
        "cpu_ms_per_step": statistics.median(s["cpu_ms"] for s in timed),
        "tokens_per_s": batch * seq / (ms / 1e3),
        "phases": {k: statistics.median(s["phases"][k] for s in timed) for k in ("forward", "backward", "optimizer")},
        "losses": [s["loss"] for s in warm + timed],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
