"""RecBole 1.2.1's SASRec and BERT4Rec on the data and split layerwise uses, for the comparisons in bench/README.md.

The users, items and per-user order come from `layerwise.recommender.data.load_split`, written as a RecBole atomic
file (one row per interaction, the timestamp is its position in the user's sequence), so RecBole's leave-one-out
(`LS valid_and_test`, order `TO`) gives the same train/valid/test items as ours; both rank the target among all items
with seen items not excluded. Model and training settings are RecBole's defaults (bench/recbole/README.md). Per run:
test HR/NDCG/MRR@10, epochs, the best epoch and the wall time of `fit` + test evaluation.

RecBole is a bench-only dependency: `pip install --no-deps recbole==1.2.1 colorlog==4.7.2 colorama==0.4.4 texttable`.
Its 1.2.1 wheel predates numpy 2 and torch 2.6 (aliases `np.float` and friends are restored, and its checkpoint reload
uses `torch.load(weights_only=False)`); its TensorBoard logging is replaced by a writer that writes nothing (we read
no TensorBoard files, and the `tensorboard` package is not needed).

`--jobs N` runs N trainings at a time, one process each; `--json` is rewritten after every run and the runs it holds
are skipped, so a stopped command resumes. With `--checkpoints DIR` a run also saves its state after every epoch
(weights, optimizer, early-stopping counters, fit seconds) and a stopped run continues from its last epoch: RecBole's
own `resume_checkpoint`; the data order after a resume is not that of an uninterrupted run.

Usage: python bench/recbole/run_recbole.py --dataset amazon-video --models SASRec,BERT4Rec --seeds 0-4 --device cuda \
           --jobs 10 --json bench/results/recbole_amazon-video.json
"""
import argparse, contextlib, functools, json, multiprocessing, os, sys, tempfile, time, types
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
import numpy as np, torch

for _name, _alias in {"float": np.float64, "int": np.int64, "bool": np.bool_, "long": np.int64, "object": np.object_,
                      "float_": np.float64, "complex_": np.complex128, "unicode_": np.str_}.items():
    if _name not in np.__dict__: setattr(np, _name, _alias)
torch.load = functools.partial(torch.load, weights_only=False)  # RecBole's own checkpoints hold its config object

class _NoWriter:
    "Stands in for TensorBoard's SummaryWriter: RecBole calls it, nothing is written"
    def __init__(self, *a, **k): pass
    def __getattr__(self, name): return lambda *a, **k: None
