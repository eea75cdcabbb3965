"End-to-end `layerwise train` on a tiny fixture, its cache, determinism and bad input."
import gzip, json
from pathlib import Path
import pytest
from conftest import FIXTURES, run_cli

TINY = ["--set", f"data_path={FIXTURES/'tiny.inter'}", "--set", "n_layers=2", "--set", "hidden=16", "--set", "inner=32",
        "--set", "max_len=8", "--set", "max_epochs=3", "--set", "batch_size=16"]

def train(env, *extra):
    p = run_cli("train", "--config", "configs/sasrec_ml100k.yaml", *TINY, *extra, env=env)
    out = Path(p.stdout.strip().splitlines()[-1])  # the last stdout line is the result folder
    return out, json.loads((out/"results.json").read_text())

@pytest.mark.parametrize("model", ["sasrec", "bert4rec"])
def test_train_writes_results(isolated, model):
    out, r = train(isolated, "--set", f"model={model}", "--seed", "3")
    for stage in ("valid", "test"):
        assert {f"{m}@{k}" for m in ("HR", "NDCG", "MRR") for k in (5, 10, 20)} <= set(r["quality"][stage])
        assert 0.0 <= r["quality"][stage]["NDCG@10"] <= r["quality"][stage]["HR@10"] <= 1.0
        assert r["metrics"][f"{stage}_NDCG@10"] == r["quality"][stage]["NDCG@10"]  # the flat metrics the batch statistics read
    assert r["config"]["model"] == model and r["seed"] == 3 and r["epochs"] >= 1 and r["seconds_per_epoch"] > 0
    assert r["environment"]["packages"]["torch"].startswith("2.13")
    assert (out/"report.md").exists() and (out/"learning_curve.png").stat().st_size > 0
    assert out.parent.parent == Path(isolated["LAYERWISE_RESULTS"])

def test_same_seed_same_metrics_and_cache_reuse(isolated, tmp_path):
    _, first = train(isolated)
    _, cached = train(isolated)  # same config: the cached checkpoint is reused
    assert first["checkpoint"] == cached["checkpoint"] and first["metrics"] == cached["metrics"]  # the training record too
    fresh_cache = {**isolated, "LAYERWISE_CACHE": str(tmp_path/"other-cache")}
    _, retrained = train(fresh_cache)  # trained again from scratch with the same seed
    assert retrained["quality"] == first["quality"]  # every quality number (the seconds are the new run's own)
    _, other_seed = train(fresh_cache, "--seed", "1")
    assert other_seed["checkpoint"] != first["checkpoint"]

def bad(env, *args):
    p = run_cli("train", "--config", "configs/sasrec_ml100k.yaml", *args, env=env, check=False)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("error: ") and "Traceback" not in p.stderr
    return p.stderr

def test_bad_config_key(isolated):
    assert "unknown key 'n_layerz'" in bad(isolated, "--set", "n_layerz=4")
    assert "'n_layers' expects int" in bad(isolated, "--set", "n_layers=four")

def test_missing_config_file(isolated):
    p = run_cli("train", "--config", "configs/nope.yaml", env=isolated, check=False)
    assert p.returncode == 2 and "configs/nope.yaml: config file not found" in p.stderr

@pytest.mark.parametrize("name,content,message", [
    ("missing.inter", None, "missing.inter: file not found"),
    ("empty.inter", "", "empty.inter: empty file"),
    ("cols.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\t5\n", "cols.inter, line 2: expected 4 columns"),
    ("ids.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\tabc\t5\t9\n", "ids.inter, line 2: item id must be numeric, got 'abc'"),
    ("ts.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\t5\tnoon\n", "ts.inter, line 2: timestamp must be numeric"),
])
def test_bad_data_files(isolated, tmp_path, name, content, message):
    if content is not None: (tmp_path/name).write_text(content)
    assert message in bad(isolated, "--set", f"data_path={tmp_path/name}")

def test_truncated_gzip(isolated, tmp_path):
    recs = "".join(json.dumps({"reviewerID": f"U{i % 7}", "asin": f"B{i % 11}", "unixReviewTime": i}) + "\n" for i in range(500))
    (tmp_path/"reviews.json.gz").write_bytes(gzip.compress(recs.encode())[:-40])
    assert "truncated or corrupt gzip" in bad(isolated, "--set", "dataset=amazon", "--set", f"data_path={tmp_path/'reviews.json.gz'}")
