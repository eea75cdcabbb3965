"""One training step of a shipped model, eager vs `torch.compile`: seconds per step (forward and backward of the loss,
AdamW step) measured as ratios in one run, to see how much of a GPU step is kernel-launch overhead.

Variants, each on the same 32 batches of training windows (cycled; the first pass is the warm-up, so compilation and
re-compilation for new shapes are not timed):
- `eager`: the library's `train_loss` (item scores only where there is a target: the number of scored positions
  varies from batch to batch);
- `compiled`: the same loss under `torch.compile` (default mode, shapes marked dynamic); a variant whose compilation
  fails is recorded with its error;
- `eager_static`: the loss over every position with padding ignored (`ignore_index`), one shape for every batch;
- `graphs_static`: that static loss under `torch.compile(mode="reduce-overhead")` (CUDA graphs replay the step's
  kernels with one launch; needs one shape).
Usage: python bench/compile_step.py --config configs/sasrec8_video.yaml --device cuda --json bench/results/compile_step.json
"""
import argparse, json, os, statistics, subprocess, time
from functools import partial
import numpy as np, torch
from layerwise.config import load_config
from layerwise.recommender.data import load_split
from layerwise.recommender.models import SeqRecommender
from layerwise.recommender.train import seed_everything, train_windows


def step_seconds(cfg, n_items, loss, batches, device, passes: int) -> tuple[float, float]:
    "(median seconds per step over `passes` timed passes through `batches` after one warm-up pass, the last loss)"
    seed_everything(0); model = SeqRecommender(cfg, n_items).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    fn = loss(model)
    def step(b):
        out = fn(b); opt.zero_grad(set_to_none=True); out.backward(); opt.step(); return out
    times = []
    for p in range(passes + 1):
        for b in batches:
            if device.type == "cuda": torch.cuda.synchronize()
            t = time.perf_counter(); out = step(b)
            if device.type == "cuda": torch.cuda.synchronize()
            if p: times.append(time.perf_counter() - t)
    return statistics.median(times), float(out.detach())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/sasrec8_video.yaml")
    p.add_argument("--model", help="override the config's model (sasrec, bert4rec)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batches", type=int, default=32)
    p.add_argument("--passes", type=int, default=2, help="timed passes through the batches (default: %(default)s)")
    p.add_argument("--variants", default="eager,compiled,eager_static,graphs_static")
    p.add_argument("--json", help="append the result to this JSON-lines file")
    a = p.parse_args(argv)
    losses = {"eager": lambda m: m.train_loss,
              "compiled": lambda m: torch.compile(m.train_loss, dynamic=True),
              "eager_static": lambda m: partial(m.train_loss, every_position=True),  # one shape: every position scored
              "graphs_static": lambda m: torch.compile(partial(m.train_loss, every_position=True), mode="reduce-overhead")}
    variants = a.variants.split(",")
    if set(variants) - set(losses): p.error(f"--variants: unknown {sorted(set(variants) - set(losses))} (known: {', '.join(losses)})")
    device = torch.device(a.device)
    cfg, _ = load_config(a.config, None, [f"device={a.device}", *([f"model={a.model}"] if a.model else [])])
    split = load_split(cfg)
    windows = train_windows(split, cfg.max_len, np.random.default_rng(0), cfg.window_stride)
    order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(0))
    batches = [windows[order[i * cfg.batch_size:(i + 1) * cfg.batch_size]].to(device) for i in range(a.batches)]
    out = {}
    for v in variants:
        t0 = time.time()
        try: s, last = step_seconds(cfg, split.n_items, losses[v], batches, device, a.passes)
        except Exception as e:  # a compiler that fails on this model is a result too
            out[v] = {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"}; print(f"{v}: failed: {out[v]['error']}", flush=True); continue
        out[v] = {"step_s": s, "last_loss": last, "wall_s": time.time() - t0}
        print(f"{v}: {s * 1e3:.2f} ms per step (last loss {last:.4f}; {out[v]['wall_s']:.0f} s with warm-up)", flush=True)
    timed = {v: r["step_s"] for v, r in out.items() if "step_s" in r}
    ratios = {f"{v}_over_eager": timed["eager"] / t for v, t in timed.items() if v != "eager" and "eager" in timed}
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    commit = os.environ.get("LAYERWISE_COMMIT") or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    row = {"config": a.config, "model": cfg.model, "n_layers": cfg.n_layers, "batch_size": cfg.batch_size, "device": a.device, "gpu": gpu,
           "torch": torch.__version__, "commit": commit, "variants": out, "speedup": ratios}
    print(json.dumps(ratios, indent=1))
    if a.json:
        with open(a.json, "a") as f: f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
