"""Speed of training, evaluation and the layer-analysis batch on one machine, as ratios measured in one run.

Parts (`--parts`, each adds its keys to `--json`, merged into what the file already holds):
  epochs  seconds per training epoch (validation included) of the shipped SASRec and BERT4Rec configs on ML-100k,
          for `train_loss` (item scores only where there is a target) and for the loss over every position's scores
          (`train_loss(every_position=True)`, padding included, `ignore_index` dropping it); the two alternate, epochs 2+
          count; ratio = every_position / train_loss. Also seconds for one full-ranking evaluation of the valid stage.
  video   seconds per training epoch (validation included) of the shipped SASRec config on Amazon Video
          (`configs/sasrec_video.yaml`) at each of `--batch-sizes` (lr unchanged): `video_s_per_epoch` (batch 64,
          the config's) and `video_s_per_epoch_by_batch`.
  run     full SASRec runs of the shipped config to their early stop (no time cap), `--jobs` at a time (one process
          each), with the config overrides `--set` gives (`ml100k_overrides`): seconds of `fit` per run (`ml100k_run_s`,
          mean) and test NDCG@10.
  recbole RecBole 1.2.1's SASRec (its defaults, `bench/recbole/run_recbole.py`) on the same ML-100k split, seeds and
          `--jobs`: `recbole_ml100k_run_s` (mean seconds per run of its data preparation, `fit` and test; `fit_s` per
          run beside it) and test NDCG@10. With `run` in the same command
          (the same GPU, the same number of runs at a time) `ml100k_over_recbole` = ml100k_run_s / recbole_ml100k_run_s.
  batch   a command (default: the 8-block full-preset layer-analysis batch of both models, seeds 0-4) with
          nvidia-smi's GPU utilization sampled every 0.5 s: `gpu_util_mean` (fraction), peak memory, wall seconds.
  study   runs nothing: the published study's wall time (`study_wall_s`), summed over the calls in
          `results/study/<--dataset>/run.json` that finished its published runs (the calls its provenance line names),
          with their commits and GPUs. The machine keys are not rewritten by this part alone.
Usage: python bench/gpu_speed.py --parts epochs,run --device cuda --json bench/results/gpu_speed.json
"""
import argparse, contextlib, json, multiprocessing, os, signal, statistics, subprocess, sys, threading, time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
import torch
from layerwise.config import load_config
from layerwise.recommender.data import load_split
from layerwise.recommender.models import SeqRecommender
from layerwise.recommender.train import evaluate, fit, seed_everything, train_loop
from layerwise.paths import repo_root
from layerwise.study import _distinct, credited_calls

ROOT = repo_root()
VIDEO = ROOT/"configs"/"sasrec_video.yaml"
CONFIGS = {"sasrec": ROOT/"configs"/"sasrec_ml100k.yaml", "bert4rec": ROOT/"configs"/"bert4rec_ml100k.yaml"}
LAYER_BATCH = "batch advanced_theoretical_validation --seeds 0-4 --grid model=sasrec,bert4rec -p n_layers=8 --preset full --gpus all"


def epoch_seconds(cfg, split, loss_name: str, epochs: int) -> list[float]:
    "Seconds of each of `epochs` training epochs (validation included) of a fresh model for `cfg` with the named loss"
    seed_everything(cfg.seed)
    model = SeqRecommender(cfg, split.n_items).to(cfg.device)
    loss_fn = partial(model.train_loss, every_position=loss_name != "train_loss")
    h = train_loop(model, split, loss_fn, model.parameters(), replace(cfg, max_epochs=epochs, patience=epochs + 1), cfg.seed, progress=False)
    return [e["seconds"] for e in h["epochs"]]


