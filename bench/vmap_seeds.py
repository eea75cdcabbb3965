"""Training the 5 seeds of one configuration as one vectorized model (`torch.func.stack_module_state` + `vmap`) vs one
model after another: seconds per training step (forward + backward of the cross-entropy over every position's item
scores, padding ignored), measured as a ratio in one run.

The models are the shipped SASRec config's (`--config`), one per seed, each on its own batch of training windows.
Under `vmap`, attention runs eagerly with always-built masks (`layerwise.core.fisher._vmap_attention`: Hugging Face's
mask shortcuts test `mask.all()`, a data-dependent branch vmap refuses); the loss is the library's
`train_loss(every_position=True)`, which builds its targets without boolean-mask indexing (vmap cannot batch it).
Both sides use that loss.
Usage: python bench/vmap_seeds.py --device cuda --seeds 5 --batch-size 64 --json bench/results/vmap_seeds.json
"""
import argparse, copy, json, os, statistics, time
from pathlib import Path
import numpy as np, torch
from torch.func import functional_call, stack_module_state, vmap
from layerwise.config import load_config
from layerwise.core.fisher import _vmap_attention
from layerwise.recommender.data import load_split
from layerwise.recommender.models import SeqRecommender
from layerwise.recommender.train import seed_everything, train_windows


class PositionLoss(torch.nn.Module):
    "`model`'s training loss over every position (one shape, as vmap needs) as a module, for `functional_call`"
    def __init__(self, model): super().__init__(); self.model = model
    def forward(self, windows): return self.model.train_loss(windows, every_position=True)


def timed(step, repeats: int, device) -> float:
    "Median seconds of `step()` over `repeats` runs after one warm-up"
    step(); out = []
    for _ in range(repeats):
        if device.type == "cuda": torch.cuda.synchronize()
        t = time.perf_counter(); step()
        if device.type == "cuda": torch.cuda.synchronize()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/sasrec_ml100k.yaml")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seeds", type=int, default=5, help="models trained together (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--json", help="write the result here")
    a = p.parse_args(argv)
    device = torch.device(a.device)
    cfg, _ = load_config(a.config, None, [f"device={a.device}"])
    split = load_split(cfg)
    models = []
    for s in range(a.seeds): seed_everything(s); models.append(SeqRecommender(cfg, split.n_items).to(device).train())
    windows = train_windows(split, cfg.max_len, np.random.default_rng(0))
    batches = torch.stack([windows[torch.randperm(len(windows), generator=torch.Generator().manual_seed(s))[:a.batch_size]] for s in range(a.seeds)]).to(device)
    params, buffers = stack_module_state(models)
    wrap = PositionLoss(copy.deepcopy(models[0]).to("meta"))
    def loss_of(p, b, w): return functional_call(wrap, ({f"model.{k}": v for k, v in p.items()}, {f"model.{k}": v for k, v in b.items()}), (w,))
    def vmapped(): vmap(loss_of, randomness="different")(params, buffers, batches).sum().backward()
    losses = [PositionLoss(m) for m in models]
    def one_after_another():
        for l, w in zip(losses, batches): l(w).backward()
    with _vmap_attention(wrap.model): t_vmap = timed(vmapped, a.repeats, device)
    t_seq = timed(one_after_another, a.repeats, device)
    res = {"config": a.config, "device": a.device, "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
           "torch_threads": torch.get_num_threads(), "seeds": a.seeds, "batch_size": a.batch_size, "repeats": a.repeats,
           "step_s_vmap": round(t_vmap, 5), "step_s_one_after_another": round(t_seq, 5), "one_after_another_over_vmap": round(t_seq / t_vmap, 3)}
    print(json.dumps(res, indent=1))
    if a.json: tmp = Path(a.json).with_suffix(".tmp"); tmp.write_text(json.dumps(res, indent=1)); os.replace(tmp, a.json)
    return res


if __name__ == "__main__": main()
