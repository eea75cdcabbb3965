"""The layer game and the recency SHAP of the layer analysis, one coalition at a time vs every coalition at once.

Times, on one randomly initialised model of a config (the work does not depend on training), the exact layer Shapley
values over all 2^L block coalitions (`coalition_value` per coalition with `skip_blocks`, against `coalition_ndcg`)
and the recency profile's exact SHAP of the last 8 history items (`explain_history` user by user through shap,
against `history_shapley`), and checks that both ways give the same numbers.

Usage: python bench/analysis_speed.py [--config configs/sasrec8_ml100k.yaml] [--users 256] [--shap-users 32] [--device cpu] [--json out.json]
"""
import argparse, json, time
import numpy as np, torch
from layerwise.config import load_config
from layerwise.recommender.data import load_split
from layerwise.recommender.models import SeqRecommender
from layerwise.recommender.train import user_tensors
from layerwise.core.importance import coalition_value, coalition_ndcg, coalition_means, exact_shapley
from layerwise.core.explain import explain_history, history_shapley, HistoryMasker


def timed(f):
    if torch.cuda.is_available(): torch.cuda.synchronize()
    t0 = time.perf_counter(); out = f()
    if torch.cuda.is_available(): torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="configs/sasrec8_ml100k.yaml"); p.add_argument("--model", default=None)
    p.add_argument("--users", type=int, default=256); p.add_argument("--shap-users", type=int, default=32)
    p.add_argument("--device", default="cpu"); p.add_argument("--json", default=None)
    a = p.parse_args()
    cfg, _ = load_config(a.config, overrides=[f"model={a.model}"] if a.model else [])
    split = load_split(cfg)
    torch.manual_seed(0)
    model = SeqRecommender(cfg, split.n_items).to(a.device).eval()
    hist, targets = user_tensors(model, split, "valid", a.users, 0)
    L = len(model.blocks)
    coalition_value(model, hist[:16], targets[:16])([True] * L), coalition_ndcg(model, hist[:16], targets[:16])  # warm-up (CUDA context, kernels)
    one, t_one = timed(lambda: exact_shapley(coalition_value(model, hist, targets), L))
    every, t_every = timed(lambda: exact_shapley(coalition_value(model, hist, targets, cache=coalition_means(coalition_ndcg(model, hist, targets))), L))
    users = [h for h in split.history("valid") if len(h) >= 8][: a.shap_users]
    new, t_batch = timed(lambda: history_shapley(model, users, 8))
    try: import shap  # the reference; where it is not installed only the batched time is reported
    except ImportError: ref, t_shap = None, float("nan")
    else: ref, t_shap = timed(lambda: [explain_history(model, h, n_players=8, algorithm="exact") for h in users])
    ref_values = np.stack([e.values[HistoryMasker(e.pad, 8).players(e.history)] for e in ref]) if ref else np.full_like(new["values"], np.nan)
    res = {"config": a.config, "model": cfg.model, "n_layers": L, "device": a.device, "torch_threads": torch.get_num_threads(),
           "gpu": torch.cuda.get_device_name() if a.device.startswith("cuda") else None, "users": len(hist), "shap_users": len(users),
           "layer_shapley_s": {"per_coalition": round(t_one, 3), "every_coalition": round(t_every, 3), "ratio": round(t_one / t_every, 2)},
           "layer_shapley_max_abs_diff": float(np.abs(one - every).max()),
           "recency_shap_s": {"shap_per_user": round(t_shap, 3), "history_shapley": round(t_batch, 3), "ratio": round(t_shap / t_batch, 2)},
           "recency_shap_max_abs_diff": float(np.abs(ref_values - new["values"]).max())}
    print(json.dumps(res, indent=1))
    if a.json:
        with open(a.json, "a") as f: f.write(json.dumps(res) + "\n")


if __name__ == "__main__": main()
