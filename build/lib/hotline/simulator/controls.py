"""What the people holding the phones do: dial, hang up, answer, decline, press, speak.

These are called from any thread (a test, the web phone's HTTP handlers). Each checks
the request under ``sim.lock`` (``KeyError`` for an unknown call, ``ValueError`` for one
that cannot do that now) and only schedules the work at ``sim.now``; the loop does it,
so what happens is decided at that moment (keys arriving when no ``<Gather>`` listens are
dropped, as on Twilio).
"""

from __future__ import annotations

from hotline.simulator.core import Sim
from hotline.simulator.state import CallStatus, Direction, Leg

#: StirVerstat of a call whose carrier vouches that the caller may use the number.
FULL_ATTESTATION = "TN-Validation-Passed-A"
#: The keys of a phone's keypad.
KEYPAD = frozenset("0123456789*#")
#: What an answer/decline puts in a ringing leg's mailbox, and the ring outcome it means.
RING_DECISIONS = {"answer": "answer", "decline": CallStatus.BUSY}


class Controls:
    """The outside actions of ``TwilioSim`` (thread-safe; they only schedule)."""

    def dial(self: Sim, from_number: str, to_number: str,
             stir_verstat: str | None = FULL_ATTESTATION) -> Leg:
        """A phone calls a hotline number; the leg starts at the next loop step.

        ``stir_verstat`` is what Twilio reports of the caller ID's STIR/SHAKEN check: by
        default a phone on a carrier that vouches for its own number; a spoofed caller ID
        comes with ``TN-Validation-Failed-*``, ``No-TN-Validation`` or nothing (None).
        """
        if to_number not in self.numbers:
            raise ValueError(f"{to_number} is not one of the hotline numbers")
        leg = self.new_leg(
            from_number, to_number, Direction.INBOUND, status=CallStatus.RINGING,
            url=self.voice_url, status_callback=self.status_callback_url,
            stir_verstat=stir_verstat,
        )
        self.schedule(0, lambda: self.start_leg(leg, self._inbound_phase(leg)))
        return leg

    def hangup(self: Sim, sid: str, after: float = 0.0) -> None:
        """The party on leg ``sid`` hangs up (after ``after`` seconds).

        A call still ringing for a person's decision is declined (busy). Raises
        ``KeyError`` for an unknown sid and ``ValueError`` if the call has already ended.
        """
        with self.lock:
            leg = self.leg_of(sid)
            if leg.ended:
                raise ValueError(f"call {sid} has already ended ({leg.status})")
            self.schedule(after, lambda: self._party_hangup(leg))

    def answer(self: Sim, sid: str) -> None:
        """Pick up leg ``sid``, ringing an interactive phone (now)."""
        with self.lock:
            self._decide(self.leg_of(sid), "answer")

    def decline(self: Sim, sid: str) -> None:
        """Decline leg ``sid``, ringing an interactive phone: it ends ``busy`` (now)."""
        with self.lock:
            self._decide(self.leg_of(sid), "decline")

    def press(self: Sim, sid: str, digits: str) -> None:
        """Key in ``digits`` (0-9, * and #) on leg ``sid`` of an interactive phone."""
        if not digits or not set(digits) <= KEYPAD:
            raise ValueError(f"keys must be some of 0-9, * and #, not {digits!r}")
        with self.lock:
            leg = self._live_leg(sid, "press keys on")
            self.schedule(0, lambda: self._take_input(leg, "dtmf", digits))

    def speak(self: Sim, sid: str, text: str, confidence: float = 0.9) -> None:
        """Say ``text`` on leg ``sid`` of an interactive phone (speech input)."""
        if not text.strip():
            raise ValueError("there is nothing to say")
        with self.lock:
            leg = self._live_leg(sid, "speak on")
            said = (" ".join(text.split()), confidence)
            self.schedule(0, lambda: self._take_input(leg, "speech", said))

    def _say_across(self: Sim, leg: Leg, text: str) -> None:
        """Words said on a bridged call reach the other end, as on a real line (they were
        dropped: nothing was listening for input). The log says who spoke, never the words."""
        peer = self.legs.get(leg.bridged_to or "")
        if peer is None:
            return
        for side, line in ((leg, f"you said: {text}"), (peer, f"they said: {text}")):
            side.heard.append(line)
            self.phone_for(side).heard.append(line)
        self.log("said", sid=leg.sid, to=peer.sid)

    def leg_of(self: Sim, sid: str) -> Leg:
        """The leg called ``sid``; ``KeyError`` with a readable message if there is none."""
        with self.lock:
            leg = self.legs.get(sid)
            if leg is None:
                raise KeyError(f"no call {sid}")
            return leg

    # -- checks and loop-side work -----------------------------------------------------

    def _decide(self: Sim, leg: Leg, decision: str) -> None:
        """Schedule an answer/decline for a leg ringing a person (lock held)."""
        box = leg.ring_box
        if box is None:
            raise ValueError(self._why_not_ringing(leg, decision))
        self.schedule(0, lambda: box.put(decision))

    def _why_not_ringing(self: Sim, leg: Leg, decision: str) -> str:
        what = f"cannot {decision} call {leg.sid}"
        if leg.ended:
            return f"{what}: it has already ended ({leg.status})"
        if leg.direction == Direction.INBOUND:
            return f"{what}: it is {leg.from_}'s own call to the hotline"
        if leg.status != CallStatus.RINGING:
            return f"{what}: it is {leg.status}, not ringing"
        phone = self.phones.get(leg.far_number)
        kind = phone.kind if phone is not None else "silent"
        return f"{what}: it rings a {kind} phone, which decides by itself"

    def _live_leg(self: Sim, sid: str, doing: str) -> Leg:
        """Leg ``sid`` if an interactive phone is connected on it (lock held)."""
        leg = self.leg_of(sid)
        what = f"cannot {doing} call {sid}"
        if leg.ended:
            raise ValueError(f"{what}: it has already ended ({leg.status})")
        if leg.status != CallStatus.IN_PROGRESS:
            raise ValueError(f"{what}: it is {leg.status}, not connected yet")
        phone = self.phones.get(leg.far_number)
        if phone is None or not phone.live_input:
            kind = phone.kind if phone is not None else "silent"
            raise ValueError(f"{what}: its phone is {kind}, not interactive")
        return leg

    def _take_input(self: Sim, leg: Leg, kind: str, value: object) -> None:
        """Hand keys or words to the gather listening on ``leg``, or drop them (loop)."""
        state = leg.gathering
        if kind == "speech" and state is None and not leg.ended and leg.bridged_to:
            self._say_across(leg, value[0])
            return
        if leg.ended or state is None or not state.accepts(kind):
            self.log("dropped", sid=leg.sid, input=kind)
            return
        if kind == "dtmf":
            self.log("keys", sid=leg.sid, digits=value)
        state.box.put((kind, value))
