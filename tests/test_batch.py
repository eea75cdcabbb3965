"End-to-end checks of `layerwise batch`: real papermill runs of tests/fixtures/toy.ipynb."
import io, json, os, signal, subprocess, sys, time, contextlib
from pathlib import Path
import pytest
from conftest import ROOT, TOY, cli
from layerwise.batch import plan_batch, run_batch

sys.path.insert(0, str(ROOT/"tests"))
import lw_cli


def hidden(folder: Path) -> list[Path]:
    "Temporary or half-written leftovers under `folder`"
    return [p for p in folder.rglob(".*")] + [p for p in folder.rglob("*.tmp*")]


def metrics(batch: Path) -> dict:
    "(condition, seed) -> metrics of every finished run of `batch`"
    return {(p.parents[1].name, p.parent.name): json.loads((p.parent/"results.json").read_text())["metrics"]
            for p in batch.glob("*/seed_*/done.json")}


def check_matches_local(outcomes: list[dict], batch: Path, toy_batch: Path):
    "Every run in `outcomes` of `batch` finished with the metrics of the same run in the locally executed `toy_batch`"
    assert [o["status"] for o in outcomes] == ["done"] * len(outcomes)
    found, local = metrics(batch), metrics(toy_batch)
    assert len(found) == len(outcomes) and found == {k: local[k] for k in found}


def test_batch_runs_every_seed_and_condition(toy_batch):
    runs = sorted(p.relative_to(toy_batch).as_posix() for p in toy_batch.glob("*/seed_*"))
    assert runs == [f"condition={c}/seed_{s}" for c in "abc" for s in (0, 1)]
    for c in "ab":
        for s in (0, 1):
            run = toy_batch/f"condition={c}"/f"seed_{s}"
            assert {"output.ipynb", "log.txt", "results.json", "done.json", "results"} <= {p.name for p in run.iterdir()}
            assert json.loads((run/"done.json").read_text())["params"] == {"fail_on": "c", "condition": c, "seed": s}
            assert len(list((run/"results").glob("toy/*/bar.png"))) == 1  # the notebook's own plots are kept
    for s in (0, 1):  # failed runs keep the executed notebook and papermill's error message
        err = json.loads((toy_batch/"condition=c"/f"seed_{s}"/"error.json").read_text())
        assert err["type"] == "PapermillExecutionError" and err["ename"] == "ValueError"
        assert "toy failure requested for condition 'c'" in err["message"]
        assert not (toy_batch/"condition=c"/f"seed_{s}"/"done.json").exists()
    assert hidden(toy_batch) == []


def test_batch_statistics(toy_batch):
    s = json.loads((toy_batch/"summary.json").read_text())
    assert (s["n_runs"], s["n_failed"], s["conditions"]) == (6, 2, ["condition=a", "condition=b", "condition=c"])
    score = s["metrics"]["score"]
    assert set(score["conditions"]) == {"condition=a", "condition=b"} and score["conditions"]["condition=a"]["n"] == 2
    assert score["anova"]["df_between"] == 1 and 0 <= score["anova"]["eta2"] <= 1
    assert len(score["tukey"]) == 1
    md = (toy_batch/"summary.md").read_text()
    assert "One-way ANOVA" in md and "Tukey HSD" in md and "## Unfinished runs" in md and "4 of 6 runs finished, 2 failed.\n" in md
    assert (toy_batch/"plot_score.png").stat().st_size > 1000


def test_rerun_skips_finished_and_redoes_failed(reported, toy_batch):
    "`report` runs the toy batch again with the same parameters: finished runs are kept, failed ones redone"
    before = reported[1]
    done = {p: t for p, t in before.items() if p.name == "done.json"}
    assert len(done) == 4 and {p: p.stat().st_mtime_ns for p in done} == done
    failed = {p: t for p, t in before.items() if p.name == "error.json"}
    assert len(failed) == 2 and all(p.stat().st_mtime_ns > t for p, t in failed.items())
    assert hidden(toy_batch) == []


