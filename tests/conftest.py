import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT/"tests"/"fixtures"/"toy.ipynb"


def cli(*args, timeout=900, **kw) -> subprocess.CompletedProcess:
    "Run the `layerwise` CLI (tests/lw_cli.py) in a subprocess from the repo root"
    return subprocess.run([sys.executable, str(ROOT/"tests"/"lw_cli.py"), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="session")
def toy_batch(tmp_path_factory) -> Path:
    "A finished batch of the toy notebook: conditions a, b, c x seeds 0-1, where c fails on purpose"
    out = tmp_path_factory.mktemp("batch")
    r = cli("batch", TOY, "--seeds", "0-1", "--grid", "condition=a,b,c", "-p", "fail_on=c", "--jobs", "2", "--out", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == str(out/"toy")
    return out/"toy"
