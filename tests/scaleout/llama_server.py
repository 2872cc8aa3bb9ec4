"""Serve a GGUF model over the OpenAI API with llama.cpp (xllamacpp), on 127.0.0.1 only.

Run with the interpreter that has xllamacpp (``.venv-llamacpp``):
``python tests/scaleout/llama_server.py MODEL.gguf PORT [N_CTX]`` (context 2048 by default).
Prints ``READY <base_url>`` once the model is loaded, then serves chat completions and
embeddings until its stdin closes or it gets SIGTERM. Test and bench helper only
(``bench/llm_runtime.py``); deployments use the llama.cpp or vLLM server images.
"""

import signal
import sys
import threading

import xllamacpp as xlc


def main() -> None:
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
