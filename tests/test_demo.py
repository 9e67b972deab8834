"""`pager-edge demo --headless`: the product's main job, with no hardware and no configuration."""

from __future__ import annotations

import subprocess
import sys


def test_headless_demo_records_the_ground_truth(tmp_path):
    db = tmp_path / "kept.db"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pager_edge",
            "demo",
            "--headless",
            "--duration",
            "6",
            "--speed",
            "60",
            "--seed",
            "4",
            "--drop-rate",
            "0.1",
            "--db",
            str(db),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,  # no config.toml here: the demo needs none
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "matches the simulator's ground truth: yes" in r.stdout
    assert "Traceback" not in r.stderr
    assert db.exists()  # --db keeps the database
    export = subprocess.run(
        [sys.executable, "-m", "pager_edge", "export", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert export.returncode == 0 and len(export.stdout.splitlines()) >= 8
