"""Hyper-parameter sweep of the recommender configs: named variants x seeds as parallel processes sharing one GPU.

A variant is a config plus `--set` overrides, optionally with one of two exploration-only changes the library does
not ship (`label_smoothing`, `item_bias`: tried and rejected, kept here so their numbers can be rerun). BERT4Rec
variants start from RecBole's settings (`B_RECBOLE`: no window overlap, mask ratio 0.2, patience 10), the shipped
config before this sweep. Each finished run is printed and appended to `--out` (JSON lines) at once, so a sweep cut
short keeps what it finished. Results of the H100 runs: bench/results/train_sweep_h100.jsonl, summary in README.md.
Usage: python bench/train_sweep.py --variants s_base,s_lr2e-3 --seeds 0-2 --jobs 12 --out sweep.jsonl --set device=cuda
"""
import argparse, collections, json, os, statistics, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from layerwise.batch import parse_seeds

ROOT = Path(__file__).resolve().parents[1]
RECBOLE_SPLIT = Path(os.environ.get("RECBOLE_SPLIT", ROOT.parent/"shared"/"baselines"/"ml-100k_loo_recbole.tsv"))
S, B = "configs/sasrec_ml100k.yaml", "configs/bert4rec_ml100k.yaml"
B_RECBOLE = ["window_stride=0", "mask_prob=0.2", "patience=10"]
VARIANTS = {  # name -> (config, overrides, exploration change)
    "s_base": (S, [], None), "s_lr2e-3": (S, ["lr=0.002"], None), "s_lr5e-4": (S, ["lr=0.0005"], None),
    "s_d0.3": (S, ["dropout=0.3"], None), "s_d0.4": (S, ["dropout=0.4"], None), "s_bs32": (S, ["batch_size=32"], None),
    "s_bs128": (S, ["batch_size=128"], None), "s_bs256_lr3e-3": (S, ["batch_size=256", "lr=0.003"], None),
    "s_wd0.1": (S, ["weight_decay=0.1"], None), "s_wd1": (S, ["weight_decay=1.0"], None), "s_pat20": (S, ["patience=20"], None),
    "s_ls0.1": (S, [], ("label_smoothing", 0.1)), "s_ls0.3": (S, [], ("label_smoothing", 0.3)), "s_bias": (S, [], ("item_bias", True)),
    "s_heads1": (S, ["heads=1"], None), "s_heads4": (S, ["heads=4"], None), "s_L1": (S, ["n_layers=1"], None),
    "s_L3": (S, ["n_layers=3"], None), "s_len30": (S, ["max_len=30"], None), "s_len100": (S, ["max_len=100"], None),
    "s_stride25": (S, ["window_stride=25"], None), "s_stride10": (S, ["window_stride=10"], None),
    "b_recbole": (B, B_RECBOLE, None), "b_mp0.4": (B, [*B_RECBOLE, "mask_prob=0.4"], None),
    "b_mp0.6": (B, [*B_RECBOLE, "mask_prob=0.6"], None), "b_lr2e-3": (B, [*B_RECBOLE, "lr=0.002"], None),
    "b_d0.1": (B, [*B_RECBOLE, "dropout=0.1"], None), "b_d0.4": (B, [*B_RECBOLE, "dropout=0.4"], None),
    "b_pat25": (B, [*B_RECBOLE, "patience=25"], None), "b_mp0.4_pat25_lr2e-3": (B, [*B_RECBOLE, "mask_prob=0.4", "patience=25", "lr=0.002"], None),
    "b_stride10": (B, [*B_RECBOLE, "window_stride=10"], None), "b_stride10_pat25": (B, [*B_RECBOLE, "window_stride=10", "patience=25"], None),
    "b_stride10_pat25_bias": (B, [*B_RECBOLE, "window_stride=10", "patience=25"], ("item_bias", True)),
    "b_shipped": (B, [], None),  # window_stride 10, mask_prob 0.4, patience 25
}


