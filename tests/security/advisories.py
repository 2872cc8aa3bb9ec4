"""An offline floor of package versions, for when pip-audit cannot reach a vulnerability DB.

Each row: the package, the first version without the advisory, the advisory, and where it is
cited. ``guide`` rows come from /work/shared/guides/security.md; ``known`` rows are well-known
advisories of packages this project ships (fixed versions as published by the advisories; not
re-checked online from this machine). A package that is not installed passes its row, except
``ABSENT`` packages, which must not be installed at all.
"""

from __future__ import annotations

FLOORS: list[tuple[str, str, str, str]] = [
    (
        "pypdf",
        "6.9.2",
        "CVE-2026-27024/27025/27026/27628/27888/28351/33699/40260 (DoS)",
        "guide 4.5",
    ),
    ("langchain", "0.0.317", "GHSA-655w-fm8m-m478 RecursiveUrlLoader SSRF", "guide LLM03"),
    ("gradio", "5.11.0", "CVE-2024-47167 SSRF, CVE-2025-23042 path ACL bypass", "known"),
    ("starlette", "0.47.2", "CVE-2024-47874, CVE-2025-54121 multipart DoS", "known"),
    ("python-multipart", "0.0.18", "CVE-2024-53981 boundary DoS", "known"),
    ("jinja2", "3.1.6", "CVE-2025-27516 sandbox escape", "known"),
    ("h11", "0.16.0", "CVE-2025-43859 request smuggling", "known"),
    ("urllib3", "2.5.0", "CVE-2025-50181/50182 redirect handling", "known"),
    ("requests", "2.32.4", "CVE-2024-47081 .netrc credential leak", "known"),
    ("lxml-html-clean", "0.4.0", "CVE-2024-52595 sanitizer bypass", "known"),
    ("torch", "2.6.0", "CVE-2025-32434 torch.load(weights_only=True) RCE", "known"),
    ("transformers", "4.48.0", "CVE-2024-11392/11393/11394 deserialisation", "known"),
    ("llama-index-core", "0.12.28", "CVE-2024-3271, CVE-2025-1793", "known"),
    ("pip", "25.3", "CVE-2023-5752, CVE-2025-8869", "known"),
    ("setuptools", "78.1.1", "CVE-2025-47273 path traversal", "known"),
]
ABSENT: list[tuple[str, str]] = [
    ("PyPDF2", "CVE-2023-36807 infinite loop, unmaintained (guide 4.5): use pypdf"),
]
