"""Hyper-parameter sweep of the recommender configs: named variants x seeds as parallel processes sharing one GPU.

A variant is a config plus `--set` overrides, optionally with exploration-only changes the library does not ship
(`label_smoothing`, `item_bias`, `prenorm`, `emb_scale`, `input_mask`: kept here so their numbers can be rerun).
SASRec variants start from `S_PRE`, the SASRec training these variants were measured against (lr 1e-3, no weight average,
patience 10); its `ema_decay` variants ran with a monkeypatch equivalent to TrainConfig's `ema_decay` option. BERT4Rec
variants start from RecBole's settings (`B_RECBOLE`: no window overlap, mask ratio 0.2, patience 10), the reference
for its variants. Each finished run is printed and appended to `--out` (JSON lines) at once, so a sweep cut
short keeps what it finished. Results of the H100 runs: bench/results/train_sweep_h100.jsonl, summary in README.md.
Usage: python bench/train_sweep.py --variants s_base,s_lr2e-3 --seeds 0-2 --jobs 12 --out sweep.jsonl --set device=cuda
"""
import argparse, collections, json, os, statistics, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from layerwise.batch import parse_seeds
from layerwise.paths import repo_root

ROOT = repo_root()
RECBOLE_SPLIT = Path(os.environ.get("RECBOLE_SPLIT", ROOT/"bench"/"recbole"/"ml-100k_loo_recbole.tsv.gz"))
S, B = "configs/sasrec_ml100k.yaml", "configs/bert4rec_ml100k.yaml"
V8 = "configs/sasrec8_video.yaml"  # the 8-block models of the Amazon Video layer analysis (BERT4Rec: model=bert4rec)
V8_PRE = ["patience=20", "warmup_steps=0"]  # the full preset's patience; variants start from the recipe without warm-up
S_PRE = ["lr=0.001", "patience=10", "ema_decay=0"]  # SASRec's reference training for the variants
B_RECBOLE = ["window_stride=0", "mask_prob=0.2", "patience=10"]
VARIANTS = {  # name -> (config, overrides, exploration change)
    "s_base": (S, [*S_PRE], None), "s_lr2e-3": (S, [*S_PRE, "lr=0.002"], None), "s_lr5e-4": (S, [*S_PRE, "lr=0.0005"], None),
    "s_d0.3": (S, [*S_PRE, "dropout=0.3"], None), "s_d0.4": (S, [*S_PRE, "dropout=0.4"], None), "s_bs32": (S, [*S_PRE, "batch_size=32"], None),
    "s_bs128": (S, [*S_PRE, "batch_size=128"], None), "s_bs256_lr3e-3": (S, [*S_PRE, "batch_size=256", "lr=0.003"], None),
    "s_wd0.1": (S, [*S_PRE, "weight_decay=0.1"], None), "s_wd1": (S, [*S_PRE, "weight_decay=1.0"], None), "s_pat20": (S, [*S_PRE, "patience=20"], None),
    "s_ls0.1": (S, [*S_PRE], [("label_smoothing", 0.1)]), "s_ls0.3": (S, [*S_PRE], [("label_smoothing", 0.3)]), "s_bias": (S, [*S_PRE], [("item_bias", True)]),
    "s_heads1": (S, [*S_PRE, "heads=1"], None), "s_heads4": (S, [*S_PRE, "heads=4"], None), "s_L1": (S, [*S_PRE, "n_layers=1"], None),
    "s_L3": (S, [*S_PRE, "n_layers=3"], None), "s_len30": (S, [*S_PRE, "max_len=30"], None), "s_len100": (S, [*S_PRE, "max_len=100"], None),
    "s_stride25": (S, [*S_PRE, "window_stride=25"], None), "s_stride10": (S, [*S_PRE, "window_stride=10"], None),
    "b_recbole": (B, B_RECBOLE, None), "b_mp0.4": (B, [*B_RECBOLE, "mask_prob=0.4"], None),
    "b_mp0.6": (B, [*B_RECBOLE, "mask_prob=0.6"], None), "b_lr2e-3": (B, [*B_RECBOLE, "lr=0.002"], None),
    "b_d0.1": (B, [*B_RECBOLE, "dropout=0.1"], None), "b_d0.4": (B, [*B_RECBOLE, "dropout=0.4"], None),
    "b_pat25": (B, [*B_RECBOLE, "patience=25"], None), "b_mp0.4_pat25_lr2e-3": (B, [*B_RECBOLE, "mask_prob=0.4", "patience=25", "lr=0.002"], None),
    "b_stride10": (B, [*B_RECBOLE, "window_stride=10"], None), "b_stride10_pat25": (B, [*B_RECBOLE, "window_stride=10", "patience=25"], None),
    "b_stride10_pat25_bias": (B, [*B_RECBOLE, "window_stride=10", "patience=25"], [("item_bias", True)]),
    "b_shipped": (B, [], None),  # window_stride 10, mask_prob 0.4, patience 25
    "s_shipped": (S, [], None),  # lr 3e-3, ema_decay 0.998, patience 20
    "s_prenorm": (S, [*S_PRE], [("prenorm", True)]), "s_embscale": (S, [*S_PRE], [("emb_scale", True)]),
    "s_ema0.99": (S, [*S_PRE, "ema_decay=0.99"], None), "s_ema0.995": (S, [*S_PRE, "ema_decay=0.995"], None),
    "s_ema0.999_pat20": (S, [*S_PRE, "patience=20", "ema_decay=0.999"], None),
    "s_prenorm_ema0.995": (S, [*S_PRE, "ema_decay=0.995"], [("prenorm", True)]),
    "s_prenorm_lr2e-3": (S, [*S_PRE, "lr=0.002"], [("prenorm", True)]),
    "s_inmask0.1": (S, [*S_PRE], [("input_mask", 0.1)]), "s_inmask0.2": (S, [*S_PRE], [("input_mask", 0.2)]),
    "s_ema0.999": (S, [*S_PRE, "ema_decay=0.999"], None), "s_inmask0.1_pat20": (S, [*S_PRE, "patience=20"], [("input_mask", 0.1)]),
    "s_ema0.999_pat20_inmask0.1": (S, [*S_PRE, "patience=20", "ema_decay=0.999"], [("input_mask", 0.1)]),
    "s_ema0.998_pat20_lr2e-3": (S, [*S_PRE, "patience=20", "lr=0.002", "ema_decay=0.998"], None),
    "s_ema0.999_pat20_lr2e-3": (S, [*S_PRE, "patience=20", "lr=0.002", "ema_decay=0.999"], None),
    "s_ema0.9995_pat30": (S, [*S_PRE, "patience=30", "max_epochs=300", "ema_decay=0.9995"], None),
    "s_ema0.998_pat20_lr3e-3": (S, [*S_PRE, "patience=20", "lr=0.003", "ema_decay=0.998"], None),
    "s_ema0.997_pat20_lr2e-3": (S, [*S_PRE, "patience=20", "lr=0.002", "ema_decay=0.997"], None),
    "s_ema0.998_pat15_lr2e-3": (S, [*S_PRE, "patience=15", "lr=0.002", "ema_decay=0.998"], None),
    "s_ema0.998_pat20_lr2e-3_inmask0.1": (S, [*S_PRE, "patience=20", "lr=0.002", "ema_decay=0.998"], [("input_mask", 0.1)]),
    "s_ema0.995_pat20_lr3e-3": (S, [*S_PRE, "patience=20", "lr=0.003", "ema_decay=0.995"], None),
    "v8_d0.2": (V8, [*V8_PRE, "dropout=0.2"], None), "v8_lr1e-3": (V8, [*V8_PRE, "lr=0.001"], None),
    "v8_lr6e-3_ema0.992": (V8, [*V8_PRE, "lr=0.006", "ema_decay=0.992"], None), "v8_nowarm": (V8, V8_PRE, None),
    "vb8_d0.2": (V8, [*V8_PRE, "model=bert4rec", "dropout=0.2"], None), "vb8_nowarm": (V8, [*V8_PRE, "model=bert4rec"], None),
    "v8_shipped": (V8, ["patience=20"], None), "vb8_shipped": (V8, ["patience=20", "model=bert4rec"], None),  # warmup_steps 1000
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
    elif kind == "prenorm":  # pre-LayerNorm blocks + a final LayerNorm (the original SASRec's block), same module names
        from transformers import RobertaPreLayerNormConfig, RobertaPreLayerNormModel
        init = SeqRecommender.__init__
        def __init__(self, cfg, n_items, attn_implementation="sdpa"):
            init(self, cfg, n_items, attn_implementation)
            bert = self.backbone.config.to_dict()
            keep = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act", "hidden_dropout_prob",
                    "attention_probs_dropout_prob", "type_vocab_size", "initializer_range", "is_decoder", "use_cache"]
            config = RobertaPreLayerNormConfig(**{k: bert[k] for k in keep}, vocab_size=1, pad_token_id=0, bos_token_id=None, eos_token_id=None,
                                               max_position_embeddings=cfg.max_len + 2, attn_implementation=attn_implementation)
            self.backbone = RobertaPreLayerNormModel(config, add_pooling_layer=False)
        SeqRecommender.__init__ = __init__
    elif kind == "emb_scale":  # item embeddings times sqrt(hidden) before the position embeddings are added (SASRec paper)
        def encode(self, seqs, all_layers=False):
            out = self.backbone(inputs_embeds=self.item_emb(seqs) * self.cfg.hidden ** 0.5, attention_mask=(seqs != self.pad).long(),
                                output_hidden_states=all_layers)
            return list(out.hidden_states) if all_layers else out.last_hidden_state
        SeqRecommender.encode = encode
    elif kind == "input_mask":  # SASRec inputs: a `value` share of the real items replaced by the mask token (targets kept)
        loss_inputs = SeqRecommender.loss_inputs
        def masked_inputs(self, windows, generator=None):
            inputs, targets = loss_inputs(self, windows, generator)
            hide = (torch.rand(inputs.shape, generator=generator, device=inputs.device) < value) & (inputs != self.pad)
            return inputs.masked_fill(hide, self.mask_token), targets
        SeqRecommender.loss_inputs = masked_inputs