def part_epochs(args) -> dict:
    out = {}
    for model, config in CONFIGS.items():
        cfg, _ = load_config(config, None, [f"device={args.device}", "seed=0"])
        split, secs = load_split(cfg), {"train_loss": [], "every_position": []}
        for _ in range(2):  # alternate, so that drift of the machine's load hits both
            for name in secs: secs[name] += epoch_seconds(cfg, split, name, args.epochs)[1:]
        m = SeqRecommender(cfg, split.n_items).to(cfg.device)
        evaluate(m, split, "valid"); t0 = time.perf_counter(); evaluate(m, split, "valid")
        if args.device.startswith("cuda"): torch.cuda.synchronize()
        med = {k: statistics.median(v) for k, v in secs.items()}
        out[model] = {"s_per_epoch": med["train_loss"], "s_per_epoch_every_position": med["every_position"],
                      "every_position_over_train_loss": round(med["every_position"] / med["train_loss"], 3),
                      "eval_valid_s": round(time.perf_counter() - t0, 4), "epochs_timed": len(secs["train_loss"])}
        print(model, json.dumps(out[model]), flush=True)
    return {"ml100k_epochs": out}


def part_video(args) -> dict:
    by_batch = {}
    for bs in args.batch_sizes:
        cfg, _ = load_config(VIDEO, None, [f"device={args.device}", "seed=0", f"batch_size={bs}"])
        by_batch[bs] = statistics.median(epoch_seconds(cfg, load_split(cfg), "train_loss", args.epochs)[1:])
        print("video batch", bs, by_batch[bs], flush=True)
    cfg, _ = load_config(VIDEO, None, [])
    return {"video_s_per_epoch": by_batch.get(cfg.batch_size), "video_s_per_epoch_by_batch": by_batch}


def one_run(seed: int, device: str, threads: int = 0, overrides=()) -> dict:
    "One full SASRec run of the shipped ML-100k config (with `overrides`) to its early stop: seconds of `fit` (`run_s`) and test NDCG@10"
    if threads: torch.set_num_threads(threads)
    cfg, _ = load_config(CONFIGS["sasrec"], None, [f"device={device}", f"seed={seed}", "max_minutes=0", *overrides])
    split = load_split(cfg)
    t0 = time.time()
    model, h = fit(cfg, split, progress=False)
    return {"seed": seed, "run_s": round(time.time() - t0, 1), "s_to_best": round(h["seconds_to_best"], 1),
            "best_epoch": h["best_epoch"], "test_NDCG@10": evaluate(model, split, "test")["NDCG@10"]}


