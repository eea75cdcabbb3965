"""Quality and speed of the shipped recommender configs against RecBole 1.2.1 (bench/recbole/README.md).

Trains `--config` for each seed (no time cap: the numbers describe the config, not the machine's load) to its early
stop, evaluates valid NDCG@10 and test HR/NDCG/MRR@10 with full ranking (and among 100 sampled negatives, uniform and
by popularity, when the config sets `sampled_negatives`) on our split and, with `--splits ours,recbole`, on RecBole's
own ML-100k split file, and prints a Markdown table with the time to the best checkpoint.
`--jobs N` trains N runs at a time, each in its own process (one GPU holds several); `--json` appends one line per
finished run and skips the runs it already holds, so a stopped command resumes where it stopped.

Usage: python bench/train_quality.py --config configs/sasrec_ml100k.yaml --seeds 0-2
       python bench/train_quality.py --config configs/sasrec_video.yaml --seeds 0-4 --splits ours --jobs 5 \
           --set device=cuda --json bench/results/video_quality_h200.jsonl
"""
import argparse, json, multiprocessing, os, statistics, time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
import torch
from layerwise.batch import parse_seeds
from layerwise.config import load_config
from layerwise.recommender.data import load_split, load_recbole_split
from layerwise.recommender.train import evaluate, fit, get_device, sampled_metrics
from layerwise.paths import repo_root
from layerwise.stats import describe
from layerwise.study import _ci

ROOT = repo_root()
RECBOLE_SPLIT = Path(os.environ.get("RECBOLE_SPLIT", ROOT/"bench"/"recbole"/"ml-100k_loo_recbole.tsv.gz"))


def run(config: str, seed: int, overrides: list, split_name: str, threads: int, progress=False) -> dict:
    "One training run of `config` at `seed` on split `split_name` (ours or recbole) and its quality and times"
    torch.set_num_threads(threads)
    cfg, _ = load_config(config, None, [f"seed={seed}", "max_minutes=0", *overrides])
    split = load_split(cfg) if split_name == "ours" else load_recbole_split(RECBOLE_SPLIT)
    t0 = time.time()
    model, h = fit(cfg, split, progress=progress)
    row = {"config": str(config), "overrides": overrides, "seed": seed, "split": split_name, "valid": evaluate(model, split, "valid")["NDCG@10"],
           **{f"test_{k}": v for k, v in evaluate(model, split, "test").items() if k.endswith("@10")}}
    if cfg.sampled_negatives:
        for how, m in sampled_metrics(model, split, cfg.sampled_negatives, seed).items():
            row |= {f"{how}_{k}": v for k, v in m.items() if k in ("NDCG@10", "HR@10")}
    return row | {"best_epoch": h["best_epoch"], "epochs": len(h["epochs"]), "s_per_epoch": h["seconds_per_epoch"],
                  "s_to_best": h["seconds_to_best"], "run_s": round(time.time() - t0, 1), "device": str(cfg.device),
                  "gpu": torch.cuda.get_device_name(0) if get_device(cfg.device).type == "cuda" else None}


def run_key(r: dict) -> tuple: return r["config"], tuple(r.get("overrides", [])), r["seed"], r["split"]


def read_runs(path: Path | None) -> list[dict]:
    "The runs a `--json` file holds (none if it does not exist)"
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path and path.exists() else []


def append_run(path: Path | None, row: dict):
    "Append `row` to `path` as one line in one write (a stopped command leaves whole lines only)"
    print(json.dumps(row), flush=True)
    if path:
        with path.open("a") as f: f.write(json.dumps(row) + "\n"); f.flush(); os.fsync(f.fileno())


def mean_ci(values) -> str: return _ci(describe(list(values)), ".4f")  # 'mean [95% t interval]', the mean alone for one value