def run_one(name, seed, split_name, overrides):
    "Train variant `name` with `seed` on our split or RecBole's; returns valid/test NDCG@10 and epochs"
    from layerwise.config import load_config
    from layerwise.recommender.data import load_recbole_split, load_split
    from layerwise.recommender.train import evaluate, fit
    config, over, changes = VARIANTS[name]
    for change in changes or []: exploration_change(*change)
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
    p.add_argument("--devices", help="GPU ids, e.g. 0,1: the i-th job runs with CUDA_VISIBLE_DEVICES set to id i mod n")
    p.add_argument("--out", default="sweep.jsonl"); p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--one", help=argparse.SUPPRESS); p.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one: return print(json.dumps(run_one(a.one, a.seed, a.split, a.overrides)))
    names = a.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown: sys.exit(f"--variants: unknown {unknown}; expected some of {list(VARIANTS)}")
    deadline = time.time() + 60 * a.minutes
    devices = a.devices.split(",") if a.devices else []
    def job(name, seed, i):
        if time.time() > deadline: return {"error": "not started: --minutes spent"}
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": devices[i % len(devices)]} if devices else None
        cmd = [sys.executable, __file__, "--one", name, "--seed", str(seed), "--split", a.split, *sum((["--set", o] for o in a.overrides), [])]
        try: proc = subprocess.run(cmd, capture_output=True, text=True, timeout=deadline + 60 - time.time(), env=env)
        except subprocess.TimeoutExpired: return {"error": "killed: --minutes spent"}
        try: return json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError): return {"error": proc.stderr[-400:]}
    tests = collections.defaultdict(list)
    with ThreadPoolExecutor(a.jobs) as ex, open(a.out, "a") as out:
        runs = [(n, s) for s in parse_seeds(a.seeds) for n in names]
        futures = {ex.submit(job, n, s, i): (n, s) for i, (n, s) in enumerate(runs)}
        for f in as_completed(futures):
            (name, seed), r = futures[f], f.result()
            row = {"variant": name, "seed": seed, "split": a.split, **r}
            print(json.dumps(row), flush=True); out.write(json.dumps(row) + "\n"); out.flush()
            if "test" in r: tests[name].append(r["test"])
    for name in names:
        if tests[name]: print(f"{name:24s} n={len(tests[name])} mean test NDCG@10 {statistics.mean(tests[name]):.4f}")


if __name__ == "__main__":
    main()