def part_run(args) -> dict:
    if args.jobs <= 1: runs = [one_run(s, args.device, 0, args.overrides) for s in args.seeds]
    else:  # one process per run, spawned (CUDA in each), the CPU cores split among them as RecBole's part does
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            runs = list(pool.map(one_run, args.seeds, [args.device] * len(args.seeds), [max(1, (os.cpu_count() or 1) // args.jobs)] * len(args.seeds),
                                 [args.overrides] * len(args.seeds)))
    for r in runs: print(json.dumps(r), flush=True)
    return {"ml100k_run_s": round(statistics.mean(r["run_s"] for r in runs), 1), "ml100k_jobs": args.jobs, "ml100k_overrides": args.overrides,
            "ml100k_test_ndcg10": round(statistics.mean(r["test_NDCG@10"] for r in runs), 4), "ml100k_runs": runs}


def part_recbole(args) -> dict:
    sys.path.insert(0, str(ROOT/"bench"/"recbole"))  # importable by name: its spawned workers import it again
    import run_recbole  # imports recbole: only this part needs it
    runs = run_recbole.main(["--dataset", "ml-100k", "--models", "SASRec", "--seeds", ",".join(map(str, args.seeds)),
                             "--device", args.device, "--jobs", str(args.jobs),  # each finished run kept beside --json: a stopped command loses none
                             *(["--json", str(Path(args.json).with_name(Path(args.json).stem + "_recbole_runs.json"))] if args.json else [])])["runs"]
    return {"recbole_ml100k_run_s": round(statistics.mean(r["wall_s"] for r in runs), 1), "recbole_jobs": args.jobs,
            "recbole_ml100k_test_ndcg10": round(statistics.mean(r["test"]["NDCG@10"] for r in runs), 4),
            "recbole_ml100k_runs": [{k: r[k] for k in ("seed", "wall_s", "fit_s", "epochs", "best_epoch")} | {"test_NDCG@10": r["test"]["NDCG@10"]} for r in runs]}


def sample_gpu(stop: threading.Event, samples: list, every=0.5):
    "Append (utilization %, memory MiB) of GPU 0 to `samples` every `every` seconds until `stop` is set"
    while not stop.wait(every):
        r = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                           capture_output=True, text=True)
        if r.returncode == 0: samples.append(tuple(float(x) for x in r.stdout.split(",")))


def part_batch(args) -> dict:
    args_ = args.command.split()
    cmd = [sys.executable, "-c", "from layerwise.cli import main; main()", *args_]  # `layerwise ...` without an installed script
    samples, stop = [], threading.Event()
    sampler = threading.Thread(target=sample_gpu, args=(stop, samples), daemon=True); sampler.start()
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)  # its own process group: a time limit stops the workers too
    try: rc = proc.wait(timeout=args.timeout or None)
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError): os.killpg(proc.pid, sig); time.sleep(5)
        rc = "stopped at --timeout (the batch resumes)"
    wall = round(time.time() - t0, 1); stop.set(); sampler.join()
    util = [u for u, _ in samples]
    return {"batch": {"command": "layerwise " + " ".join(args_), "returncode": rc, "wall_s": wall,
                      "gpu_util_mean": round(statistics.mean(util) / 100, 3) if util else None,
                      "gpu_util_p10": round(sorted(util)[len(util) // 10] / 100, 3) if util else None,
                      "gpu_mem_peak_mib": max((m for _, m in samples), default=None), "samples": len(samples)}}


def part_study(args) -> dict:
    folder = ROOT/"results"/"study"/args.dataset; calls = credited_calls(folder)
    if not calls: sys.exit(f"{folder/'run.json'}: no call that finished a published run")
    return {"study_wall_s": round(sum(float(c.get("wall_s") or 0) for c in calls), 1),
            "study": {"dataset": args.dataset, "source": str((folder/"run.json").relative_to(ROOT)), "calls": len(calls),
                      **{k + "s": _distinct(calls, k) for k in ("commit", "gpu", "date")}}}


def machine(device: str) -> dict:
    gpu = None
    if device.startswith("cuda"): gpu = torch.cuda.get_device_name(0)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {"device": device, "gpu": gpu, "cpus": os.cpu_count(), "torch": torch.__version__, "commit": os.environ.get("COMMIT") or commit}  # COMMIT: where the checkout has no current .git


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="epochs", help="comma-separated: epochs, video, run, recbole, batch, study (default: %(default)s)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--epochs", type=int, default=4, help="epochs per timed training, the first not counted")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 512], help="batch sizes of the `video` part")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds of the `run` and `recbole` parts")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="config override of the `run` part (repeatable)")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time of the `run` and `recbole` parts (default: %(default)s)")
    p.add_argument("--command", help="the `batch` part's layerwise arguments instead of: %(default)s", default=LAYER_BATCH)
    p.add_argument("--timeout", type=float, default=0, help="seconds after which the `batch` part stops its command (0 = none)")
    p.add_argument("--dataset", default="ml-100k", help="the published study of the `study` part (default: %(default)s)")
    p.add_argument("--json", help="merge the measurements into this file")
    args = p.parse_args()
    parts = args.parts.split(","); measures = set(parts) - {"study"}  # `study` only reads files: it describes no machine
    res = machine(args.device) if measures else {}
    for part in parts: res |= {"epochs": part_epochs, "video": part_video, "run": part_run, "batch": part_batch, "study": part_study, "recbole": part_recbole}[part](args)
    if {"ml100k_run_s", "recbole_ml100k_run_s"} <= res.keys(): res["ml100k_over_recbole"] = round(res["ml100k_run_s"] / res["recbole_ml100k_run_s"], 3)
    print(json.dumps(res, indent=1))
    if args.json:
        path = Path(args.json); old = json.loads(path.read_text()) if path.exists() else {}
        key = "gpu" if args.device.startswith("cuda") or not measures else "cpu"  # the published study ran on GPUs
        old[key] = old.get(key, {}) | res
        tmp = path.with_suffix(".tmp"); tmp.write_text(json.dumps(old, indent=1)); os.replace(tmp, path)
