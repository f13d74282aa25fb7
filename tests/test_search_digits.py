"""examples/search_digits.py: two worker processes share one SQLite study, and the report."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import archbuilder
from archbuilder.space.output import read_header

from .conftest import ROOT

optuna = pytest.importorskip("optuna")
pytest.importorskip("sklearn")

SCRIPT = ROOT / "examples" / "search_digits.py"
TINY = ["--epochs", "1", "--set", "scale.width=0.25", "--threads", "1"]


@pytest.mark.slow
def test_two_workers_complete_one_study_without_losing_or_repeating_trials(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    common = [sys.executable, str(SCRIPT), "--storage", storage, "--study", "s", *TINY]
    workers = [
        subprocess.Popen(
            [*common, "--trials", "2", "--seed", str(seed), "--no-report"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    ran = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, out + err
        ran.append({int(n) for n in re.findall(r"^trial (\d+):", out, re.MULTILINE)})
    first, second = ran
    assert len(first) == len(second) == 2 and not first & second  # each trial ran once, in one worker

    study = optuna.load_study(study_name="s", storage=storage)
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == sorted(first | second) == [0, 1, 2, 3]
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    assert all(t.state in finished for t in trials)

    report = subprocess.run(
        [*common, "--report", "--out", "report"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert report.returncode == 0, report.stderr
    folder = tmp_path / "report"
    assert (folder / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| trial | test accuracy | MACs |" in (folder / "front.md").read_text()
    front = sorted(folder.glob("front-trial*.yaml"))
    assert front and len(front) == len(study.best_trials)
    by_number = {t.number: t for t in trials}
    for path in front:
        trial = by_number[int(path.stem.removeprefix("front-trial"))]
        assert read_header(path.read_text())["decisions"] == trial.params
        spec = archbuilder.load_spec(path)
        assert archbuilder.summarize(spec).inference_macs == trial.values[1]
