"""Serve a GGUF model over the OpenAI API with llama.cpp (xllamacpp), on 127.0.0.1 only.

Run with the interpreter that has xllamacpp (``.venv-llamacpp``):
``python tests/scaleout/llama_server.py MODEL.gguf PORT [N_CTX]`` (context 2048 by default).
Prints ``READY <base_url>`` once the model is loaded, then serves chat completions and
embeddings until its stdin closes or it gets SIGTERM. Test and bench helper only
(``bench/llm_runtime.py``); deployments use the llama.cpp or vLLM server images.

:func:`running` starts it from any interpreter and :func:`model_gguf` gives it the default model
(the test fixture and the bench use both).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


@contextmanager
def running(python: Path | str, gguf: Path, n_ctx: int = 2048) -> Iterator[str]:
    """Serve ``gguf`` with this script under ``python``; yields the base URL, stops it after.

    Raises RuntimeError if the server does not come up (it prints READY once loaded, ~2-10 s).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(python), __file__, str(gguf), str(port), str(n_ctx)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until READY or exit
        if not line.startswith("READY"):
            raise RuntimeError(f"llama.cpp server did not start: {line!r}, rc={proc.poll()}")
        yield line.split()[1]
    finally:
        with suppress(ProcessLookupError):  # already gone, e.g. it failed to start
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def model_gguf(name: str, cache_dir: Path) -> Path:
    """The built-in model's GGUF, assembled from its installed parts once (sha256 checked).

    Raises ``chatbot.models.local_weights.ModelWeightsError`` if the parts are not installed.
    """
    from chatbot.models.local_weights import assemble_parts, builtin_spec

    target = cache_dir / f"{name}.gguf"
    if not target.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        assemble_parts(builtin_spec(name), target.with_suffix(".partial")).rename(target)
    return target


def main() -> None:
    import xllamacpp as xlc  # only in the llama.cpp interpreter

    model, port = sys.argv[1], int(sys.argv[2])
    params = xlc.CommonParams()
    params.model.path = model
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = int(sys.argv[3]) if len(sys.argv) > 3 else 2048
    params.n_parallel = 1
    params.cpuparams.n_threads = 2
    params.cpuparams_batch.n_threads = 2
    params.embedding = True  # one server for /v1/embeddings and /v1/chat/completions
    params.pooling_type = xlc.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
    server = xlc.Server(params)
    print("READY", f"http://127.0.0.1:{port}/v1", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait(timeout=3600)
    del server


if __name__ == "__main__":
    main()
