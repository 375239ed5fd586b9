"""The peer of bench/train-step.ts: one LoRA training step of a Llama with transformers + peft, timed.

The same model shapes, LoRA (r=16, alpha=16, dropout 0 on q,k,v,o,gate,up,down), AdamW on the adapters,
one fixed batch of random tokens, warm-up, per-step timing ended by the one torch.cuda.synchronize, losses
kept on the device and read after the timing, and the same JSON fields, so that bench/train-step.sh can
put both in one table. Attention is SDPA; --compile wraps the PEFT model in torch.compile; adapters are
PEFT's default float32 (autocast_adapter_dtype=True) or, with --adapter-dtype bfloat16, left in the base
dtype (autocast_adapter_dtype=False) and cast to it.

  python3 bench/train_step.py --config 1.1b --batch 4 --seq 2048 [--adapter-dtype bfloat16] [--compile]
        [--gradient-checkpointing] [--out FILE]
  python3 bench/train_step.py --init-from DIR ...   (a folder from `node dist/bench/train-step.js --save-init DIR`)
"""

import argparse
import json
import math
import os
import platform
import resource
import statistics
import sys
import time

import torch

# The benchmark's model shapes, in config.json's key names (the same table as train-step.ts's).
PRESETS = {
    "tiny": dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=512),
    "demo": dict(hidden_size=128, intermediate_size=352, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, vocab_size=128),
    "30m": dict(hidden_size=512, intermediate_size=1376, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4, vocab_size=8000),
    "100m": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=12, vocab_size=8000),
    "125m": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=12, vocab_size=32000),
    "1.1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4, vocab_size=32000),
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32, vocab_size=32000),
}
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def hf_config(name, seq, init_std=None):
    if name not in PRESETS:
        raise SystemExit(f"train_step.py: unknown --config '{name}'; one of {', '.join(PRESETS)}")
    return dict(
        architectures=["LlamaForCausalLM"],
        **PRESETS[name],
        hidden_act="silu",
        max_position_embeddings=max(2048, seq),
        rms_norm_eps=1e-5,
        rope_theta=10000,
        initializer_range=0.02 if init_std is None else init_std,
        tie_word_embeddings=False,
        attention_bias=False,
        mlp_bias=False,
        bos_token_id=1,
        eos_token_id=2,
    )


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="tiny", choices=list(PRESETS))
    p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=list(DTYPES), default=None, help="default: bfloat16 on CUDA, float32 on the CPU")
    p.add_argument("--adapter-dtype", choices=list(DTYPES), default="float32")
    p.add_argument("--compile", action="store_true", help="torch.compile the PEFT model")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init-std", type=float, default=None)
    p.add_argument("--init-from", default=None)
    p.add_argument("--label", default=None)
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    if a.steps < 1 or a.seq < 2 or a.batch < 1:
        p.error("--steps >= 1, --seq >= 2 and --batch >= 1 are needed")
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device {a.device}, but this PyTorch ({torch.__version__}) sees no GPU")
    if a.dtype is None:
        a.dtype = "bfloat16" if a.device.startswith("cuda") else "float32"
    return a


def lora_config():
    from peft import LoraConfig

    return LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, target_modules=TARGET_MODULES, task_type="CAUSAL_LM")


def build(a):
    """The PEFT model, the batch and the config."""
    from peft import PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(a.seed)
    dtype = DTYPES[a.dtype]
    autocast = a.adapter_dtype == "float32"
    if a.init_from:
        with open(os.path.join(a.init_from, "config.json")) as f:
            config = json.load(f)
        about = os.path.join(a.init_from, "bench.json")
        if os.path.exists(about):
            with open(about) as f:
                a.config = json.load(f).get("config", a.config)
        model = AutoModelForCausalLM.from_pretrained(a.init_from, dtype=dtype, attn_implementation="sdpa").to(a.device)
        model.train()
        peft_model = PeftModel.from_pretrained(
            model, os.path.join(a.init_from, "adapter"), is_trainable=True, autocast_adapter_dtype=autocast
        )
        from safetensors.torch import load_file

        ids = load_file(os.path.join(a.init_from, "input_ids.safetensors"))["input_ids"].to(a.device)
        if tuple(ids.shape) != (a.batch, a.seq):
            print(f"train_step.py: the batch in {a.init_from} is {ids.shape[0]}x{ids.shape[1]}; using it (not {a.batch}x{a.seq})")
        a.batch, a.seq = ids.shape
    else:
        config = hf_config(a.config, a.seq, a.init_std)
        with torch.device(a.device):  # random weights made on the device, not on the CPU and moved
            model = AutoModelForCausalLM.from_config(LlamaConfig(**config), dtype=dtype, attn_implementation="sdpa")
        peft_model = get_peft_model(model, lora_config(), autocast_adapter_dtype=autocast)
        ids = torch.randint(0, config["vocab_size"], (a.batch, a.seq), device=a.device)
    adapter_dtype = DTYPES[a.adapter_dtype]
    with torch.no_grad():
        for p in peft_model.parameters():
            if p.requires_grad and p.dtype != adapter_dtype:
                p.data = p.data.to(adapter_dtype)
    if a.gradient_checkpointing:
        peft_model.get_base_model().gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    peft_model.train()
    return peft_model, ids, config


