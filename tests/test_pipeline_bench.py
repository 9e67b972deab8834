"""`pager-edge bench pipeline`: its input is the producer's lifecycles with the history the agent
would fetch, and a round through the real ingestor and store writes every lifecycle whole."""

from __future__ import annotations

import sqlite3

from click.testing import CliRunner

from bench.pipeline import pipeline_bench_cmd, prepare, run_round


def test_a_round_writes_every_lifecycle_event_and_reports_each_stage(tmp_path):
    prepared = prepare(40)
    assert len(prepared.payloads) == 120 and prepared.history  # created, paged, seated
    r = run_round(prepared, tmp_path / "round.db", batch=16)
    assert r.notifications == 120 and r.events == 120  # every end was in a history answer
    kinds = sqlite3.connect(tmp_path / "round.db").execute(
        "SELECT kind, count(*) FROM events GROUP BY kind ORDER BY kind"
    )
    assert dict(kinds.fetchall()) == {"cleared": 40, "created": 40, "paged": 40}
    assert min(r.parse_us, r.handle_us, r.history_us, r.write_us) > 0
    assert r.total_us == r.handle_us + r.history_us + r.write_us


def test_the_command_prints_the_figures():
    out = CliRunner().invoke(pipeline_bench_cmd, ["--parties", "20", "--rounds", "2"])
    assert out.exit_code == 0, out.output
    assert "agent's own" in out.output and "round 2:" in out.output
