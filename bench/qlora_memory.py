"""Stored weight bytes and trainable parameters of the 8-block SASRec of configs/qlora_ml100k.yaml under each
precision, LoRA on all blocks vs half of them, and the peak memory of one training step (CPU RSS or CUDA).
Usage: python bench/qlora_memory.py [--config configs/qlora_ml100k.yaml]"""
import argparse, json
import torch
from layerwise import paths
from layerwise.config import load_config
from layerwise.core.qlora import memory_report, prepare_qlora, track_peak_memory
from layerwise.recommender.models import SeqRecommender
from layerwise.recommender.train import get_device


def measure(cfg, n_items=1682) -> list[dict]:
    "One row per precision and LoRA placement: stored bytes, ratios, parameters, peak memory of a training step"
    device = get_device(cfg.device)
    base = SeqRecommender(cfg, n_items=n_items).to(device)  # ML-100k's item count
    windows = torch.randint(0, n_items, (cfg.batch_size, cfg.max_len + 1), device=device)
    rows = []
    for quant in ("fp32-full", "none", "int8", "fp4", "nf4"):
        for layers in ([None, [4, 5, 6, 7]] if quant != "fp32-full" else [None]):
            model = base if quant == "fp32-full" else prepare_qlora(base, layers, r=16, quant_type=quant)
            model.train().train_loss(windows).backward()  # warm-up step (allocator, kernels)
            model.zero_grad(set_to_none=True)
            with track_peak_memory(device) as mem:
                model.train_loss(windows).backward()
            rep = memory_report(model)
            rows.append({"precision": quant, "lora_blocks": "all" if layers is None else "half", "linear_ratio": round(rep["linear_ratio"], 4),
                         "base_ratio": round(rep["base_ratio"], 4), "model_ratio": round(rep["model_ratio"], 4), "linear_bytes": rep["linear_weight_bytes"],
                         "linear_bytes_fp32": rep["linear_weight_bytes_fp32"], "weight_bytes": rep["weight_bytes"],
                         "weight_bytes_fp32": rep["weight_bytes_fp32"], "trainable": rep["trainable_params"], "total": rep["total_params"],
                         "step_peak_bytes": mem["peak_bytes"], "step_extra_bytes": mem["step_bytes"]})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\nUsage")[0])
    p.add_argument("--config", default=str(paths.configs_dir()/"qlora_ml100k.yaml"), help="config file (default: %(default)s)")
    cfg, _ = load_config(p.parse_args().config)
    print(json.dumps({"device": str(get_device(cfg.device)), "rows": measure(cfg)}))


if __name__ == "__main__":
    main()