def param_counts(model):
    """Weights of frozen matmuls (4 FLOPs per token: forward and the input's gradient) and trainable parameters (6)."""
    frozen = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear) and not m.weight.requires_grad)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return frozen, trainable


def variant_name(a):
    flags = ["grad-ckpt"] if a.gradient_checkpointing else []
    ad = {"float32": "fp32-adapters", "bfloat16": "bf16-adapters"}.get(a.adapter_dtype, f"{a.adapter_dtype}-adapters")
    return flags, a.label or " ".join(["peft", "compile" if a.compile else "eager", ad, *flags])


def run(a, r):
    on_cuda = a.device.startswith("cuda")
    peft_model, ids, config = build(a)
    r.update(config=f"{a.config}(init)" if a.init_from else a.config, batch=int(a.batch), seq=int(a.seq))
    frozen, trainable = param_counts(peft_model)
    flops_per_token = 4 * frozen + 6 * trainable + 12 * config["num_hidden_layers"] * int(a.seq) * config["hidden_size"]
    r.update(frozen_matmul_params=frozen, trainable_params=trainable, flops_per_token=flops_per_token)

    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=a.lr)
    fwd = torch.compile(peft_model) if a.compile else peft_model

    def step():
        loss = fwd(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    def sync():
        if on_cuda:
            torch.cuda.synchronize()

    losses = [step() for _ in range(a.warmup)]
    sync()
    if on_cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        losses.append(step())
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    peak = torch.cuda.max_memory_allocated() if on_cuda else None
    values = torch.stack(losses).float().cpu().tolist()  # read once, after the timing
    ms = statistics.median(times)
    tps = a.batch * a.seq / (ms / 1e3)
    r.update(
        ms_per_step=ms,
        tokens_per_s=tps,
        peak_gib=None if peak is None else peak / 2**30,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
        tflops=flops_per_token * tps / 1e12,
        losses=values,
        loss_first=values[0],
        loss_last=values[-1],
    )


def fmt(x, d):
    if x is None or not math.isfinite(x):
        return "n/a"
    if x != 0 and abs(x) < 1 and d <= 1:
        return f"{x:.3g}"
    return f"{x:.{d}f}"


def main(argv):
    a = parse_args(argv)
    flags, variant = variant_name(a)
    on_cuda = a.device.startswith("cuda")
    r = dict(
        impl="peft",
        variant=variant,
        config=a.config,
        batch=a.batch,
        seq=a.seq,
        device=a.device,
        device_name=torch.cuda.get_device_name() if on_cuda else (platform.processor() or "cpu"),
        dtype=a.dtype,
        adapter_dtype=a.adapter_dtype,
        compile=a.compile,
        gradient_checkpointing=a.gradient_checkpointing,
        flags=flags,
        steps=a.steps,
        warmup=a.warmup,
        ms_per_step=None,
        tokens_per_s=None,
        peak_gib=None,
        peak_rss_mib=None,
        threads=torch.get_num_threads(),
        tflops=None,
        frozen_matmul_params=None,
        trainable_params=None,
        flops_per_token=None,
        losses=[],
        loss_first=None,
        loss_last=None,
        init_from=a.init_from,
        torch=torch.__version__,
        error=None,
    )
    code = 0
    try:
        run(a, r)
        if not (len(r["losses"]) >= 2 and r["loss_last"] < r["loss_first"]):
            r["error"] = f"loss did not fall ({fmt(r['loss_first'], 4)} -> {fmt(r['loss_last'], 4)})"
            code = 3
    except torch.OutOfMemoryError as e:
        r["error"] = "OOM: " + str(e).split("\n")[0][:200]
        code = 2
    except Exception as e:  # reported in the table rather than lost in a traceback
        r["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
        code = 2
    print("| impl | variant | config | batch x seq | tokens/s | ms/step | peak GiB | TFLOP/s | loss step 0 | loss last |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {r['impl']} | {r['variant']} | {r['config']} | {r['batch']}x{r['seq']} | {fmt(r['tokens_per_s'], 0)} | "
        f"{fmt(r['ms_per_step'], 1)} | {fmt(r['peak_gib'], 2)} | {fmt(r['tflops'], 1)} | {fmt(r['loss_first'], 4)} | "
        f"{fmt(r['loss_last'], 4)} |" + (f" {r['error']} |" if r["error"] else "")
    )
    if r["losses"]:
        print("losses: " + " ".join(f"{v:.4f}" for v in r["losses"]))
    line = json.dumps(r)
    print(line, flush=True)
    if a.out:
        with open(a.out, "a") as f:
            f.write(line + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
