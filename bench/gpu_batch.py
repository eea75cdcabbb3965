"""Multi-GPU batch speedup: the same `layerwise batch` run on one GPU and on N GPUs, timed by wall clock.

Each pass plans the batch into its own fresh folder under `--root`, with its own empty checkpoint cache (neither pass
reuses the other's trained models), and runs it with `layerwise.batch.run_batch(gpus=...)`: one Dask worker per GPU,
one run at a time each, kernels with cpus / GPUs threads. The 1-GPU pass uses the first of the N GPUs. Per run it
keeps the seconds and the worker's CUDA_VISIBLE_DEVICES and nvidia-smi line (the run outcome, as in done.json).
speedup = 1-GPU wall / N-GPU wall; ideal = runs / ceil(runs / N), the speedup if all runs took equally long and
nothing else took time (N workers finish the runs in ceil(runs / N) rounds).
Usage: python bench/gpu_batch.py distill --seeds 0-4 --preset quick --gpus all --root /tmp/gpu_bench --json gpu_batch.json
"""
import argparse, json, math, os, tempfile, time
from pathlib import Path
from layerwise.batch import parse_gpus, parse_grid, parse_params, plan_batch, run_batch


def run_pass(args, gpus: list[str]) -> dict:
    "Plan the batch of `args` into a fresh folder under `args.root` and run it on `gpus`; wall seconds and runs"
    out = Path(tempfile.mkdtemp(dir=args.root, prefix=f"{len(gpus)}gpu_"))
    b = plan_batch(args.experiment, args.seeds, parse_params(args.params), parse_grid(args.grid), args.preset, out)
    for s in b.runs: s.cache = str(out/"cache")
    t0 = time.time()
    outcomes = run_batch(b, gpus=gpus)
    wall = round(time.time() - t0, 2)
    runs = [{"folder": Path(o["folder"]).relative_to(b.folder).as_posix(), "status": o["status"], "seconds": o["seconds"],
             "cuda_visible_devices": o["worker"]["cuda_visible_devices"], "gpu": o["worker"]["gpu"]} for o in outcomes]
    used = sorted({r["cuda_visible_devices"] for r in runs})
    return {"gpus": gpus, "out": str(b.folder), "wall_seconds": wall, "gpus_used": used,
            "failed": sum(r["status"] != "done" for r in runs), "runs": runs}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("experiment", help="name in nbs/experiments/ or path to a notebook")
    p.add_argument("--seeds", default="0-4", help="seeds of the batch (default: %(default)s)")
    p.add_argument("--preset", choices=["quick", "full"])
    p.add_argument("-p", dest="params", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2")
    p.add_argument("--gpus", default="all", help="GPUs of the second pass: all or N (default: %(default)s)")
    p.add_argument("--root", default="gpu_bench", help="folder for the two passes' batches (default: %(default)s)")
    p.add_argument("--json", help="write the measurements here")
    p.add_argument("--devices", help=argparse.SUPPRESS)  # testing: these comma-separated ids instead of the visible GPUs
    args = p.parse_args()
    gpus = parse_gpus(args.gpus, args.devices.split(",") if args.devices else None)
    if len(gpus) < 2: p.error(f"needs at least 2 GPUs to compare, got {gpus}")
    Path(args.root).mkdir(parents=True, exist_ok=True)
    passes = [run_pass(args, gpus[:1]), run_pass(args, gpus)]
    n = len(passes[0]["runs"])
    res = {"experiment": args.experiment, "seeds": args.seeds, "preset": args.preset, "params": args.params, "grid": args.grid,
           "cpus": os.cpu_count(), "runs": n, "passes": passes, "speedup": round(passes[0]["wall_seconds"] / passes[1]["wall_seconds"], 2),
           "ideal_speedup": round(n / math.ceil(n / len(gpus)), 2), "ideal": "runs / ceil(runs / GPUs): equal runs, no overhead"}
    for q in passes:
        print(f"{len(q['gpus'])} GPU(s) {','.join(q['gpus'])}: {q['wall_seconds']:.1f} s wall, used {','.join(q['gpus_used'])}, "
              f"{q['failed']} failed  ({q['out']})")
        for r in q["runs"]: print(f"  {r['folder']:<40} {r['seconds']:8.1f} s  {r['status']:<6} CUDA_VISIBLE_DEVICES={r['cuda_visible_devices']}  {r['gpu']}")
    print(f"speedup {res['speedup']}x on {len(gpus)} GPUs; ideal {res['ideal_speedup']}x ({res['ideal']})")
    if args.json: Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__": main()
