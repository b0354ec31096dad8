"""Settings: read from the environment, and refusing unsafe values in production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from atm_service.config import Settings


def test_production_refuses_the_development_secret() -> None:
    with pytest.raises(ValidationError, match="ATM_SECRET_KEY"):
        Settings(environment="production")
    with pytest.raises(ValidationError, match="ATM_SECRET_KEY"):
        Settings.model_validate({"environment": "production", "secret_key": "short"})
    Settings.model_validate({"environment": "production", "secret_key": "s" * 40})


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATM_DATABASE_URL", "postgresql://postgres@db/atm")
    monkeypatch.setenv("ATM_LOGIN_MAX_FAILURES", "3")
    settings = Settings()
    assert settings.database_url == "postgresql://postgres@db/atm"
    assert settings.login_max_failures == 3
