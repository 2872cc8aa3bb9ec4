"""A. Bad inputs to chat and ingestion: every malformed input gets a 4xx or a clean parse
failure within limits; never a 5xx, a hang or an OOM; nothing half-indexed (guide A1-A11).

Schemathesis generates requests from our own /openapi.json (bounded examples), Hypothesis checks
properties of the input guards, and atheris fuzzes the document parsers in a subprocess
(``fuzz_readers.py``; ~30 s here, CHATBOT_FUZZ_SECONDS under ``make test-long``).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatbot.web.documents import ALLOWED_SUFFIXES, safe_filename
from chatbot.web.views import safe_markdown
from chatbot.web.widget import normalise_origin, origin_matches
from tests.helpers import make_docx, make_pdf
from tests.security.live import Live, signup

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("CHATBOT_SCHEMA_EXAMPLES", "15"))
FUZZ_SECONDS = int(os.environ.get("CHATBOT_FUZZ_SECONDS", "30"))

CHAT_BODIES: list[Any] = [
    {}, {"message": ""}, {"message": "   "}, {"message": "\x00\x00"}, {"message": None},
    {"message": 5}, {"message": ["a"]}, {"message": {"a": 1}}, {"message": "a" * 4001},
    {"message": "a" * 8001}, {"message": "ok", "conversation_id": "x" * 65},
    {"message": "ok", "conversation_id": "../../etc/passwd"}, {"message": "ok", "conversation_id": 7},
    {"message": "ok", "conversation_id": "0" * 32}, {"message": "\u202eevil\u202c"},
    {"message": "‮" * 100}, {"message": "😀" * 1000}, {"message": "你好" * 500}, [], "text", 1, None,
    {"message": "a\u0000b"}, {"message": "x", "extra": "y" * 5000},
]  # fmt: skip
RAW_BODIES = [b"{", b"\xff\xfe\x00", b'{"message": "\\ud800 lone surrogate"}', b'{"message": "\xff"}', b"null", b"[" * 5000 + b"]" * 5000,
              b'{"message": "' + b"\\u0000" * 1000 + b'"}']  # fmt: skip


def test_a1_bad_chat_bodies_are_4xx_never_5xx(live: Live) -> None:
    client = live.accounts["bob"].client
    for body in CHAT_BODIES:
        r = client.post("/api/chat", json=body)
        assert r.status_code < 500, (body, r.status_code, r.text[:300])
        if r.status_code >= 400:
            assert r.json()["error"]["code"], body
    for raw in RAW_BODIES:
        r = client.post("/api/chat", content=raw, headers={"content-type": "application/json"})
        assert r.status_code < 500, (raw[:40], r.status_code, r.text[:300])
    for ctype in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
    ):
        r = client.post("/api/chat", content=b"message=hi", headers={"content-type": ctype})
        assert 400 <= r.status_code < 500, (ctype, r.status_code)


def _docx_bomb() -> bytes:
    """A valid-looking DOCX whose document.xml inflates to ~400 MB."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>',
        )
        with z.open("word/document.xml", "w") as member:
            member.write(b'<?xml version="1.0"?><w:document xmlns:w="x"><w:body><w:p><w:r><w:t>')
            chunk = b"A" * (1 << 20)
            for _ in range(400):
                member.write(chunk)
            member.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return out.getvalue()