def exploration_change(kind, value):
    "Monkeypatch one exploration-only change into the model class (this process only)"
    import torch, torch.nn as nn, torch.nn.functional as F
    from layerwise.recommender.models import SeqRecommender
    if kind == "label_smoothing":
        def train_loss(self, windows, generator=None):
            inputs, targets = self.loss_inputs(windows, generator)
            return F.cross_entropy(self.logits(self.encode(inputs)).flatten(0, 1), targets.flatten(), ignore_index=-100, label_smoothing=value)
        SeqRecommender.train_loss = train_loss
    elif kind == "item_bias":
        init = SeqRecommender.__init__
        def __init__(self, cfg, n_items, *args, **kwargs):
            init(self, cfg, n_items, *args, **kwargs); self.item_bias = nn.Parameter(torch.zeros(n_items))
        SeqRecommender.__init__ = __init__
        SeqRecommender.logits = lambda self, h: h @ self.item_emb.weight[: self.n_items].T + self.item_bias


def run_one(name, seed, split_name, overrides):
    "Train variant `name` with `seed` on our split or RecBole's; returns valid/test NDCG@10 and epochs"
    from layerwise.config import load_config
    from layerwise.recommender.data import load_recbole_split, load_split
    from layerwise.recommender.train import evaluate, fit
    config, over, change = VARIANTS[name]
    if change: exploration_change(*change)
    cfg, _ = load_config(ROOT/config, None, [f"seed={seed}", "max_minutes=0", "max_epochs=150", *over, *overrides])
    split = load_split(cfg) if split_name == "ours" else load_recbole_split(RECBOLE_SPLIT)
    model, h = fit(cfg, split, progress=False)
    return {"valid": evaluate(model, split, "valid")["NDCG@10"], "test": evaluate(model, split, "test")["NDCG@10"],
            "best_epoch": h["best_epoch"], "epochs": len(h["epochs"]), "s_epoch": round(h["seconds_per_epoch"], 2)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--variants", default=",".join(VARIANTS)); p.add_argument("--seeds", default="0-2")
    p.add_argument("--split", default="ours", choices=["ours", "recbole"]); p.add_argument("--jobs", type=int, default=12)
    p.add_argument("--minutes", type=float, default=8.0, help="start no run after this; kill runs 1 minute later")
    p.add_argument("--out", default="sweep.jsonl"); p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--one", help=argparse.SUPPRESS); p.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one: return print(json.dumps(run_one(a.one, a.seed, a.split, a.overrides)))
    names = a.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown: sys.exit(f"--variants: unknown {unknown}; expected some of {list(VARIANTS)}")
    deadline = time.time() + 60 * a.minutes
    def job(name, seed):
        if time.time() > deadline: return {"error": "not started: --minutes spent"}
        cmd = [sys.executable, __file__, "--one", name, "--seed", str(seed), "--split", a.split, *sum((["--set", o] for o in a.overrides), [])]
        try: proc = subprocess.run(cmd, capture_output=True, text=True, timeout=deadline + 60 - time.time())
        except subprocess.TimeoutExpired: return {"error": "killed: --minutes spent"}
        try: return json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError): return {"error": proc.stderr[-400:]}
    tests = collections.defaultdict(list)
    with ThreadPoolExecutor(a.jobs) as ex, open(a.out, "a") as out:
        futures = {ex.submit(job, n, s): (n, s) for s in parse_seeds(a.seeds) for n in names}
        for f in as_completed(futures):
            (name, seed), r = futures[f], f.result()
            row = {"variant": name, "seed": seed, "split": a.split, **r}
            print(json.dumps(row), flush=True); out.write(json.dumps(row) + "\n"); out.flush()
            if "test" in r: tests[name].append(r["test"])
    for name in names:
        if tests[name]: print(f"{name:24s} n={len(tests[name])} mean test NDCG@10 {statistics.mean(tests[name]):.4f}")


if __name__ == "__main__":
    main()
