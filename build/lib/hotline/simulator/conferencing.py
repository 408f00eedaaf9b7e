"""Conference rooms: the ``<Conference>`` half of ``TwilioSim`` (loop only, like dialing).

A room is made when the first leg dials its name and lives until it is ``completed``:
when a member with ``endConferenceOnExit`` leaves while it is in progress, when the last
member leaves, or by REST (``Status=completed``). It starts when a member with
``startConferenceOnEnter`` (the default) joins; until then members hear the wait URL.
Members hear nothing of who joins or leaves unless the TwiML asked for a beep (the log
says ``beep`` when it would sound).
"""

from __future__ import annotations

from hotline.simulator.core import Sim
from hotline.simulator.state import Conference, ConferenceChanged, Leg, Member


class Conferencing:
    """Conference operations of ``TwilioSim`` (loop only)."""

    def conference_named(self: Sim, name: str) -> Conference:
        """The room called ``name`` that is not over yet (a new one if none)."""
        for room in self.conferences.values():
            if room.name == name and room.status != "completed":
                return room
        room = Conference(self.new_sid("CF"), name, self.now)
        self.conferences[room.sid] = room
        self.log("conference", sid=room.sid, name=name, status=room.status)
        return room

    def join_conference(self: Sim, room: Conference, leg: Leg, member: Member,
                        beep: bool) -> None:
        """Put ``leg`` in ``room``; a starting member starts it."""
        room.members[leg.sid] = member
        room.joined.append(leg.sid)
        leg.conference = room.sid
        self.log("conference-join", sid=leg.sid, conference=room.sid,
                 members=len(room.members))
        if beep and room.status == "in-progress":
            self.log("beep", conference=room.sid)
        if member.start_on_enter and room.status == "init":
            member.talking = True  # it starts the room: no hold music for it
            self.start_conference(room)
        elif room.status == "in-progress":
            member.talking = True

    def start_conference(self: Sim, room: Conference) -> None:
        """In progress: everyone on hold is taken out of the wait loop."""
        room.status, room.started_at = "in-progress", self.now
        self.log("conference-start", sid=room.sid)
        for member in room.members.values():
            if not member.talking:
                self.interrupt(self.legs[member.sid], ConferenceChanged())

    def end_conference(self: Sim, room: Conference) -> None:
        """Completed: every member's ``<Dial>`` ends (its action is requested)."""
        if room.status == "completed":
            return
        room.status, room.ended_at = "completed", self.now
        self.log("conference-end", sid=room.sid)
        for member in list(room.members.values()):
            if member.talking:
                member.box.put("ended")
            else:
                self.interrupt(self.legs[member.sid], ConferenceChanged())

    def leave_conference(self: Sim, room: Conference, leg: Leg) -> None:
        """``leg`` is out of ``room``; maybe that ends it."""
        member = room.members.pop(leg.sid, None)
        leg.conference = None
        if member is None:
            return
        self.log("conference-leave", sid=leg.sid, conference=room.sid,
                 members=len(room.members))
        if (member.end_on_exit and room.status == "in-progress") or not room.members:
            self.end_conference(room)
