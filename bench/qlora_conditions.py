"""QLoRA adaptation conditions x seeds in one go (one process per seed), summarised into one JSON.

Each seed pretrains the base of configs/qlora_ml100k.yaml (cached), then runs every condition with
`layerwise.core.qlora.QLoRAAnalyzer`; the per-block Fisher and quantization sensitivity are computed once per seed.
Usage: python bench/qlora_conditions.py --seeds 0-4 --out summary.json [--set max_minutes=2] [--jobs 5]
       python bench/qlora_conditions.py --report summary.json     (Markdown tables: means, 95% CIs, ANOVAs, paired tests)
"""
import argparse, json, multiprocessing, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from layerwise import paths
from layerwise.batch import parse_seeds

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
    from layerwise.core.qlora import QLoRAAnalyzer, QLoRAConfig, pretrained_base
    torch.set_num_threads(2)
    cfg, sections = load_config(paths.configs_dir()/"qlora_ml100k.yaml", None, [f"seed={seed}", *overrides])
    common, out = section_config(QLoRAConfig, sections, "qlora"), {}
    for i, (name, over) in enumerate(conditions):
        t0 = time.time()
        an = QLoRAAnalyzer(QLoRAConfig(**{**common.__dict__, **over, "sensitivity": i == 0}), cfg.seed, progress=False)
        an.check(cfg)
        base, post = pretrained_base(cfg, an.config, progress=False)  # trained for the first condition, then a fresh load from the cache
        res = an.analyze(base, post)
        out[name] = {"metrics": an.metrics(res), **{k: res[k] for k in ("layers", "r", "quant_type", "trainable_params", "total_params", "weight_bytes",
                                                                        "weight_bytes_fp32", "peak_memory_bytes", "memory", "fisher_scores", "sensitivity", "data")}}
        out[name]["history_len"], out[name]["seconds"] = len(res["history"]), time.time() - t0
        Path(partial).write_text(json.dumps(out, indent=1, default=_json))
        print(f"seed {seed} {name}: test NDCG@10 {out[name]['metrics']['test_NDCG@10']:.4f} ({time.time() - t0:.0f}s)", flush=True)
    return out


def _json(x):
    "JSON for numpy arrays and scalars (lists and floats), str for anything else"
    return x.tolist() if hasattr(x, "tolist") else str(x)


