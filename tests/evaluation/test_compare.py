"""Paired bootstrap deltas and ``chatbot eval-compare`` on hand-made reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chatbot.evaluation.compare import CompareError, compare, config_changes
from chatbot.evaluation.stats import format_delta, paired_delta


def test_a_consistent_gain_is_significant_and_noise_is_not() -> None:
    gain = paired_delta([(1.0, 0.0)] * 30 + [(0.0, 0.0)] * 70)
    assert gain is not None
    assert gain.n == 100 and gain.delta == pytest.approx(0.30)
    assert 0.0 < gain.low < 0.30 < gain.high < 0.45 and gain.significant
    # one question better, one worse: the interval straddles zero
    noise = paired_delta([(1.0, 0.0), (0.0, 1.0)] + [(1.0, 1.0)] * 10)
    assert noise is not None and noise.delta == 0.0 and not noise.significant
    assert paired_delta([]) is None


def test_mean_interval_brackets_the_mean() -> None:
    from chatbot.evaluation.stats import mean_interval

    interval = mean_interval([0.0] * 50 + [1.0] * 50)
    assert interval is not None and 0.35 < interval[0] < 0.5 < interval[1] < 0.65
    assert mean_interval([1.0, 1.0]) == (1.0, 1.0) and mean_interval([]) is None


def test_bootstrap_is_deterministic() -> None:
    pairs = [(0.3, 0.1), (0.8, 0.9), (0.5, 0.2), (1.0, 0.4)]
    assert paired_delta(pairs) == paired_delta(pairs)


def test_format_delta_marks_only_significant_improvements() -> None:
    better = {"delta": 0.126, "low": 0.031, "high": 0.22}
    assert format_delta(better) == "+12.6 [+3.1, +22.0] ✓"
    assert not format_delta({"delta": 0.05, "low": -0.01, "high": 0.11}).endswith("✓")
    # for wrong refusals lower is better
    assert format_delta({"delta": -0.2, "low": -0.3, "high": -0.1}, lower_is_better=True).endswith(
        "✓"
    )
    assert format_delta(None) == "–"


def _report(hits: list[float], weight: float, ids: list[str] | None = None) -> dict[str, Any]:
    ids = ids or [f"q{i}" for i in range(len(hits))]
    return {
        "mode": "retrieval",
        "dataset": {"name": "toy"},
        "git_commit": "abc",
        "started_at": "now",
        "config": {"retrieval": {"vector_weight": weight, "top_k": 5}},
        "questions": [
            {
                "id": qid,
                "question": f"question {qid}?",
                "language": "en",
                "systems": {"ours": {"scores": {"doc_hit@5": h, "mrr@10": h}}},
            }
            for qid, h in zip(ids, hits, strict=True)
        ],
    }


def test_compare_pairs_questions_and_lists_movers() -> None:
    before = _report([0.0] * 20 + [1.0] * 20, 1.0)
    after = _report([1.0] * 15 + [0.0] * 5 + [1.0] * 19 + [0.0], 0.5)
    text = compare(before, after, top=3)
    assert "| doc_hit@5 | 40 | 0.500 | 0.850 | +35.0 [" in text
    assert "✓" in text.split("| doc_hit@5 |")[1].splitlines()[0]
    assert "`retrieval.vector_weight: 1.0 → 0.5`" in text
    assert "1 worse, 15 better (of 40)." in text
    assert "- -1.00 `q39` question q39?" in text


def test_compare_only_pairs_shared_questions() -> None:
    before = _report([0.0, 0.0, 1.0], 1.0, ["a", "b", "c"])
    after = _report([1.0, 1.0], 1.0, ["b", "d"])
    text = compare(before, after)
    assert "| doc_hit@5 | 1 | 0.000 | 1.000 |" in text
    assert "- none" in text  # no setting differs


def test_incomparable_reports_are_refused() -> None:
    retrieval = _report([1.0], 1.0)
    answer = {**_report([1.0], 1.0), "mode": "answer"}
    with pytest.raises(CompareError, match="different modes"):
        compare(retrieval, answer)
    other = {**_report([1.0], 1.0), "dataset": {"name": "other"}}
    with pytest.raises(CompareError, match="different datasets"):
        compare(retrieval, other)
    with pytest.raises(CompareError, match="share no question"):
        compare(retrieval, _report([1.0], 1.0, ["zzz"]))
    assert config_changes({"config": {"a": {"b": 1}}}, {"config": {"a": {"b": 2}}}) == [
        "a.b: 1 → 2"
    ]


def test_cli_compare_writes_markdown_and_rejects_bad_input(tmp_path: Path) -> None:
    from chatbot.cli import app

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "report.json").write_text(json.dumps(_report([0.0, 1.0], 1.0)))
    (tmp_path / "b.json").write_text(json.dumps(_report([1.0, 1.0], 1.0)))
    out = tmp_path / "diff" / "compare.md"
    runner = CliRunner()
    result = runner.invoke(
        app, ["eval-compare", str(tmp_path / "a"), str(tmp_path / "b.json"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "| doc_hit@5 | 2 | 0.500 | 1.000 |" in out.read_text()
    missing = runner.invoke(app, ["eval-compare", str(tmp_path / "nope"), str(tmp_path / "b.json")])
    assert missing.exit_code == 2 and "no report at" in missing.output
    (tmp_path / "junk.json").write_text("{not json")
    junk = runner.invoke(
        app, ["eval-compare", str(tmp_path / "junk.json"), str(tmp_path / "b.json")]
    )
    assert junk.exit_code == 2 and "cannot read" in junk.output


def test_report_commit_is_read_in_a_clone_and_in_a_git_worktree(tmp_path: Path) -> None:
    from chatbot.evaluation.provenance import git_commit

    main = tmp_path / "main"
    (main / ".git" / "refs" / "heads").mkdir(parents=True)
    (main / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (main / ".git" / "refs" / "heads" / "main").write_text("a" * 40 + "\n")
    (main / "pkg").mkdir()
    assert git_commit(main / "pkg") == "a" * 40
    # a worktree on a branch: HEAD in .git/worktrees/wt, the branch ref in the main .git
    admin = main / ".git" / "worktrees" / "wt"
    admin.mkdir(parents=True)
    (admin / "commondir").write_text("../..\n")
    (admin / "HEAD").write_text("ref: refs/heads/topic\n")
    (main / ".git" / "refs" / "heads" / "topic").write_text("b" * 40 + "\n")
    wt = tmp_path / "wt"
    (wt / "pkg").mkdir(parents=True)
    (wt / ".git").write_text(f"gitdir: {admin}\n")
    assert git_commit(wt / "pkg") == "b" * 40
    (admin / "HEAD").write_text("c" * 40 + "\n")  # detached
    assert git_commit(wt / "pkg") == "c" * 40
