"""Test-only helpers: document fixtures in every supported format."""

from __future__ import annotations

from pathlib import Path


def make_pdf(path: Path, lines: list[str], title: str = "") -> Path:
    """Write a minimal valid one-page PDF with Helvetica text lines."""
    content = (
        "BT /F1 12 Tf 72 720 Td 14 TL "
        + " ".join(
            "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '"
            for line in lines
        )
        + " ET"
    )
    info = f"<< /Title ({title}) >>" if title else "<< >>"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        info,
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(out)
    return path


def make_docx(path: Path, paragraphs: list[str], title: str = "") -> Path:
    import docx

    document = docx.Document()
    for p in paragraphs:
        document.add_paragraph(p)
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "cell one"
    table.rows[0].cells[1].text = "cell two"
    document.core_properties.title = title
    document.save(str(path))
    return path


HTML_PAGE = """<!doctype html><html><head><title>Chain care guide</title></head><body>
<div class="cookie-banner">We use cookies to improve your experience. Accept all cookies.</div>
<header><nav><a href="/">Home</a> | <a href="/shop">Shop</a> | <a href="/about">About us</a></nav></header>
<aside class="sidebar"><h3>Related</h3><ul><li>Top 10 bikes</li><li>Subscribe to newsletter</li></ul></aside>
<main><article><h1>Chain care guide</h1>
<p>Clean your bicycle chain every 300 kilometres with a degreaser and a stiff brush.
Rinse it, let it dry completely, and then apply one drop of lubricant to each roller.</p>
<p>Wipe off the excess lubricant after five minutes, because a wet chain attracts grit that wears
the cassette and the chainrings much faster than normal riding does.</p>
</article></main>
<footer>Copyright 2026 Example Cycles. All rights reserved. Privacy policy. Terms of service.</footer>
</body></html>"""


# Two-word phrases in the keyword search (tests/test_phrases.py, tests/test_store.py and its
# scale-out twin): the question's words repeated but apart, and the same words together.
PHRASE_QUESTION = "What was the male to female ratio?"
WORDS_APART = "Ratio of female and male patients: female and male ones, female and male staff."
WORDS_TOGETHER = "In this cohort the male to female ratio was two to one."