def report(summary: dict, patience: int) -> str:
    "Markdown: per-condition test NDCG@10 (mean, 95% CI), the three ANOVAs, paired contrasts, Fisher/sensitivity agreement"
    import numpy as np, pandas as pd
    from scipy import stats
    from layerwise.stats import anova, describe
    seeds = sorted(summary, key=int)
    conds = list(summary[seeds[0]])
    tests = {c: np.array([summary[s][c]["metrics"]["test_NDCG@10"] for s in seeds]) for c in conds}
    lines = [f"Test NDCG@10 on the {summary[seeds[0]][conds[0]]['data']['adapt_users']} adaptation users, seeds {', '.join(seeds)}.",
             f"'no valid gain' = runs stopped after exactly `adapt_patience` ({patience}) epochs: no epoch beat the starting point",
             "(the pretrained model, after quantization for the 4/8-bit bases) on validation, so that point was restored.", "",
             "| condition | blocks (seed 0) | trainable params | test NDCG@10 mean | 95% CI | gain vs frozen | no valid gain |", "|---|---|---|---|---|---|---|"]
    for c in conds:
        d, gain = describe(tests[c]), tests[c] - tests["frozen"]
        stuck = "-" if c == "frozen" else f"{sum(summary[s][c]['history_len'] == patience for s in seeds)}/{len(seeds)}"
        lines.append(f"| {c} | {summary[seeds[0]][c]['layers']} | {summary[seeds[0]][c]['trainable_params']:,} | {d['mean']:.4f} | "
                     f"[{d['ci_low']:.4f}, {d['ci_high']:.4f}] | {gain.mean():+.4f} | {stuck} |")
    groups = {"rank (NF4, all blocks)": {f"r={r}": ("nf4_all" if r == 16 else f"nf4_all_r{r}") for r in (4, 8, 16, 32, 64)},
              "blocks (NF4, r=16)": {sel: f"nf4_{sel}" for sel in ("all", "fisher", "random", "bottom", "top")},
              "precision (all blocks, r=16)": {"frozen": "frozen", "full": "full", "fp32 LoRA": "lora_fp32_all", "int8": "int8_all", "fp4": "fp4_all", "nf4": "nf4_all"}}
    lines += ["", "| question | conditions | one-way ANOVA F | p | eta^2 |", "|---|---|---|---|---|"]
    for name, g in groups.items():
        g = {k: c for k, c in g.items() if c in conds}
        df = pd.DataFrame([{"condition": k, "value": v} for k, c in g.items() for v in tests[c]])
        a, why = anova(df)
        lines.append(f"| {name} | {', '.join(g)} | " + (f"{a['F']:.2f} | {a['p']:.3f} | {a['eta2']:.3f} |" if a else f"{why} | | |"))
    lines += ["", "| paired contrast (same seeds) | mean difference | paired t p | ratio of means |", "|---|---|---|---|"]
    for a_, b_ in (("nf4_fisher", "nf4_all"), ("nf4_fisher", "nf4_random"), ("nf4_all", "frozen"), ("full", "frozen"), ("nf4_all", "nf4_all_r4")):
        if a_ in conds and b_ in conds:
            x, y = tests[a_], tests[b_]
            p = stats.ttest_rel(x, y).pvalue if np.any(x != y) else float("nan")
            lines.append(f"| {a_} - {b_} | {np.mean(x - y):+.4f} | {p:.3f} | {x.mean() / y.mean():.3f} |")
    sens = {s: summary[s][conds[0]]["sensitivity"] for s in seeds if summary[s][conds[0]].get("sensitivity")}
    if "nf4_fisher" in conds:
        lines += ["", "Fisher-selected blocks per seed: " + "; ".join(f"seed {s}: {summary[s]['nf4_fisher']['layers']}" for s in seeds)]
    if sens:
        rho = [(sens[s].get("spearman_fisher_kl"), sens[s].get("spearman_fisher_ndcg")) for s in seeds if s in sens]
        lines.append("Spearman of per-block 4-bit sensitivity with the block Fisher, per seed (KL / NDCG@10 drop): "
                     + "; ".join(f"{a:+.2f} / {b:+.2f}" for a, b in rho if a is not None))
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", default="0-4"); p.add_argument("--out", default="qlora_summary.json")
    p.add_argument("--set", dest="overrides", action="append", default=[]); p.add_argument("--jobs", type=int, default=5)
    p.add_argument("--conditions", default="", help="comma-separated subset of condition names")
    p.add_argument("--report", help="print the Markdown tables of an existing summary JSON and stop")
    a = p.parse_args()
    if a.report:
        from layerwise.config import load_config, section_config
        from layerwise.core.qlora import QLoRAConfig
        patience = section_config(QLoRAConfig, load_config(paths.configs_dir()/"qlora_ml100k.yaml", None, a.overrides)[1], "qlora").adapt_patience
        return print(report(json.loads(Path(a.report).read_text()), patience))
    seeds = parse_seeds(a.seeds)
    conds = [c for c in CONDITIONS if not a.conditions or c[0] in a.conditions.split(",")]
    with ProcessPoolExecutor(min(a.jobs, len(seeds)), mp_context=multiprocessing.get_context("spawn")) as ex:
        futures = {s: ex.submit(run_seed, s, a.overrides, conds, f"{a.out}.seed{s}.json") for s in seeds}
        summary = {str(s): f.result() for s, f in futures.items()}
    Path(a.out).write_text(json.dumps(summary, indent=1, default=_json))
    print("wrote", a.out)


if __name__ == "__main__":
    main()
