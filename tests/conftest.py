import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT/"tests"/"fixtures"
TOY = FIXTURES/"toy.ipynb"


def run_cli(*args, env=None, check=True) -> subprocess.CompletedProcess:
    "Run `layerwise *args` in a subprocess from the repo root with environment `env`; `check`: fail on a non-zero exit"
    p = subprocess.run([sys.executable, "-c", "from layerwise.cli import main; main()", *map(str, args)], cwd=ROOT,
                       env=env, capture_output=True, text=True)
    if check: assert p.returncode == 0, p.stderr
    return p


@pytest.fixture
def isolated(tmp_path) -> dict:
    "An environment whose results and checkpoint cache live in `tmp_path`"
    return {**os.environ, "LAYERWISE_RESULTS": str(tmp_path/"results"), "LAYERWISE_CACHE": str(tmp_path/"cache")}


def cli(*args, timeout=900, **kw) -> subprocess.CompletedProcess:
    "Run the `layerwise` CLI (tests/lw_cli.py) in a subprocess from the repo root"
    return subprocess.run([sys.executable, str(ROOT/"tests"/"lw_cli.py"), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="session")
def toy_batch(tmp_path_factory) -> Path:
    "A finished batch of the toy notebook: conditions a, b, c x seeds 0-1, where c fails on purpose"
    out = tmp_path_factory.mktemp("batch")
    r = cli("batch", TOY, "--seeds", "0-1", "--grid", "condition=a,b,c", "-p", "fail_on=c", "--jobs", "2", "--out", out)
    assert r.returncode == 1, r.stderr  # the two runs of condition c fail on purpose: status 1 after finishing the rest
    assert "error: 2 run(s) failed" in r.stderr and sum(line.startswith("failed: ") for line in r.stderr.splitlines()) == 2
    assert r.stdout.strip().splitlines()[-1] == str(out/"toy")
    return out/"toy"


@pytest.fixture(scope="session")
def reported(toy_batch, tmp_path_factory) -> tuple[Path, dict]:
    "`layerwise.site.report` over the fixture experiments, resuming `toy_batch`: its index.html and the run files' mtimes before"
    from layerwise.batch import RunsFailed
    from layerwise.site import report
    before = {p: p.stat().st_mtime_ns for p in [*toy_batch.glob("*/seed_*/done.json"), *toy_batch.glob("*/seed_*/error.json")]}
    d = tmp_path_factory.mktemp("site")
    (d/"report.yaml").write_text("toy:\n  grid:\n    condition: [a, b, c]\n  params:\n    fail_on: c\n")
    with pytest.raises(RunsFailed) as failed:  # condition c fails again; the site is built first
        report(seeds="0-1", jobs=2, out=toy_batch.parent, config=d/"report.yaml", experiments=TOY.parent, site=d/"_site")
    assert len(failed.value.failed) == 2
    return failed.value.output, before
