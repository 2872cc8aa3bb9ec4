import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from chatbot.settings import Settings


def test_yaml_defaults_are_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATBOT_LLM__MODE")
    s = Settings()
    assert s.llm.mode == "local"
    assert s.llm.model == "qwen2.5-coder-1.5b-instruct"
    assert s.server.port == 7860


def test_env_overrides_one_nested_key_and_keeps_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATBOT_INGEST__CHUNK_TOKENS", "123")
    s = Settings()
    assert s.ingest.chunk_tokens == 123
    assert s.ingest.keywords_per_chunk == 8  # from the YAML defaults
    assert s.embedding.mode == "fake"


def test_extra_config_file_sits_between_env_and_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("server:\n  port: 9000\nstore:\n  nprobes: 7\n")
    monkeypatch.setenv("CHATBOT_CONFIG_FILE", str(extra))
    monkeypatch.setenv("CHATBOT_SERVER__PORT", "9100")
    s = Settings()
    assert s.server.port == 9100
    assert s.store.nprobes == 7


def test_invalid_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATBOT_SERVER__PORT", "not-a-port")
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_production_refuses_placeholder_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATBOT_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings()
    monkeypatch.setenv("CHATBOT_SECRET_KEY", "a-real-secret-value")
    assert Settings().environment == "production"


def test_every_field_is_described() -> None:
    from pydantic import BaseModel

    def walk(model: type[BaseModel], prefix: str = "") -> list[str]:
        missing = []
        for name, field in model.model_fields.items():
            if not field.description:
                missing.append(prefix + name)
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                missing += walk(ann, prefix + name + ".")
        return missing

    assert walk(Settings) == []


def test_config_show_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from chatbot.cli import app
    from chatbot.settings import get_settings

    monkeypatch.setenv("CHATBOT_SECRET_KEY", "s3cr3t-canary")
    monkeypatch.setenv("CHATBOT_LLM__API_KEY", "sk-canary")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "s3cr3t-canary" not in result.output and "sk-canary" not in result.output
    shown = json.loads(result.output)
    assert shown["secret_key"] == "**********"
    assert shown["data_dir"] == os.environ["CHATBOT_DATA_DIR"]
