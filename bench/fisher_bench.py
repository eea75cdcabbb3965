"""Speed and memory of `layerwise.core.fisher.diagonal_fisher` on CPU.

Times, in one run and on the same inputs: one batched backward of the summed per-sample losses (the unit), each
per-sample-gradient method of `diagonal_fisher`, and the plain per-sample loop (one backward per sample; timed on
`--loop-n` samples and scaled linearly to N). Peak memory vs `chunk_size` is measured in fresh subprocesses
(VmHWM after resetting it with /proc/self/clear_refs, minus VmRSS before the call). Writes a markdown table to bench/fisher_bench.md.

    python bench/fisher_bench.py [--n 256] [--repeats 3] [--loop-n 64]
"""
import argparse, json, statistics, subprocess, sys, time
from pathlib import Path
import torch, torch.nn as nn, torch.nn.functional as F
from layerwise.config import TrainConfig
from layerwise.recommender.models import SeqRecommender
from layerwise.core.fisher import diagonal_fisher, next_item_loss, _func_sq_grads, _loop_sq_grads

HERE = Path(__file__).resolve().parent


def sasrec(n_items=1682):
    "8-block SASRec, hidden 64, max_len 50 (ML-100k size), random init"
    torch.manual_seed(0)
    cfg = TrainConfig(n_layers=8, hidden=64, heads=2, inner=256, max_len=50, dropout=0.0)
    return SeqRecommender(cfg, n_items).eval()


def sasrec_data(n, n_items=1682, max_len=50):
    "Random left-padded histories of 5..max_len items and next-item targets"
    g = torch.Generator().manual_seed(0)
    h = torch.full((n, max_len), n_items)
    for i in range(n):
        k = int(torch.randint(5, max_len + 1, (1,), generator=g))
        h[i, max_len - k:] = torch.randint(0, n_items, (k,), generator=g)
    return h, torch.randint(0, n_items, (n,), generator=g)


def encoder():
    "Small batch-first nn.TransformerEncoder (2 layers, d=64, 2 heads, ff 256) with per-sample squared error"
    torch.manual_seed(0)
    return nn.TransformerEncoder(nn.TransformerEncoderLayer(64, 2, 256, dropout=0.0, batch_first=True), 2, enable_nested_tensor=False).eval()


def encoder_data(n, T=50):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, T, 64, generator=g), torch.randn(n, T, 64, generator=g)


def sse(out, t): return (out - t).square().flatten(1).sum(1)


def backward(model, x, t, loss_fn):
    model.zero_grad(); loss_fn(model(x), t).sum().backward()


def median_times(fns: dict, repeats: int) -> dict:
    "Median wall time of each function, repeats interleaved so that load changes hit all alike"
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            s = time.perf_counter(); f(); times[k].append(time.perf_counter() - s)
    return {k: statistics.median(v) for k, v in times.items()}


def time_case(name, model, x, t, loss_fn, methods, repeats, loop_n):
    "Rows of the speed table for one model"
    params = dict(model.named_parameters())
    fns = {"backward": lambda: backward(model, x, t, loss_fn)}
    for label, call in methods.items(): fns[label] = call
    fns["loop"] = lambda: _loop_sq_grads(model, params, x[:loop_n], t[:loop_n], loss_fn)
    med = median_times(fns, repeats)
    loop = med.pop("loop") * len(x) / loop_n
    rows = [dict(model=name, method="one batched backward", seconds=med["backward"], x_backward=1.0, loop_speedup=loop / med["backward"])]
    for label in methods:
        rows.append(dict(model=name, method=label, seconds=med[label], x_backward=med[label] / med["backward"], loop_speedup=loop / med[label]))
    rows.append(dict(model=name, method=f"per-sample loop (timed on {loop_n}, x{len(x) // loop_n})", seconds=loop,
                     x_backward=loop / med["backward"], loop_speedup=1.0))
    return rows


def _status_mib(key):
    "A `VmRSS`/`VmHWM` line of /proc/self/status, in MiB"
    line = next(l for l in open("/proc/self/status") if l.startswith(key + ":"))
    return int(line.split()[1]) / 1024


def memory_child(method, chunk, n):
    "Run in a subprocess: peak RSS (MiB) during one diagonal_fisher call on the SASRec, and its rise over the RSS before"
    model, (x, t) = sasrec(), sasrec_data(n)
    diagonal_fisher(model, [(x[:2], t[:2])], next_item_loss, method=method)  # warm-up: code paths, allocator
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _status_mib("VmRSS")
    diagonal_fisher(model, [(x, t)], next_item_loss, chunk_size=chunk, method=method)
    peak = _status_mib("VmHWM")
    print(json.dumps({"peak_mib": peak, "rise_mib": peak - before}))


