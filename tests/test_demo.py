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


def test_demo_web_serves_the_board_with_a_made_up_pin(tmp_path):
    """`pager-edge demo --web` prints where the board is and a PIN that signs in."""
    import re
    import subprocess
    import sys
    import time

    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "pager_edge", "demo", "--web", "--duration", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "Ctrl+C" not in "".join(lines):
            lines.append(proc.stdout.readline())
        text = "".join(lines)
        m = re.search(r"staff board\s+(http://\S+)/\s+\(PIN (\d+)\)", text)
        assert m, text
        url, pin = m.groups()
        with httpx.Client(base_url=url, follow_redirects=False, timeout=5) as web:
            assert web.get("/").status_code == 303
            assert (
                web.post("/login", data={"pin": "000000" if pin != "000000" else "1"}).status_code
                == 401
            )
            signed_in = web.post("/login", data={"pin": pin})
            assert signed_in.status_code == 303 and "HttpOnly" in signed_in.headers["set-cookie"]
            assert web.get("/kiosk").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
