"""The GPU test target (`make test-gpu`, skipped where CUDA is missing): every experiment notebook through
`layerwise batch --gpus all` with the full preset's code paths at tiny training (`configs/presets/smoke.yaml`), both
models, all analyses, distillation, QLoRA and the architecture sweep; then what depends on the device: tensors on the
GPU, results equal to the CPU's, several runs sharing one GPU."""
import copy, glob, json, os, subprocess, sys
import numpy as np, pytest, torch
from conftest import ROOT, TOY, cli

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

SMOKE = ["--seeds", "0", "-p", "preset=smoke", "--gpus", "all", "--per-gpu", "4"]
BATCHES = {  # experiment -> its grid and parameters (4 blocks here; the study uses 8)
    "recommender_baselines": ["--grid", "model=sasrec,bert4rec"],
    "advanced_theoretical_validation": ["--grid", "model=sasrec,bert4rec", "-p", "n_layers=4"],
    "layerwise_distillation": ["--grid", "model=sasrec,bert4rec", "--grid", "strategy=fisher,ablation,uniform,random",
                               "-p", "n_layers=4", "-p", "k=2", "-p", "max_minutes=0"],
    "multi_layer_architecture_exploration": ["--grid", "model=sasrec,bert4rec", "--grid", "n_layers=2,4", "-p", "max_minutes=0"],
    "qlora_integration_validation": ["--grid", "layers=all,fisher", "--grid", "quant_type=nf4,int8",
                                     "-p", "pretrain_minutes=0", "-p", "adapt_epochs=0", "-p", "fisher_users=0"],
}


UNDER_MPS = {"multi_layer_architecture_exploration"}  # its runs share the GPU through the batch's own MPS daemon