def sampled(rs: list[dict]) -> str:
    "Mean sampled-protocol NDCG@10 / HR@10 (uniform; popularity negatives) of runs `rs`, '-' where not measured"
    if not all("test_sampled_uniform_NDCG@10" in r for r in rs): return "-"
    m = lambda k: statistics.mean(r[k] for r in rs)
    return "; ".join(f"{m(f'test_sampled_{h}_NDCG@10'):.4f} / {m(f'test_sampled_{h}_HR@10'):.4f}" for h in ("uniform", "popularity"))


def table(runs: list[dict]) -> str:
    """Markdown table: one row per (config, overrides, split) with test metrics as mean [95% t interval] over seeds, the
    time to the best checkpoint, and the paired difference in test NDCG@10 to the first row of the same config and split
    (mean over their common seeds [95% t interval])"""
    groups, first = {}, {}
    for r in runs: groups.setdefault(run_key(r)[:2] + (r["split"],), {})[r["seed"]] = r
    lines = ["| config | split | seeds | test NDCG@10 | test HR@10 | test MRR@10 | valid NDCG@10 | best epoch | s to best | paired diff NDCG@10 | sampled NDCG@10 / HR@10, uniform; popularity |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for config, overrides, split in sorted(groups, key=lambda k: len(k[1])):  # the config as shipped (fewest overrides) first
        rs = groups[config, overrides, split]
        base = groups[first.setdefault((config, split), (config, overrides, split))]
        common = sorted(set(rs) & set(base))
        diff = mean_ci(rs[s]["test_NDCG@10"] - base[s]["test_NDCG@10"] for s in common) if base is not rs and common else "-"
        name, rs = Path(config).name + (f" {' '.join(overrides)}" if overrides else ""), list(rs.values())
        lines.append(f"| {name} | {split} | {len(rs)} | " + " | ".join(mean_ci(r[k] for r in rs) for k in ("test_NDCG@10", "test_HR@10", "test_MRR@10", "valid"))
                     + f" | {min(r['best_epoch'] for r in rs)}-{max(r['best_epoch'] for r in rs)} | {statistics.mean(r['s_to_best'] for r in rs):.0f} | {diff} | {sampled(rs)} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/sasrec_ml100k.yaml")
    ap.add_argument("--seeds", default="0-2", help="e.g. 0-4 or 0,2,5 (default: %(default)s)")
    ap.add_argument("--splits", default="ours,recbole", help="ours and/or recbole (RecBole's ML-100k split file; default: %(default)s)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value (repeatable)")
    ap.add_argument("--jobs", type=int, default=1, help="runs at a time, one process each (default: %(default)s)")
    ap.add_argument("--progress", action="store_true", help="a progress bar per run (on stderr)")
    ap.add_argument("--json", type=Path, help="append each finished run here; runs already there are not run again")
    ap.add_argument("--table", action="store_true", help="run nothing: print the table of every run in --json")
    args = ap.parse_args(argv)
    if args.table: return print(table(read_runs(args.json)))
    if "recbole" in args.splits.split(",") and load_config(args.config, None, args.overrides)[0].dataset != "ml-100k" and "RECBOLE_SPLIT" not in os.environ:
        ap.error(f"{args.config}: not an ML-100k config, and RecBole's split file is ML-100k's (use --splits ours, or RECBOLE_SPLIT=<its file>)")
    todo = [(args.config, s, args.overrides, split) for s in parse_seeds(args.seeds) for split in args.splits.split(",")]
    done = {run_key(r) for r in read_runs(args.json)}
    todo = [t for t in todo if (t[0], tuple(t[2]), t[1], t[3]) not in done]
    threads = max(1, (os.cpu_count() or 1) // max(1, args.jobs))
    finished = []
    if args.jobs <= 1:
        for t in todo: finished.append(run(*t, threads, args.progress)); append_run(args.json, finished[-1])
    else:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:  # spawn: CUDA in each worker
            for f in as_completed([pool.submit(run, *t, threads, args.progress) for t in todo]): finished.append(f.result()); append_run(args.json, finished[-1])
    runs = [r for r in read_runs(args.json) if run_key(r)[:2] == (args.config, tuple(args.overrides))] if args.json else finished
    print("\n" + table(runs))


if __name__ == "__main__": main()
