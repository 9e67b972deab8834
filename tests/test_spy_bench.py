"""`pager-edge bench spy`: py-spy's raw stacks counted into the README's stages."""

from __future__ import annotations

from click.testing import CliRunner

from bench.spy import LOOP, NOT, PIPELINE, SCOPE, shares, spy_cmd

ROOT = "<module> (<string>:1);run_round (bench/pipeline.py:90)"
PIPELINE_LINES = [
    f"{ROOT};Ingestor._handle (agent/ingest/ingestor.py:1);parse_document (p.py:2);_loads (p.py:3) 5",
    f"{ROOT};Ingestor._handle (i.py:1);parse_document (p.py:2);__new__ (<string>:1) 2",
    f"{ROOT};Ingestor._handle (i.py:1);parse_document (p.py:2) 3",
    f"{ROOT};Ingestor._handle (i.py:1);Ingestor.apply (i.py:9);page (s.py:1);_replace (c.py:1) 4",
    f"{ROOT};Writes.write_or_set_aside (w.py:1);Writes.write_batch (w.py:2) 6",
    f"{ROOT};parse_document (p.py:2) 50",  # the bench's own parse pass: not the ingest's
    "garbage without a count",
]


def test_stacks_are_counted_into_stages_by_their_frames_in_order():
    stages, total = shares(PIPELINE_LINES, PIPELINE, SCOPE["pipeline"], NOT["pipeline"])
    assert total == 20
    assert stages == {
        "parse: JSON decode": 5,
        "parse: building records": 2,  # the root's (<string>) does not count: it is outside
        "parse: checks": 3,
        "fold: copying views (replace)": 4,
        "write: SQLite (statements, commit)": 6,
    }


def test_the_loop_view_leaves_the_bench_driver_out(tmp_path):
    lines = [
        "run (a.py:1);BaseEventLoop._run_once (b.py:1);x (aiocoap/udp6.py:1) 7",
        "run (a.py:1);BaseEventLoop._run_once (b.py:1);Ingestor._handle (i.py:1);"
        "Ingestor.apply (i.py:2) 3",
        "run (a.py:1);BaseEventLoop._run_once (b.py:1);measure_ingest (bench/ingest.py:1) 9",
    ]
    stages, total = shares(lines, LOOP, SCOPE["loop"], NOT["loop"])
    assert total == 10 and stages == {"aiocoap (receive, ACK, observe)": 7, "fold": 3}
    before, after = tmp_path / "before.txt", tmp_path / "after.txt"
    before.write_text("\n".join(lines))
    after.write_text(lines[0])
    out = CliRunner().invoke(spy_cmd, ["--loop", str(before), str(after)])
    assert out.exit_code == 0, out.output
    assert "70.0%" in out.output and "100.0%" in out.output and "samples" in out.output
