"""A tiny dataset through ``chatbot eval`` on the fake models: report files, metrics, floors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

DOCS = {
    "chain.txt": (
        "Chain care\n\nClean the bicycle chain every 300 kilometres with a degreaser. "
        "Apply one drop of lubricant to each roller after it has dried completely."
    ),
    "tomato.txt": (
        "Tomato seedlings\n\nSow tomato seeds six weeks before the last frost. "
        "Transplant the seedlings when they are 15 cm tall and the nights stay warm."
    ),
    "tea.zh.txt": "绿茶冲泡\n\n冲泡绿茶的水温以八十度为宜。每次浸泡两到三分钟即可饮用。",
}


def _span(file: str, text: str) -> dict[str, object]:
    start = DOCS[file].index(text)
    return {"file": file, "start": start, "end": start + len(text), "text": text}


QUESTIONS = [
    {
        "id": "toy-1",
        "meta": {"question_type": "fact"},
        "question": "How often should the bicycle chain be cleaned with a degreaser?",
        "reference_answer": "every 300 kilometres",
        "reference_answers": ["every 300 kilometres"],
        "source_files": ["chain.txt"],
        "answer_spans": [_span("chain.txt", "every 300 kilometres")],
        "answerable": True,
        "language": "en",
    },
    {
        "id": "toy-2",
        "meta": {"question_type": "how_to"},
        "question": "When should tomato seedlings be transplanted?",
        "reference_answer": "when they are 15 cm tall",
        "reference_answers": ["when they are 15 cm tall"],
        "source_files": ["tomato.txt"],
        "answer_spans": [_span("tomato.txt", "when they are 15 cm tall")],
        "answerable": True,
        "language": "en",
    },
    {
        "id": "toy-3",
        "meta": {"question_type": "fact"},
        "question": "冲泡绿茶的水温是多少度？",
        "reference_answer": "八十度",
        "reference_answers": ["八十度"],
        "source_files": ["tea.zh.txt"],
        "answer_spans": [_span("tea.zh.txt", "八十度")],
        "answerable": True,
        "language": "zh",
    },
    {
        "id": "toy-4",
        "meta": {"question_type": "no_answer"},
        "question": "Who won the chess world championship in 1972?",
        "reference_answer": None,
        "reference_answers": [],
        "source_files": [],
        "answer_spans": [],
        "answerable": False,
        "language": "en",
    },
]


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    folder = tmp_path / "toyset"
    (folder / "docs").mkdir(parents=True)
    for name, text in DOCS.items():
        (folder / "docs" / name).write_text(text, encoding="utf-8")
    (folder / "qa.jsonl").write_text(
        "\n".join(json.dumps(q, ensure_ascii=False) for q in QUESTIONS) + "\n", encoding="utf-8"
    )
    return folder


def _invoke(*args: str) -> tuple[int, str]:
    from chatbot.cli import app

    result = CliRunner().invoke(app, ["eval", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_retrieval_eval_writes_a_report_with_baselines(toy: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    code, output = _invoke(str(toy), "--mode", "retrieval", "--out", str(out))
    assert code == 0, output
    assert {p.name for p in out.iterdir()} >= {
        "report.json",
        "report.md",
        "metrics.png",
        "latency.png",
    }
    report = json.loads((out / "report.json").read_text())
    assert report["systems"] == ["ours", "llamaindex-default", "bm25"]
    assert report["dataset"]["documents"] == 3 and report["dataset"]["questions_used"] == 4
    ours = report["metrics"]["ours"]
    assert ours["all"]["metrics"]["doc_hit@5"] == 1.0
    assert ours["all"]["counts"]["doc_hit@5"] == 3  # the unanswerable question is left out
    assert ours["all"]["metrics"]["span_hit@5"] == 1.0
    assert set(ours["by_language"]) == {"en", "zh"}
    assert ours["by_question_type"]["fact"]["counts"]["doc_hit@5"] == 2
    assert set(ours["by_question_type"]) == {"fact", "how_to", "no_answer"}
    assert report["metrics"]["bm25"]["all"]["metrics"]["doc_hit@5"] == 1.0
    assert report["latency_ms"]["ours"]["total_ms"]["n"] == 4
    assert report["config"]["retrieval"]["top_k"] >= 1 and report["versions"]["llama-index-core"]
    # what dtype "auto" resolved to on this machine, never "auto" itself
    assert report["compute"]["embedding_dtype"] in {"float32", "bfloat16"}
    assert report["compute"]["llm_dtype"] in {"float32", "bfloat16"}
    assert len(report["questions"]) == 4
    lead = report["deltas_vs_ours"]["bm25"]["doc_hit@5"]
    assert lead["n"] == 3 and lead["delta"] == 0.0 and lead["low"] <= 0.0 <= lead["high"]
    md = (out / "report.md").read_text()
    assert "| doc_hit@5 |" in md and "Δ vs llamaindex-default" in md and "## Language: zh" in md
    assert "## Question type: how_to" in md

    # a second run reuses the cached indexes
    code, _ = _invoke(
        str(toy), "--out", str(tmp_path / "again"), "--baseline", "llamaindex-default"
    )
    again = json.loads((tmp_path / "again" / "report.json").read_text())
    assert (
        code == 0
        and again["setup"]["ours"]["cached"]
        and again["setup"]["llamaindex-default"]["cached"]
    )
    assert again["systems"] == ["ours", "llamaindex-default"]

    # the two runs compared: same retrieval, so nothing moved
    from chatbot.cli import app

    result = CliRunner().invoke(app, ["eval-compare", str(out), str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    assert "| doc_hit@5 | 3 | 1.000 | 1.000 | +0.0 [+0.0, +0.0] |" in result.output
    assert "0 worse, 0 better (of 4)" in result.output


def test_answer_eval_scores_answers_refusals_and_citations(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatbot.services import ChatService

    askers: list[str] = []
    stream = ChatService.stream

    def recording(self: ChatService, *args: object, **kwargs: object) -> object:
        askers.append(str(kwargs["user_id"]))
        return stream(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ChatService, "stream", recording)
    out = tmp_path / "answers"
    code, output = _invoke(str(toy), "--mode", "answer", "--baseline", "bm25", "--out", str(out))
    assert code == 0, output
    # ours asks every question as a new user: no profile carries over between questions
    assert len(askers) == len(QUESTIONS) == len(set(askers))
    report = json.loads((out / "report.json").read_text())
    ours = report["metrics"]["ours"]["all"]
    assert ours["counts"]["f1"] == 3 and ours["counts"]["refusal_accuracy"] == 1
    # the fake model quotes the first sentence of the best source and cites it
    assert ours["metrics"]["context_doc_hit"] == 1.0
    assert ours["metrics"]["citation_gold_doc"] == 1.0
    assert 0.0 < ours["metrics"]["f1"] <= 1.0
    first = report["questions"][0]["systems"]["ours"]
    assert first["answer"] and first["cited"] == ["chain.txt"]
    assert "first_token_ms" in first["latency_ms"] and "understand_ms" in first["latency_ms"]
    assert "citation_span" in (out / "report.md").read_text()
    # the fake model only quotes its sources: every answered question is fully grounded
    assert ours["metrics"]["grounded"] == 1.0 and ours["counts"]["grounded"] >= 3
    assert "## Worst answers of ours" in (out / "report.md").read_text()


def test_floors_gate_the_exit_code(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    floors = tmp_path / "floors.json"
    floors.write_text(json.dumps({"system": "ours", "floors": {"doc_hit@5": 0.5}}))
    monkeypatch.chdir(tmp_path)  # the default report folder is reports/ under the working dir
    code, output = _invoke(str(toy), "--baseline", "none", "--floors", str(floors))
    assert code == 0, output
    assert (tmp_path / "reports" / "latest" / "report.json").is_file()
    floors.write_text(json.dumps({"system": "ours", "floors": {"doc_hit@5": 1.01}}))
    code, output = _invoke(str(toy), "--baseline", "none", "--floors", str(floors), "--limit", "2")
    assert code == 1
    assert "below the floor" in output


def test_bad_dataset_is_a_usage_error(tmp_path: Path) -> None:
    code, output = _invoke(str(tmp_path), "--baseline", "none")
    assert code == 2 and "qa.jsonl" in output


def test_committed_floors_file_is_valid() -> None:
    floors = json.loads((Path(__file__).parent / "floors.json").read_text())
    assert floors["system"] == "ours"
    assert 0.5 < floors["floors"]["doc_hit@5"] <= floors["measured"]["doc_hit@5"]


def test_a_plotting_failure_keeps_the_results(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chatbot.evaluation.report as report_module

    def broken(*_: object) -> list[Path]:
        raise RuntimeError("no fonts")

    monkeypatch.setattr(report_module, "write_plots", broken)
    out = tmp_path / "noplots"
    code, output = _invoke(str(toy), "--baseline", "none", "--out", str(out))
    assert code == 0, output
    assert json.loads((out / "report.json").read_text())["metrics"]["ours"]["all"]["metrics"]
    assert "| doc_hit@5 |" in (out / "report.md").read_text()
    assert not (out / "metrics.png").exists()
