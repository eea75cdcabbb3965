"""Quality and speed of the shipped recommender configs against RecBole 1.2.1 (bench/recbole/README.md).

Trains `--config` for each seed (no time cap: the numbers describe the config, not the machine's load), evaluates
valid/test NDCG@10 with full ranking on our split and on RecBole's own split file, and prints a Markdown table with
time-to-best-checkpoint. Usage: python bench/train_quality.py --config configs/sasrec_ml100k.yaml --seeds 0 1 2
"""
import argparse, json, os, statistics, time
from pathlib import Path
from layerwise.config import load_config
from layerwise.recommender.data import load_split, load_recbole_split
from layerwise.recommender.train import fit, evaluate
from layerwise.paths import repo_root

ROOT = repo_root()
RECBOLE_SPLIT = Path(os.environ.get("RECBOLE_SPLIT", ROOT/"bench"/"recbole"/"ml-100k_loo_recbole.tsv.gz"))

def run(config, seed, overrides):
    cfg, _ = load_config(config, None, [f"seed={seed}", "max_minutes=0", *overrides])
    rows = {}
    for name, split in (("ours", load_split(cfg)), ("recbole", load_recbole_split(RECBOLE_SPLIT))):
        model, h = fit(cfg, split, progress=False)
        row = rows[name] = {"valid": evaluate(model, split, "valid")["NDCG@10"], **{f"test_{k}": v for k, v in evaluate(model, split, "test").items() if k.endswith("@10")},
                      "best_epoch": h["best_epoch"], "epochs": len(h["epochs"]), "s_per_epoch": h["seconds_per_epoch"], "s_to_best": h["seconds_to_best"]}
        print(json.dumps({"config": str(config), "seed": seed, "split": name, **row}), flush=True)
    return rows

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/sasrec_ml100k.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    results = {s: run(args.config, s, args.overrides) for s in args.seeds}
    print(f"\n{args.config} {args.overrides}\n\n| split | seed | test NDCG@10 | test HR@10 | test MRR@10 | valid NDCG@10 | best epoch | s/epoch | s to best |\n|---|---|---|---|---|---|---|---|---|")
    for split in ("ours", "recbole"):
        for s, r in results.items():
            r = r[split]
            print(f"| {split} | {s} | {r['test_NDCG@10']:.4f} | {r['test_HR@10']:.4f} | {r['test_MRR@10']:.4f} | {r['valid']:.4f} | {r['best_epoch']} | {r['s_per_epoch']:.1f} | {r['s_to_best']:.0f} |")
        print(f"| {split} | mean | {statistics.mean(r[split]['test_NDCG@10'] for r in results.values()):.4f} | | | | | | |")
