"""QLoRA adaptation conditions x seeds in one go (one process per seed), summarised into one JSON.

Each seed pretrains the base of configs/qlora_ml100k.yaml (cached), then runs every condition with
`layerwise.core.qlora.QLoRAAnalyzer`; the per-block Fisher and quantization sensitivity are computed once per seed.
Usage: python bench/qlora_conditions.py --seeds 0-4 --out summary.json [--set max_minutes=2] [--jobs 5]
"""
import argparse, json, multiprocessing, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDITIONS = [  # (name, qlora overrides)
    ("frozen", {"quant_type": "frozen"}), ("full", {"quant_type": "full"}),
    ("lora_fp32_all", {"quant_type": "none"}), ("int8_all", {"quant_type": "int8"}), ("fp4_all", {"quant_type": "fp4"}),
    *[(f"nf4_{sel}", {"layers": sel}) for sel in ("all", "fisher", "random", "bottom", "top")],
    *[(f"nf4_all_r{r}", {"r": r}) for r in (4, 8, 32, 64)],
    ("nf4_all_lr3e-3", {"adapt_lr": 0.003}), ("full_lr1e-4", {"quant_type": "full", "adapt_lr": 0.0001}),
]


def run_seed(seed: int, overrides: list, conditions: list, partial: str) -> dict:
    "Every condition for one seed; returns {condition: results subset}, also rewritten to `partial` after each"
    import torch
    from layerwise.config import load_config, section_config
    from layerwise.core.qlora import QLoRAAnalyzer, QLoRAConfig, load_adaptation_splits
    torch.set_num_threads(2)
    cfg, sections = load_config(ROOT/"configs"/"qlora_ml100k.yaml", None, [f"seed={seed}", *overrides])
    base = section_config(QLoRAConfig, sections, "qlora")
    splits, out = load_adaptation_splits(cfg, base.cutoff, base.min_after, root=ROOT/"dataset"), {}
    for i, (name, over) in enumerate(conditions):
        t0 = time.time()
        qcfg = QLoRAConfig(**{**base.__dict__, **over, "sensitivity": i == 0})
        res = QLoRAAnalyzer(qcfg, cfg, splits=splits, progress=False).analyze()
        out[name] = {k: res[k] for k in ("metrics", "layers", "r", "quant_type", "trainable_params", "total_params", "weight_bytes",
                                         "weight_bytes_fp32", "peak_memory_bytes", "memory", "fisher_scores", "sensitivity", "data")}
        out[name]["history_len"], out[name]["seconds"] = len(res["history"]), time.time() - t0
        Path(partial).write_text(json.dumps(out, indent=1, default=str))
        print(f"seed {seed} {name}: test NDCG@10 {res['metrics']['test_NDCG@10']:.4f} ({time.time() - t0:.0f}s)", flush=True)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", default="0-4"); p.add_argument("--out", default="qlora_summary.json")
    p.add_argument("--set", dest="overrides", action="append", default=[]); p.add_argument("--jobs", type=int, default=5)
    p.add_argument("--conditions", default="", help="comma-separated subset of condition names")
    a = p.parse_args()
    lo, _, hi = a.seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    conds = [c for c in CONDITIONS if not a.conditions or c[0] in a.conditions.split(",")]
    with ProcessPoolExecutor(min(a.jobs, len(seeds)), mp_context=multiprocessing.get_context("spawn")) as ex:
        futures = {s: ex.submit(run_seed, s, a.overrides, conds, f"{a.out}.seed{s}.json") for s in seeds}
        summary = {str(s): f.result() for s, f in futures.items()}
    Path(a.out).write_text(json.dumps(summary, indent=1, default=str))
    print("wrote", a.out)


if __name__ == "__main__":
    main()
