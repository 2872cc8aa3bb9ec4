import json
from pathlib import Path

import pytest

from ingest.readers import SkipFile, read_file
from tests.helpers import HTML_PAGE, make_docx, make_pdf

LIMIT = 1_000_000


def test_text_and_markdown(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Plain title\n\nSome text here.", encoding="utf-8")
    (tmp_path / "b.md").write_text(
        "---\nauthor: x\n---\n# Heading\n\nSee [the docs](http://x.org) ![logo](l.png).",
        encoding="utf-8",
    )
    a = read_file(tmp_path / "a.txt", max_bytes=LIMIT)
    b = read_file(tmp_path / "b.md", max_bytes=LIMIT)
    assert a.title == "Plain title" and "Some text here." in a.text
    assert b.title == "Heading"
    assert "the docs" in b.text and "http://x.org" not in b.text and "author" not in b.text


def test_html_keeps_main_text_and_drops_boilerplate(tmp_path: Path) -> None:
    (tmp_path / "p.html").write_text(HTML_PAGE, encoding="utf-8")
    parsed = read_file(tmp_path / "p.html", max_bytes=LIMIT)
    assert "degreaser" in parsed.text and "cassette" in parsed.text
    for boilerplate in ("cookies", "Subscribe", "All rights reserved", "About us"):
        assert boilerplate not in parsed.text
    assert parsed.title == "Chain care guide"


def test_pdf_and_docx(tmp_path: Path) -> None:
    pdf = make_pdf(
        tmp_path / "d.pdf", ["Tyre pressure matters.", "Check it weekly."], title="Tyres"
    )
    parsed = read_file(pdf, max_bytes=LIMIT)
    assert "Tyre pressure matters." in parsed.text and parsed.title == "Tyres"
    docx = make_docx(tmp_path / "d.docx", ["Budget first.", "Save 20 percent."], title="Money")
    parsed = read_file(docx, max_bytes=LIMIT)
    assert "Save 20 percent." in parsed.text and "cell two" in parsed.text
    assert parsed.title == "Money"


def test_json_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "f.json").write_text(
        json.dumps([{"question": "What is APR?", "answer": "Annual percentage rate."}])
    )
    (tmp_path / "f.jsonl").write_text('{"q": "一", "a": "自行车链条"}\n\n{"q": "two", "a": "b"}\n')
    assert "Annual percentage rate." in read_file(tmp_path / "f.json", max_bytes=LIMIT).text
    assert "自行车链条" in read_file(tmp_path / "f.jsonl", max_bytes=LIMIT).text


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"   \n\n  ", "no text"),
        ("binary.txt", bytes(range(256)) * 20, "binary"),
        ("corrupt.pdf", b"%PDF-1.4\n1 0 obj <<>> garbage", "corrupt PDF"),
        ("corrupt.docx", b"PK\x03\x04 not really a zip", "corrupt DOCX"),
        ("bad.json", b"{not json", "invalid JSON"),
        ("bad.jsonl", b'{"a": 1}\n{oops\n', "line 2"),
        ("x.exe", b"MZ", "unsupported"),
    ],
)
def test_bad_inputs_are_skipped_with_a_reason(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SkipFile, match=reason):
        read_file(path, max_bytes=LIMIT)


def test_huge_and_unreadable(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("word " * 1000)
    with pytest.raises(SkipFile, match="too large"):
        read_file(big, max_bytes=100)
    dangling = tmp_path / "gone.txt"
    dangling.symlink_to(tmp_path / "missing-target.txt")
    with pytest.raises(SkipFile, match="unreadable"):
        read_file(dangling, max_bytes=LIMIT)
