"""Export verification: each kind of tampering, and the message that names it."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import pytest

from lockctl import (
    AuditLog,
    CheckpointSigner,
    ExportInvalid,
    MemoryLogStore,
    PublicKeys,
    verify_export,
)
from tests.lockctl.conftest import T0

SIGNER = CheckpointSigner.from_seed(bytes(32))
KEYS = PublicKeys([SIGNER.public_key])


def export(entries: int = 10, every: int = 4, signer: CheckpointSigner = SIGNER) -> list[bytes]:
    log = AuditLog(MemoryLogStore(), signer, log_id="bank-1:locks", checkpoint_every=every)
    for n in range(entries):
        log.append("code-issued", {"lock": "CX-1", "user": n}, now=T0)
    out = io.BytesIO()
    log.export(out, now=T0, by="auditor")
    return out.getvalue().splitlines(keepends=True)


def line_of(lines: list[bytes], index: int) -> int:
    """Position (0-based) of entry ``index`` in the export's lines."""
    return next(
        n
        for n, line in enumerate(lines)
        if line.startswith(b'{"prev"') and f'"i":{index},'.encode() in line[:100]
    )


def failure(lines: list[bytes], keys: PublicKeys | None = KEYS) -> ExportInvalid:
    with pytest.raises(ExportInvalid) as caught:
        verify_export(lines, keys)
    return caught.value


def test_an_intact_export_verifies() -> None:
    summary = verify_export(export(), KEYS)
    assert (summary.start, summary.end, summary.checkpoints) == (0, 11, 3)
    assert summary.kinds == {"code-issued": 10, "export": 1}
    assert summary.pinned
    assert "entries 0 to 10 (11 entries)" in summary.describe()


def test_without_pinned_keys_the_result_says_so() -> None:
    summary = verify_export(export(), None)
    assert not summary.pinned
    assert "not pinned" in summary.describe()


def test_a_changed_entry_is_named() -> None:
    lines = export()
    at = line_of(lines, 5)
    lines[at] = lines[at].replace(b'"user":5', b'"user":6')
    error = failure(lines)
    assert error.index == 5
    assert error.line == at + 1
    assert "entry 5 was changed" in str(error)


def test_a_changed_entry_just_before_a_checkpoint_is_named() -> None:
    lines = export()
    at = line_of(lines, 3)
    assert lines[at + 1].startswith(b'{"checkpoint"')
    lines[at] = lines[at].replace(b'"user":3', b'"user":9')
    error = failure(lines)
    assert error.index == 3
    assert "head signed in checkpoint of size 4" in str(error)


def test_a_rewritten_tail_is_caught_by_the_signed_head() -> None:
    """Change entry 5 and recompute every later 'prev': only the signature catches it."""
    lines = export()
    at = line_of(lines, 5)
    lines[at] = lines[at].replace(b'"user":5', b'"user":50')
    prev = hashlib.sha256(lines[at][:-1]).hexdigest().encode()
    n = at + 1
    while not lines[n].startswith(b'{"checkpoint"'):
        lines[n] = lines[n][:9] + prev + lines[n][73:]
        prev = hashlib.sha256(lines[n][:-1]).hexdigest().encode()
        n += 1
    error = failure(lines)
    assert error.index == 7
    assert "entries from 4 on were rewritten" in str(error)


def test_a_changed_prev_after_a_checkpoint_blames_that_entry() -> None:
    lines = export()
    at = line_of(lines, 4)
    lines[at] = lines[at][:9] + b"f" * 64 + lines[at][73:]
    error = failure(lines)
    assert error.index == 4
    assert "signed checkpoint vouches" in str(error)


def test_a_removed_entry_is_named() -> None:
    lines = export()
    del lines[line_of(lines, 6)]
    error = failure(lines)
    assert error.index == 6
    assert "entry 6 was removed or moved" in str(error)


def test_reordered_entries_are_named() -> None:
    lines = export()
    a, b = line_of(lines, 1), line_of(lines, 2)
    lines[a], lines[b] = lines[b], lines[a]
    assert failure(lines).index == 1


def test_a_repeated_entry_is_named() -> None:
    lines = export()
    lines.insert(line_of(lines, 2) + 1, lines[line_of(lines, 2)])
    error = failure(lines)
    assert error.index == 3
    assert "found entry 2 again" in str(error)


def test_an_inserted_line_is_named() -> None:
    lines = export()
    lines.insert(line_of(lines, 2), b'{"note":"hello"}\n')
    error = failure(lines)
    assert error.index == 2
    assert "neither an entry nor a checkpoint" in str(error)


def test_truncation_is_caught() -> None:
    lines = export()
    cut_after_checkpoint = lines[: line_of(lines, 8)]
    assert cut_after_checkpoint[-1].startswith(b'{"checkpoint"')
    assert "truncated" in str(failure(cut_after_checkpoint))
    uncovered = lines[: line_of(lines, 10)]
    error = failure(uncovered)
    assert error.index == 8
    assert "not covered by a signed checkpoint" in str(error)
    assert "empty" in str(failure([]))
    assert "no entries" in str(failure(lines[:1]))


def test_cutting_the_front_is_caught() -> None:
    lines = export()
    header = json.loads(lines[0])
    header["start"] = 4
    header["prev"] = hashlib.sha256(lines[line_of(lines, 3)][:-1]).hexdigest()
    forged = [json.dumps(header).encode() + b"\n", *lines[line_of(lines, 4) :]]
    assert "were cut off" in str(failure(forged))


def test_forged_and_foreign_checkpoints_are_refused() -> None:
    lines = export()
    at = next(n for n, line in enumerate(lines) if line.startswith(b'{"checkpoint"'))
    lines_bad_sig = list(lines)
    lines_bad_sig[at] = lines[at].replace(b'"signature":"', b'"signature":"AA', 1)
    assert "signature does not verify" in str(failure(lines_bad_sig))
    other = export(signer=CheckpointSigner.from_seed(b"\1" * 32))
    error = failure(other)
    assert "not trusted" in str(error)
    # unpinned, the other signer's export "verifies", but only says so
    assert not verify_export(other, None).pinned


def test_a_flipped_signature_bit_is_refused() -> None:
    lines = export()
    at = next(n for n, line in enumerate(lines) if line.startswith(b'{"checkpoint"'))
    data = json.loads(lines[at])
    raw = bytearray(base64.b64decode(data["signature"]))
    raw[10] ^= 1
    data["signature"] = base64.b64encode(bytes(raw)).decode()
    lines[at] = json.dumps(data, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    error = failure(lines)
    assert "signature does not verify" in str(error)
    assert error.line == at + 1


def test_header_problems_are_named() -> None:
    lines = export()
    assert "not a JSON export header" in str(failure([b"nonsense\n", *lines[1:]]))
    assert "version" in str(failure([lines[0].replace(b'"version":1', b'"version":9'), *lines[1:]]))
    bad_prev = lines[0].replace(b'"prev":"0000', b'"prev":"1111')
    assert "zero hash" in str(failure([bad_prev, *lines[1:]]))
    assert "blank line" in str(failure([*lines[:3], b"\n", *lines[3:]]))
