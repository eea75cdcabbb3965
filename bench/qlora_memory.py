"""Stored weight bytes and trainable parameters of the 8-block SASRec of configs/qlora_ml100k.yaml under each
precision, LoRA on all blocks vs half of them, and the peak memory of one training step (CPU RSS or CUDA).
Usage: python bench/qlora_memory.py"""
import json
from pathlib import Path
import torch
from layerwise.config import load_config
from layerwise.core.qlora import memory_report, prepare_qlora, track_peak_memory
from layerwise.recommender.models import SeqRecommender
from layerwise.recommender.train import get_device

ROOT = Path(__file__).resolve().parents[1]
cfg, _ = load_config(ROOT/"configs"/"qlora_ml100k.yaml")
device = get_device(cfg.device)
base = SeqRecommender(cfg, n_items=1682).to(device)  # ML-100k's item count
windows = torch.randint(0, 1682, (cfg.batch_size, cfg.max_len + 1), device=device)
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
print(json.dumps({"device": str(device), "rows": rows}))
