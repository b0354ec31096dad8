"""The masking rules of atm_service.redaction, case by case."""

from __future__ import annotations

import pytest

from atm_service.redaction import MASK, is_secret_name, mask_pan, redact_text, redact_value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("login password=hunter2 ok", f"login password={MASK} ok"),
        ('{"user": "a", "password": "two words"}', f'{{"user": "a", "password": "{MASK}"}}'),
        ("{'pin': '1234', 'n': 2}", f"{{'pin': '{MASK}', 'n': 2}}"),
        ("otc: 12345678, seal=87654321", f"otc: {MASK}, seal={MASK}"),
        ("csrf_token=abc&next=/", f"csrf_token={MASK}&next=/"),
        ("master_key=AAAA lock_key: BBBB", f"master_key={MASK} lock_key: {MASK}"),
        ("Authorization: Bearer abc.def", f"Authorization: {MASK}"),
        ("sent Bearer abc.def to it", f"sent Bearer {MASK} to it"),
        ("Cookie: atm_session=t.s; other=1", f"Cookie: {MASK}"),
        ("ATM-Signature: QUJD", f"ATM-Signature: {MASK}"),
        ("key_id=0123abcd public_key=AAAA", "key_id=0123abcd public_key=AAAA"),
        ("atm-lock-master-key:v1:QUJDRA==", MASK),
        ("hash $argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA end", f"hash {MASK} end"),
        ("-----BEGIN PRIVATE KEY-----\nMC4C\n-----END PRIVATE KEY-----", MASK),
        ("card 4111111111111111.", "card 411111******1111."),
        ("card 4111-1111-1111-1111", "card 411111******1111"),
        ("amex 3400 000000 00009", "amex 340000*****0009"),
        ("t2 ;5500005555555559=2912101?", "t2 ;550000******5559=2912101?"),
        ("masked 411111******1111 stays", "masked 411111******1111 stays"),
        (
            "terminal T1000001 offset 4096 day 20261116",
            "terminal T1000001 offset 4096 day 20261116",
        ),
        ("contract code=GOLD", "contract code=GOLD"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_long_digit_runs_keep_at_most_six_and_four() -> None:
    for digits in ("1234567890123", "1234567890123456789"):
        masked = mask_pan(digits)
        assert masked[:6] == digits[:6]
        assert masked[-4:] == digits[-4:]
        assert set(masked[6:-4]) == {"*"}
    assert redact_text("12345678901234567890") == "12345678901234567890"  # 20 digits: no card


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "Password",
        "new_password",
        "pin",
        "otc",
        "code",
        "seal",
        "csrf_token",
        "token",
        "master_key",
        "signing-key",
        "Authorization",
        "cookie",
        "set-cookie",
        "secret",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)
    assert redact_value(name, "anything") == MASK


@pytest.mark.parametrize("name", ["key_id", "device_key", "username", "task_id", "route"])
def test_public_names(name: str) -> None:
    assert not is_secret_name(name)
    assert redact_value(name, "visible") == "visible"


def test_structured_values_are_masked_inside() -> None:
    value = {"user": "ada", "form": {"password": "x", "note": "card 4111111111111111"}}
    assert redact_value("body", value) == {
        "user": "ada",
        "form": {"password": MASK, "note": "card 411111******1111"},
    }
    assert redact_value("pans", [4111111111111111]) == ["411111******1111"]
    assert redact_value("raw", b"PAN 4111111111111111") == "PAN 411111******1111"
    assert redact_value("count", 42) == 42


def test_identifiers_are_logged_as_they_are() -> None:
    """Random hex ids may hold a run of 13 digits; they are ids, not card numbers."""
    for name in ("request_id", "reference", "key_id"):
        assert redact_value(name, "30113528938640f39cbd7a20eeef8afb") == (
            "30113528938640f39cbd7a20eeef8afb"
        )
    assert redact_value("note", "30113528938640f39cbd7a20eeef8afb").startswith("301135****")