def _pdf_bomb() -> bytes:
    """A PDF whose content stream inflates to ~300 MB of text operators."""
    raw = b"BT /F1 12 Tf 72 720 Td (A) Tj ET\n" * (300_000_000 // 33)
    stream = zlib.compress(raw, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length "
        + str(len(stream)).encode()
        + b" /Filter /FlateDecode >>\nstream\n"
        + stream
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out


def _bad_files(tmp: Path) -> dict[str, bytes]:
    pdf = make_pdf(tmp / "ok.pdf", ["hello pump"]).read_bytes()
    docx = make_docx(tmp / "ok.docx", ["hello pump"]).read_bytes()
    return {
        "empty.txt": b"",
        "binary.txt": os.urandom(20000),
        "nul.md": b"# t\n\x00\x00\x00 text",
        "latin1.txt": "caf\xe9 cr\xe8me".encode("latin-1") * 10,
        "truncated.pdf": pdf[: len(pdf) // 2],
        "header-only.pdf": b"%PDF-1.7\n",
        "not-a.pdf": b"hello, I am text",
        "bomb.pdf": _pdf_bomb(),
        "truncated.docx": docx[: len(docx) // 2],
        "not-a.docx": b"PK\x03\x04garbage",
        "bomb.docx": _docx_bomb(),
        "deep.json": b"[" * 100_000 + b"]" * 100_000,
        "deep-object.json": b'{"a":' * 5000 + b"1" + b"}" * 5000,
        "bad.json": b'{"a": ',
        "bad.jsonl": b'{"a": 1}\n{oops\n',
        "nested.html": b"<div>" * 50_000 + b"text" + b"</div>" * 50_000,
        "script-only.html": b"<html><script>alert(1)</script></html>",
        "long-line.md": b"word " * 150_000,
        "control.txt": bytes(range(1, 32)) * 500,
        "bom.txt": "\ufeffhello pump".encode("utf-8-sig"),
        "gb.txt": "水泵维护说明".encode("gb18030"),
        "evil name ../../x.md": b"# ok\n\npump",
        "noext": b"hello",
        "x.exe": b"MZ",
    }


@pytest.mark.timeout(600)
def test_a2_bad_documents_fail_cleanly_fast_and_leave_nothing_half_indexed(
    live: Live, tmp_path: Path
) -> None:
    user_id, client = signup(live.url, f"uploader-{uuid.uuid4().hex[:6]}")
    accepted: set[str] = set()
    slow: dict[str, float] = {}
    for name, data in _bad_files(tmp_path).items():
        started = time.monotonic()
        r = client.post("/api/documents", files={"file": (name, data, "application/octet-stream")})
        took = time.monotonic() - started
        assert r.status_code < 500, (name, r.status_code, r.text[:300])
        if r.status_code == 201:
            accepted.add(r.json()["document"]["id"])
        else:
            assert r.json()["error"]["message"], name
        if took > 20:
            slow[name] = round(took, 1)
    assert not slow, f"parsing took too long: {slow}"
    assert client.get("/api/health").status_code == 200
    listed = {d["id"] for d in client.get("/api/documents").json()["documents"]}
    assert listed == accepted, "a refused upload left a document behind"
    store = live.container.store
    for doc in store.documents(acl=f"user:{user_id}"):
        assert store.vector_count_for(doc.doc_id) == doc.n_chunks, doc.source
    folder = live.data_dir / "uploads" / user_id
    files = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    assert len(files) == len(accepted), f"refused uploads left files: {files}"
    client.close()


@pytest.mark.timeout(900)
def test_a3_schemathesis_finds_no_server_error(live: Live) -> None:
    import schemathesis
    from hypothesis import Phase

    _, client = signup(live.url, f"fuzzer-{uuid.uuid4().hex[:6]}")
    spec = client.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    cookies = dict(client.cookies)
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP_OPERATIONS:
            continue  # would end the account or session the other operations use

        @settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck), derandomize=True, database=None)  # fmt: skip
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            nonlocal calls
            calls += 1
            response = case.call(base_url=live.url, cookies=cookies, timeout=60)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}"
                )

        run()
    assert calls >= EXAMPLES * 5
    assert not failures, failures[:10]
    assert client.get("/api/me").status_code == 200
    client.close()


SKIP_OPERATIONS = {("DELETE", "/api/me"), ("POST", "/api/auth/logout")}


# -- properties of the input guards (Hypothesis) -------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_a4_safe_filename_never_escapes_the_folder(name: str) -> None:
    try:
        clean = safe_filename(name)
    except ValueError:
        return
    assert "/" not in clean and "\\" not in clean and "\x00" not in clean
    assert not clean.startswith(".") and clean.endswith(ALLOWED_SUFFIXES)
    assert len(clean) <= 130


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_a4_origin_matching_is_exact(text: str) -> None:
    assert not origin_matches(text, []), "an empty allow-list allows nothing"
    try:
        origin = normalise_origin(text)
    except ValueError:
        assert not origin_matches(text, ["https://a.example"]) or text.strip().lower().startswith(
            "https://a.example"
        )
        return
    assert normalise_origin(origin) == origin
    assert origin_matches(text, [origin])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_a4_safe_markdown_is_inert(text: str) -> None:
    out = safe_markdown(text)
    assert "<" not in out and "![" not in out.replace("!\\[", "")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000), st.sampled_from(sorted(ALLOWED_SUFFIXES)))
def test_a4_readers_only_ever_raise_skipfile(
    tmp_path_factory: Any, data: bytes, suffix: str
) -> None:
    from ingest.readers import SkipFile, read_file

    path = tmp_path_factory.mktemp("r") / f"f{suffix}"
    path.write_bytes(data)
    try:
        parsed = read_file(path, max_bytes=1_000_000)
    except SkipFile:
        return
    assert parsed.text.strip()


def test_a10_atheris_fuzzes_the_parsers(tmp_path: Path) -> None:
    """A short coverage-guided run (CHATBOT_FUZZ_SECONDS, 30 s by default; make test-long: 600 s
    per parser). A crash means a reader raised something other than SkipFile, hung or blew up."""
    pytest.importorskip("atheris")
    for kind in ["pdf", "docx"] if FUZZ_SECONDS <= 60 else ["pdf", "docx", "html", "json", "text"]:
        seconds = max(5, FUZZ_SECONDS // 2) if FUZZ_SECONDS <= 60 else FUZZ_SECONDS
        corpus = tmp_path / f"corpus-{kind}"
        corpus.mkdir()
        run = subprocess.run(
            [sys.executable, str(ROOT / "tests" / "security" / "fuzz_readers.py"), kind, str(corpus),
             f"-max_total_time={seconds}", "-timeout=20", "-rss_limit_mb=0",
             f"-artifact_prefix={tmp_path}/", "-print_final_stats=1"],
            cwd=ROOT, capture_output=True, text=True, timeout=seconds + 180,
        )  # fmt: skip
        crashes = [p.name for p in tmp_path.glob("crash-*")] + [
            p.name for p in tmp_path.glob("timeout-*")
        ]
        tail = run.stderr[-3000:]
        assert run.returncode == 0 and not crashes, f"{kind}: rc={run.returncode} {crashes}\n{tail}"
        assert "stat::number_of_executed_units" in run.stderr, tail
        (tmp_path / f"{kind}.stats").write_text(json.dumps(tail[-600:]))
