"""Event envelopes on the wire: what a consumer reads back is what the publisher meant,
for every kind of payload field (text, numbers, lists of flat dicts)."""
from __future__ import annotations

import json

from shared.events import AnswersPresigned, CertificateSuspended, Envelope, new_envelope


def test_an_envelope_reads_back_as_it_was_written():
    event = CertificateSuspended(certificate_id="c1", issuer_id="i1", serial="1" * 48, username="12345678_CAS-B",
                                 provider_cui="12345678", status="suspended",
                                 changed_at="2026-12-03T10:00:00+00:00", reason="verificare")
    envelope = new_envelope(event, "B")
    back = Envelope.from_json(envelope.to_json())
    assert back == envelope
    assert back.payload() == event


def test_a_batch_of_presigned_answers_survives_the_wire_and_stays_the_publishers():
    answers = [{"issuer_id": "i1", "serial": str(n), "hash_algorithm": "sha256", "der": "AAAA", "state": "good",
                "signer_key_hash": "ab", "produced_at": "2026-12-03T10:00:00+00:00",
                "next_update": "2026-12-04T10:00:00+00:00"} for n in range(5000)]
    event = AnswersPresigned(answers=answers)
    envelope = new_envelope(event, "")
    body = envelope.to_json()
    assert json.loads(body)["data"]["answers"] == answers
    assert Envelope.from_json(body).payload().answers == answers
    assert answers[0]["serial"] == "0"  # the publisher's own list is left as it was