@pytest.fixture(scope="module")
def batches(tmp_path_factory) -> dict:
    "Experiment -> (its batch folder, the finished `layerwise batch` process): the five batches run at the same time"
    out = tmp_path_factory.mktemp("gpu")
    env = {**os.environ, "LAYERWISE_CACHE": str(out/"cache")}
    procs = {e: subprocess.Popen([sys.executable, str(ROOT/"tests"/"lw_cli.py"), "batch", e, *SMOKE, *args, "--out", str(out)],
                                 cwd=ROOT, env=env | {"LAYERWISE_MPS": "1" if e in UNDER_MPS else "0"},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for e, args in BATCHES.items()}
    return {e: (out/e, p, *p.communicate(timeout=1500)) for e, p in procs.items()}


@pytest.mark.parametrize("experiment", list(BATCHES))
def test_experiment_runs_on_the_gpu(batches, experiment):
    folder, proc, stdout, stderr = batches[experiment]
    assert proc.returncode == 0, stderr[-3000:]
    runs = sorted(folder.glob("*/seed_0"))
    n_conditions = np.prod([len(a.split("=")[1].split(",")) for a in BATCHES[experiment][1::2] if "," in a])
    assert len(runs) == n_conditions and all((r/"done.json").exists() for r in runs)
    for r in runs:
        env = json.loads((r/"results.json").read_text())["environment"]
        assert not env["device"].startswith("cpu"), env["device"]  # the notebook ran its model on the GPU
        worker = json.loads((r/"done.json").read_text())["worker"]
        assert worker["cuda_visible_devices"] is not None and worker["mps"] == (experiment in UNDER_MPS)
    assert json.loads((folder/"summary.json").read_text())["n_failed"] == 0
    assert "time slicing" not in stderr, stderr[-2000:]  # where MPS was asked for, its daemon started


def test_runs_share_a_gpu(tmp_path):
    "--per-gpu 3: three worker processes pinned to the same GPU execute the runs"
    r = cli("batch", TOY, "--seeds", "0-5", "-p", "sleep=2", "--gpus", "1", "--per-gpu", "3", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    workers = [json.loads(p.read_text())["worker"] for p in tmp_path.glob("toy/*/seed_*/done.json")]
    assert len(workers) == 6 and {w["cuda_visible_devices"] for w in workers} == {workers[0]["cuda_visible_devices"]}
    assert len({w["pid"] for w in workers}) > 1


def test_runs_share_a_gpu_through_mps(tmp_path):
    "LAYERWISE_MPS=1: the batch starts its own MPS daemon, every run reaches the GPU through it, and it is gone afterwards"
    env = {**os.environ, "LAYERWISE_MPS": "1"}; env.pop("CUDA_MPS_PIPE_DIRECTORY", None)
    r = cli("batch", TOY, "--seeds", "0-3", "-p", "sleep=1", "--gpus", "1", "--per-gpu", "2", "--out", tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert "time slicing" not in r.stderr, r.stderr  # the daemon started
    workers = [json.loads(p.read_text())["worker"] for p in tmp_path.glob("toy/*/seed_*/done.json")]
    assert len(workers) == 4 and all(w["mps"] for w in workers)
    assert not mps_daemons(), mps_daemons()  # quit with the batch


def mps_daemons() -> list[str]:
    "Command lines of the running MPS control daemons"
    lines = []
    for f in glob.glob("/proc/[0-9]*/cmdline"):
        try: lines.append(open(f, "rb").read().replace(b"\0", b" ").decode())
        except OSError: pass
    return [l for l in lines if "nvidia-cuda-mps-control" in l]


# ---- device-specific unit tests: a tiny model on the GPU and its copy on the CPU give the same answers

@pytest.fixture(scope="module")
def tiny():
    "(split, {model: (cpu model, cuda model)}) for SASRec and BERT4Rec, 3 blocks, random weights"
    from layerwise.config import TrainConfig
    from layerwise.recommender.data import SequenceSplit
    from layerwise.recommender.models import SeqRecommender
    rng = np.random.default_rng(0)
    split = SequenceSplit([rng.integers(0, 40, n) for n in rng.integers(3, 15, 64)], rng.integers(0, 40, 64),
                          rng.integers(0, 40, 64), list(range(40)), list(range(64)))
    torch.manual_seed(0)
    models = {}
    for kind in ("sasrec", "bert4rec"):
        m = SeqRecommender(TrainConfig(model=kind, n_layers=3, hidden=32, heads=2, inner=64, max_len=12, dropout=0.0), 40).eval()
        models[kind] = (m, copy.deepcopy(m).cuda())
    return split, models


@pytest.mark.parametrize("kind", ["sasrec", "bert4rec"])
def test_evaluate_and_logit_lens_match_cpu(tiny, kind):
    from layerwise.core.infotheory import logit_lens
    from layerwise.recommender.train import evaluate, left_pad
    split, (cpu, gpu) = tiny[0], tiny[1][kind]
    for a, b in zip(evaluate(cpu, split, "valid").values(), evaluate(gpu, split, "valid").values()): assert abs(a - b) < 1e-6
    hist = left_pad(split.history("valid"), 12, 40)
    lc, lg = logit_lens(cpu, hist, split.valid), logit_lens(gpu, hist, split.valid)  # targets on the CPU, model on the GPU
    assert lc.keys() == lg.keys() and all(abs(lc[n][k] - lg[n][k]) < 1e-6 for n in lc for k in lc[n])


def test_information_profile_on_gpu_notes_constant_state(tiny):
    from layerwise.core.infotheory import InfoTheoryConfig, information_profile
    split, (_, gpu) = tiny[0], tiny[1]["bert4rec"]
    res = information_profile(gpu, split, InfoTheoryConfig(n_users=None))
    assert res["constant_states"] == ["embedding"] and np.isnan(res["cka"][0][1]) and not np.isnan(res["cka"][1][2])


@pytest.mark.parametrize("kind", ["sasrec", "bert4rec"])
def test_fisher_on_gpu_matches_cpu(tiny, kind):
    from layerwise.core.fisher import block_fisher
    split, (cpu, gpu) = tiny[0], tiny[1][kind]
    np.testing.assert_allclose(block_fisher(gpu, split, n_users=None), block_fisher(cpu, split, n_users=None), rtol=2e-3)


def test_qlora_on_gpu(tiny):
    import bitsandbytes as bnb
    from layerwise.config import FitConfig
    from layerwise.core.qlora import finetune, memory_report, prepare_qlora
    from layerwise.recommender.train import evaluate
    split, (cpu, gpu) = tiny[0], tiny[1]["sasrec"]
    ql = prepare_qlora(gpu, r=4, dropout=0.0)
    lin = [m for m in ql.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(lin) == 18 and all(m.weight.device.type == "cuda" for m in lin)
    evaluate(ql, split, "valid")  # eval first, then train: the order that broke the CPU packed path
    res = finetune(ql, split, FitConfig(lr=1e-2, max_epochs=2, patience=2, batch_size=16))
    assert res["first_step"]["peak_bytes"] > 0 and len(res["epochs"]) == 2
    assert memory_report(ql)["linear_ratio"] < 0.2


@pytest.mark.parametrize("graphs", [False, True])
def test_training_resumes_on_gpu(tiny, tmp_path, graphs):
    "A loop stopped after 2 epochs on the GPU and continued from its state file (RNG states included) matches 4 uninterrupted epochs, also with CUDA graphs"
    from functools import partial
    from layerwise.config import FitConfig
    from layerwise.recommender.train import train_loop
    split, (_, gpu) = tiny[0], tiny[1]["sasrec"]
    def run(epochs, resume=None):
        m = copy.deepcopy(gpu).train()
        h = train_loop(m, split, partial(m.train_loss, every_position=graphs), m.parameters(),
                       FitConfig(lr=1e-2, max_epochs=epochs, patience=5, batch_size=16, ema_decay=0.5, warmup_steps=3 if graphs else 0),
                       progress=False, resume=resume, cuda_graphs=graphs)
        return m, [e["loss"] for e in h["epochs"]]
    whole, whole_loss = run(4)
    run(2, tmp_path/"loop.pt")
    rest, rest_loss = run(4, tmp_path/"loop.pt")
    np.testing.assert_allclose(rest_loss, whole_loss, rtol=1e-4)  # CUDA's embedding backward sums in any order: equal up to rounding
    assert all(torch.allclose(p, q, atol=1e-4) for p, q in zip(rest.parameters(), whole.parameters()))


def test_cuda_graph_steps_match_eager_steps(tiny):
    "SASRec steps replayed as CUDA graphs (warm-up schedule, weight average, a smaller last batch each epoch) give the eager loop's losses and weights"
    from functools import partial
    from layerwise.config import FitConfig
    from layerwise.recommender.train import train_loop, train_windows
    split, (_, gpu) = tiny[0], tiny[1]["sasrec"]  # dropout 0: no random numbers in the step
    def run(graphs):
        m = copy.deepcopy(gpu).train()
        h = train_loop(m, split, partial(m.train_loss, every_position=True), m.parameters(),
                       FitConfig(lr=1e-2, max_epochs=3, patience=5, batch_size=24, ema_decay=0.5, warmup_steps=4), progress=False, cuda_graphs=graphs)
        return m, [e["loss"] for e in h["epochs"]]
    (eager, eager_loss), (graphed, graphed_loss) = run(False), run(True)
    n_windows = len(train_windows(split, gpu.cfg.max_len))
    assert n_windows % 24 and n_windows > 48  # full-size batches (graphed) and a smaller last one (eager) in every epoch
    np.testing.assert_allclose(graphed_loss, eager_loss, rtol=1e-4)
    assert all(torch.allclose(p, q, atol=1e-4) for p, q in zip(graphed.parameters(), eager.parameters()))


def test_cuda_graph_draws_new_masks_at_every_replay(tiny):
    "BERT4Rec's masking captured in a graph draws a new mask at each replay (not the one of the capture), at least one real item per window"
    from layerwise.recommender.train import _graphed, train_windows
    split, (_, gpu) = tiny[0], tiny[1]["bert4rec"]
    batch = train_windows(split, gpu.cfg.max_len)[:24].cuda()
    step = lambda b: dict(zip(("inputs", "targets"), gpu.loss_inputs(b)))
    _, replay = _graphed(step, batch)
    draws = [replay(batch) for _ in range(3)]
    masks = [d["inputs"] == gpu.mask_token for d in draws]
    assert not torch.equal(masks[0], masks[1]) and not torch.equal(masks[1], masks[2])
    for d, m in zip(draws, masks):
        assert m.any(1).all() and torch.equal(m, d["targets"] != -100) and torch.equal(d["targets"][m], batch[:, 1:][m])


def test_fit_with_cuda_graphs_trains_on_ml100k():
    "`fit` with `cuda_graphs: true` on ML-100k (HF attention masks over padded windows inside the graph): both models learn in 3 epochs"
    from layerwise.config import load_config
    from layerwise.recommender.data import load_split
    from layerwise.recommender.train import evaluate, fit
    for name in ("sasrec_ml100k.yaml", "bert4rec_ml100k.yaml"):
        cfg, _ = load_config(ROOT/"configs"/name, None, ["device=cuda", "max_epochs=3", "patience=3", "cuda_graphs=true"])
        split = load_split(cfg)
        model, history = fit(cfg, split, progress=False)
        losses = [e["loss"] for e in history["epochs"]]
        assert losses[-1] < losses[0] and evaluate(model, split, "valid")["NDCG@10"] > 0.01, (name, losses)