def test_dask_executor_matches_local(toy_batch, tmp_path):
    from distributed import LocalCluster
    b = plan_batch(str(TOY), "0", {"fail_on": "c"}, {"condition": ["a", "b"]}, out=tmp_path)
    with LocalCluster(processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        outcomes = run_batch(b, scheduler=cluster.scheduler_address, progress=False)
    check_matches_local(outcomes, b.folder, toy_batch)


def test_gpu_workers(toy_batch, tmp_path):
    "One Dask worker per GPU id, each pinned by CUDA_VISIBLE_DEVICES (no GPU needed: the ids are only pinned)"
    b = plan_batch(str(TOY), "0-1", {"fail_on": "c"}, {"condition": ["a", "b"]}, out=tmp_path)
    outcomes = run_batch(b, gpus=["0", "1"], progress=False)
    check_matches_local(outcomes, b.folder, toy_batch)
    workers = [json.loads((Path(o["folder"])/"done.json").read_text())["worker"] for o in outcomes]
    assert workers == [o["worker"] for o in outcomes]
    assert {w["cuda_visible_devices"] for w in workers} == {"0", "1"}  # both workers got runs
    assert len({w["pid"] for w in workers}) == 2


def test_resume_after_kill(tmp_path):
    args = ["batch", TOY, "--seeds", "0-1", "--grid", "condition=a", "-p", "sleep=3", "--jobs", "1", "--out", tmp_path]
    batch = tmp_path/"toy"/"condition=a"
    proc = subprocess.Popen([sys.executable, str(ROOT/"tests"/"lw_cli.py"), *map(str, args)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # kill the batch process while the second run is in flight (first finished, a temp folder exists)
        deadline = time.time() + 600
        while not (list(batch.glob("seed_*/done.json")) and list(batch.glob(".seed_*.tmp-*"))):
            assert proc.poll() is None and time.time() < deadline, "batch ended before it could be interrupted"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL); proc.wait()
    finally:
        if proc.poll() is None: proc.kill()
    first = {p: p.stat().st_mtime_ns for p in batch.glob("seed_*/done.json")}
    assert len(first) == 1 and list(batch.glob(".seed_*"))  # interrupted: a half-finished run left behind
    time.sleep(3)  # the killed worker's kernel notices its parent is gone and exits
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in batch.iterdir()) == ["seed_0", "seed_1"]
    assert all((batch/f"seed_{s}"/"done.json").is_file() for s in range(2))
    assert {p: p.stat().st_mtime_ns for p in first} == first  # the finished run was not redone
    assert hidden(tmp_path) == []
    assert json.loads((tmp_path/"toy"/"summary.json").read_text())["metrics"]["score"]["conditions"]["condition=a"]["n"] == 2


@pytest.mark.parametrize("args, message", [
    (["nope"], "unknown experiment 'nope'"),
    ([TOY, "-p", "sede=1"], "does not declare parameter(s) 'sede'"),
    ([TOY, "--grid", "condition"], "malformed --grid 'condition'"),
    ([TOY, "--grid", "conditon=a,b"], "does not declare parameter(s) 'conditon'"),
    ([TOY, "--seeds", "0-x"], "malformed --seeds"),
    ([TOY, "-p", "sleep=fast"], "'sleep' expects float"),
    ([TOY, "--gpus", "all", "--scheduler", "tcp://127.0.0.1:1"], "use one of --gpus"),
    ([TOY, "--gpus", "two"], "malformed --gpus 'two'"),
])
def test_bad_input_fails_before_running(tmp_path, args, message):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as e:
        lw_cli.cli.main(["batch", *map(str, args), "--out", str(tmp_path/"out")])
    assert e.value.code == 2 and err.getvalue().startswith("error: ") and message in err.getvalue()
    assert not (tmp_path/"out").exists()  # nothing ran, nothing was written