sys.modules.setdefault("torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=_NoWriter))

from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, get_trainer, init_logger, init_seed
from layerwise.batch import parse_seeds
from layerwise.config import TrainConfig
from layerwise.recommender.data import load_split
from layerwise.report import atomic_write

DEFAULTS = {  # RecBole 1.2.1's defaults for the two models (bench/recbole/README.md), full ranking, leave-one-out
    "SASRec": {"n_layers": 2, "n_heads": 2, "hidden_size": 64, "inner_size": 256, "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5},
    "BERT4Rec": {"n_layers": 2, "n_heads": 2, "hidden_size": 64, "inner_size": 256, "hidden_dropout_prob": 0.2, "attn_dropout_prob": 0.2,
                 "mask_ratio": 0.2}}
COMMON = {"hidden_act": "gelu", "loss_type": "CE", "MAX_ITEM_LIST_LENGTH": 50, "learner": "adam", "learning_rate": 1e-3,
          "train_batch_size": 2048, "eval_batch_size": 2048, "stopping_step": 10, "valid_metric": "MRR@10", "epochs": 300,
          "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
          "metrics": ["Hit", "NDCG", "MRR"], "topk": [10], "train_neg_sample_args": None, "reproducibility": True,
          "show_progress": False, "save_dataset": False, "save_dataloaders": False, "log_wandb": False,
          "load_col": {"inter": ["user_id", "item_id", "timestamp"]}, "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id",
          "TIME_FIELD": "timestamp"}


def write_atomic(split, folder: Path, name: str) -> Path:
    "`split` as RecBole atomic file `folder/name/name.inter`: every user's train, valid and test items, in order"
    path = folder/name/f"{name}.inter"; path.parent.mkdir(parents=True, exist_ok=True)
    rows = ["user_id:token\titem_id:token\ttimestamp:float"]
    for u, (tr, v, te) in enumerate(zip(split.train, split.valid, split.test)):
        rows += [f"u{u}\ti{i}\t{t}" for t, i in enumerate([*tr, v, te])]
    path.write_text("\n".join(rows) + "\n")
    return path


def run(model: str, data_dir: Path, name: str, seed: int, device: str, epochs: int | None, checkpoints: Path) -> dict:
    "One RecBole training run to early stop and its test metrics"
    cfg = {**COMMON, **DEFAULTS[model], "data_path": str(data_dir), "seed": seed, "device": device, "checkpoint_dir": str(checkpoints),
           "use_gpu": device.startswith("cuda"), **({"epochs": epochs} if epochs else {})}
    config = Config(model=model, dataset=name, config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"]); init_logger(config)
    t0 = time.time()
    train, valid, test = data_preparation(config, dataset := create_dataset(config))
    init_seed(config["seed"], config["reproducibility"])
    net = get_model(config["model"])(config, train._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)
    checkpoints.mkdir(parents=True, exist_ok=True)
    last, progress_file = checkpoints/"last.pth", checkpoints/"progress.json"
    progress = json.loads(progress_file.read_text()) if last.is_file() and progress_file.is_file() else {"epochs": 0, "fit_s": 0.0}
    resumed_at = progress["epochs"]
    if resumed_at: trainer.resume_checkpoint(last)
    trainer.saved_model_file = str(checkpoints/"best.pth")  # resume_checkpoint points it at `last`
    t_fit = time.time()
    def after_epoch(epoch_idx, valid_score):
        "Save the state to continue from (RecBole calls this after every validation)"
        trainer._save_checkpoint(epoch_idx, verbose=False, saved_model_file=str(last) + ".tmp"); os.replace(str(last) + ".tmp", last)
        progress.update(epochs=epoch_idx + 1, fit_s=progress["fit_s"] + time.time() - after_epoch.t); after_epoch.t = time.time()
        atomic_write(progress_file, json.dumps(progress))
    after_epoch.t = t_fit
    trainer.fit(train, valid, saved=True, show_progress=False, callback_fn=after_epoch)
    result = trainer.evaluate(test, load_best_model=True, show_progress=False)
    epochs_run, fit_s = progress["epochs"], progress["fit_s"]
    best = epochs_run - trainer.cur_step * trainer.eval_step
    return {"model": model, "seed": seed, "users": dataset.user_num - 1, "items": dataset.item_num - 1,
            "test": {k.replace("hit", "HR").replace("ndcg", "NDCG").replace("mrr", "MRR"): float(v) for k, v in result.items()},
            "epochs": epochs_run, "best_epoch": best, "fit_s": round(fit_s, 1), "wall_s": round(time.time() - t0, 1),
            "s_to_best": round(fit_s * best / epochs_run, 1) if epochs_run else None, "resumed_at_epoch": resumed_at or None,
            "device": device}


def _run_job(model, data_dir, name, seed, device, epochs, checkpoints, threads) -> dict:
    torch.set_num_threads(threads)
    with contextlib.chdir(data_dir): return run(model, data_dir, name, seed, device, epochs, checkpoints)  # RecBole logs into ./log/


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="ml-100k", help="a dataset name of layerwise (ml-100k, amazon-video, ...)")
    p.add_argument("--models", default="SASRec,BERT4Rec")
    p.add_argument("--seeds", default="0-4")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--epochs", type=int, help="cap on epochs (a smoke run; default: RecBole's 300 with early stopping)")
    p.add_argument("--users", type=int, help="only the first this-many users (a smoke run)")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, one process each (default: %(default)s)")
    p.add_argument("--json", help="write the runs here (atomically, after every run); runs it already holds are not run again")
    p.add_argument("--checkpoints", help="keep each run's state here after every epoch, and continue stopped runs from it (default: a temporary folder)")
    a = p.parse_args(argv)
    split = load_split(TrainConfig(dataset=a.dataset))
    if a.users: split = type(split)(split.train[:a.users], split.valid[:a.users], split.test[:a.users], split.item_ids, split.user_ids[:a.users])
    out = {"recbole": "1.2.1", "dataset": a.dataset, "users": split.n_users, "items": split.n_items, "runs": [],
           "command": "python bench/recbole/run_recbole.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    if a.json and Path(a.json).exists(): out["runs"] = json.loads(Path(a.json).read_text())["runs"]
    done = {(r["model"], r["seed"]) for r in out["runs"]}
    todo = [(m, s) for m in a.models.split(",") for s in parse_seeds(a.seeds) if (m, s) not in done]
    name = f"layerwise-{a.dataset}"  # not a name RecBole resolves to its own bundled copy (it has an ml-100k)
    threads = max(1, (os.cpu_count() or 1) // max(1, a.jobs))
    def finished(r):
        out["runs"].append(r); print(json.dumps(r), flush=True)
        if a.json: atomic_write(Path(a.json), json.dumps(out, indent=1))
    with tempfile.TemporaryDirectory() as d:
        write_atomic(split, Path(d), name)
        jobs = [(m, Path(d), name, s, a.device, a.epochs, Path(a.checkpoints or Path(d)/"saved")/a.dataset/f"{m}-{s}", threads) for m, s in todo]
        if a.jobs <= 1:
            for j in jobs: finished(_run_job(*j))
        else:
            with ProcessPoolExecutor(a.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:  # spawn: CUDA in each worker
                for f in as_completed([pool.submit(_run_job, *j) for j in jobs]): finished(f.result())
    return out


if __name__ == "__main__": main()
