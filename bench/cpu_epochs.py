"""CPU seconds per training epoch (validation included) of the shipped ML-100k configs: this tree against an earlier
revision, measured in one run.

Each revision other than this tree is checked out into a temporary `git worktree`. Each measurement is a fresh process
that imports that revision's library, trains the config with `fit` for `--epochs` epochs (no early stop) on the CPU
with `--threads` torch threads, and reports each epoch's seconds; the first epoch is not counted. The revisions
alternate `--rounds` times, so that drift in the machine's load hits both. Per config: the median s/epoch of each
revision and `ratio` = this tree / base (below 1: this tree is faster).
Usage: python bench/cpu_epochs.py --base 2918a41^ --json bench/results/cpu_epochs.json
"""
import argparse, json, os, statistics, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"sasrec": "configs/sasrec_ml100k.yaml", "bert4rec": "configs/bert4rec_ml100k.yaml"}
CHILD = """
import json, sys, torch
from layerwise.config import load_config
from layerwise.recommender.data import load_split
from layerwise.recommender.train import fit
config, epochs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
cfg, _ = load_config(config, None, ["device=cpu", "seed=0", f"max_epochs={epochs}", f"patience={epochs + 1}"])
_, history = fit(cfg, load_split(cfg), progress=False)
print(json.dumps([e["seconds"] for e in history["epochs"]]))
"""


def git(*args, cwd=ROOT) -> str: return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def epoch_seconds(tree: Path, config: str, epochs: int, threads: int) -> list[float]:
    "Seconds of each epoch after the first of one training of `config` by the library in `tree`"
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(threads), "LAYERWISE_CACHE": tempfile.mkdtemp()}
    out = subprocess.run([sys.executable, "-c", CHILD, config, str(epochs), str(threads)], cwd=tree, env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])[1:]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="the earlier revision (anything `git rev-parse` takes)")
    p.add_argument("--models", default="sasrec,bert4rec", help="comma-separated, of: " + ", ".join(CONFIGS))
    p.add_argument("--epochs", type=int, default=4, help="epochs per training, the first not counted (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=2, help="trainings per revision and config, alternating (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    p.add_argument("--json", help="write the result into this file")
    args = p.parse_args()
    base, head = git("rev-parse", "--short", args.base), git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    with tempfile.TemporaryDirectory() as d:
        git("worktree", "add", "--detach", d, base)
        try:
            trees, res = {"base": Path(d), "head": ROOT}, {}
            for model in args.models.split(","):
                secs = {k: [] for k in trees}
                for _ in range(args.rounds):
                    for k, tree in trees.items(): secs[k] += epoch_seconds(tree, CONFIGS[model], args.epochs, args.threads)
                med = {k: statistics.median(v) for k, v in secs.items()}
                res[model] = {"base_s_per_epoch": round(med["base"], 3), "head_s_per_epoch": round(med["head"], 3),
                              "ratio": round(med["head"] / med["base"], 3), "epochs_timed": {k: len(v) for k, v in secs.items()},
                              "seconds": {k: [round(x, 3) for x in v] for k, v in secs.items()}}
                print(model, json.dumps(res[model]), flush=True)
        finally: git("worktree", "remove", "--force", d)
    info = Path("/proc/cpuinfo").read_text(); cpu = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), "?")
    out = {"base": base, "head": head + ("+uncommitted" if dirty else ""), "threads": args.threads, "cpus": os.cpu_count(),
           "cpu": cpu, "avx512_bf16": "avx512_bf16" in info,
           "epochs": args.epochs, "rounds": args.rounds, "models": res}
    if args.json: Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "models"}))


if __name__ == "__main__": main()
