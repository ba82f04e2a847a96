"""The calling number on a case filed from a call: signalling (SIP From/P-Asserted-Identity, the SIPREC
participant, Twilio ``customParameters``, mod_audio_fork ``caller=``) as the call's row keeps it.

Signalling beats a number read out in the call: the case's ``caller_phone`` is the call's number, with
evidence ``{value, confidence: 1.0, source: "signalling"}`` in ``extracted``; a different number the caller
said (a number to call back on) is kept as ``extracted["callback_phone"]``, with where it was said.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.calls.models import Call
from telephony.numbers import phone_number, variants

SIGNALLING = "signalling"


def signalled(*, db: Session, recording_id: int) -> str | None:
    """The calling number of the call that became this recording (digits, a leading + kept), if it was a
    call with a number (not withheld, not a SIP account name)."""
    callers = db.execute(sa.select(Call.caller).where(Call.recording_id == recording_id).order_by(Call.id)).scalars()
    return next((n for c in callers if (n := phone_number(c))), None)


def same_number(a: str | None, b: str | None) -> bool:
    """One number however written (+8613812345678, 13812345678, 013812345678)."""
    if not a or not b:
        return False
    return bool(set(variants(a)) & set(variants(b)))


def take_signalled(number: str, *, values: dict[str, Any], extracted: dict[str, Any],
                   suggested: dict[str, Any]) -> None:
    """Put the call's ``number`` on a new case's values, ``extracted`` and ``suggested`` (changed in
    place); the number said in the call stays, as ``callback_phone``, only where it is another one."""
    said = extracted.pop("caller_phone", None)
    proposed = suggested.pop("caller_phone", None)
    if isinstance(said, dict) and not same_number(str(said.get("value") or ""), number):
        extracted["callback_phone"] = said
        if proposed is not None:
            suggested["callback_phone"] = proposed
    values["caller_phone"] = number
    extracted["caller_phone"] = {"value": number, "confidence": 1.0, "source": SIGNALLING}
    suggested["caller_phone"] = {"value": number, "confidence": 1.0, "source": SIGNALLING}