def memory_rows(n, chunks, threads, methods=("hooks", "func")):
    rows = []
    for method in methods:
        for chunk in chunks:
            out = subprocess.run([sys.executable, __file__, "--mem", method, str(chunk), "--n", str(n), "--threads", str(threads)],
                                 capture_output=True, text=True)
            res = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {"peak_mib": float("nan"), "rise_mib": float("nan")}
            rows.append(dict(method=method, n=n, chunk_size=chunk, **res))
            print(rows[-1], flush=True)
    return rows


def table(rows, cols, fmt):
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    return head + "".join("| " + " | ".join(fmt.get(c, "{}").format(r[c]) for c in cols) + " |\n" for r in rows)


def main(args):
    torch.manual_seed(0)
    n = args.n
    model, (x, t) = sasrec(), sasrec_data(n)
    hooks = lambda: diagonal_fisher(model, [(x, t)], next_item_loss, method="hooks")
    func = lambda: diagonal_fisher(model, [(x, t)], next_item_loss, method="func", chunk_size=args.func_chunk)
    f_h, f_f = hooks(), func()  # warm-up, and check both methods agree
    agree = max(((f_h[k] - f_f[k]).norm() / f_f[k].norm().clamp_min(1e-9 * max(v.norm() for v in f_f.values()))).item() for k in f_f)
    print(f"SASRec float32: hooks vs func max relative difference {agree:.2e}", flush=True)
    hooks_c = lambda: diagonal_fisher(model, [(x, t)], next_item_loss, method="hooks", chunk_size=args.func_chunk)
    rows = time_case(f"SASRec 8x64, T=50, 1682 items, N={n}", model, x, t, next_item_loss,
                     {"diagonal_fisher hooks = auto (one chunk)": hooks, f"diagonal_fisher hooks (chunk {args.func_chunk})": hooks_c,
                      f"diagonal_fisher torch.func, eager attn + MATH (chunk {args.func_chunk})": func},
                     args.repeats, args.loop_n)
    print(table(rows, ["model", "method", "seconds", "x_backward", "loop_speedup"], {}), flush=True)

    enc, (xe, te) = encoder(), encoder_data(args.n_enc)
    params = {k: p for k, p in enc.named_parameters()}
    def func_fused():  # torch.func with PyTorch's default (fused) SDPA kernel: vmap falls back to a loop inside
        out = {k: torch.zeros_like(p) for k, p in params.items()}
        for i in range(0, len(xe), args.func_chunk):
            for k, v in _func_sq_grads(enc, params, xe[i:i + args.func_chunk], te[i:i + args.func_chunk], sse).items(): out[k] += v
    e_func = lambda: diagonal_fisher(enc, [(xe, te)], sse, chunk_size=args.func_chunk)
    e_func(); func_fused()
    rows += time_case(f"nn.TransformerEncoder 2x64, T=50, N={args.n_enc}", enc, xe, te, sse,
                      {f"diagonal_fisher auto = torch.func + MATH SDPA (chunk {args.func_chunk})": e_func,
                       f"torch.func, default fused SDPA (chunk {args.func_chunk})": func_fused},
                      args.repeats, args.loop_n)
    speed = table(rows, ["model", "method", "seconds", "x_backward", "loop_speedup"],
                  {"seconds": "{:.2f}", "x_backward": "{:.2f}", "loop_speedup": "{:.1f}"})
    print(speed, flush=True)
    mem = memory_rows(args.mem_n, args.chunks, args.threads)
    mem_t = table(mem, ["method", "n", "chunk_size", "peak_mib", "rise_mib"], {"peak_mib": "{:.0f}", "rise_mib": "{:.0f}"})
    md = (f"# diagonal_fisher benchmark (CPU, {torch.get_num_threads()} threads, torch {torch.__version__})\n\n"
          f"Shared, loaded machine: compare ratios within this run only. Median of {args.repeats} interleaved repeats. "
          f"`x_backward` = time / one batched backward of the summed per-sample losses on the same N samples (goal <= 3); "
          f"`loop_speedup` = per-sample loop time / this time (goal >= 20). SASRec hooks vs torch.func agreement (float32): "
          f"max relative difference {agree:.1e}.\n\n## Speed\n\n{speed}\n"
          f"## Peak memory vs chunk_size (SASRec, fresh process per row after a 2-sample warm-up call: peak RSS during the call (VmHWM), and its rise over the RSS before it)\n\n{mem_t}")
    (HERE/"fisher_bench.md").write_text(md)
    print(mem_t)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--n-enc", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--loop-n", type=int, default=32)
    p.add_argument("--func-chunk", type=int, default=64)
    p.add_argument("--mem-n", type=int, default=128)
    p.add_argument("--chunks", type=int, nargs="+", default=[8, 32, 128])
    p.add_argument("--mem", nargs=2, metavar=("METHOD", "CHUNK"))
    p.add_argument("--threads", type=int, default=1, help="torch threads; >1 thrashes on a loaded shared machine")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.mem: memory_child(a.mem[0], int(a.mem[1]), a.n)
    else: main(a)
