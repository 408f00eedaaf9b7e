"""Words people read: each side its own goodbye, grammatical durations, one message per event,
and logins that warn before a wait (issue 14, "Words")."""

from __future__ import annotations

from tests.test_sms_end_to_end import TextingPhone, clinician, run_scheduled


def test_after_the_clinicians_bye_the_supporter_gets_a_goodbye_meant_for_them(hotline):
    ada = hotline.supporter("Ada", phone_class=TextingPhone, replies=[("Reply YES", "YES")])
    doc = clinician(hotline, "+16175550191",
                    replies=[("Reply 1", "2"), ("check-in text", "NO")])
    doc.text("hello")
    hotline.run(600)
    assert hotline.contacts()[0].state == "connected"
    doc.text("BYE")
    hotline.run(600)
    assert hotline.contacts()[0].state == "ended"
    assert any("Thank you for reaching out" in b for b in doc.received())
    mine = [b for b in ada.received() if "ended" in b]
    assert mine == ["The conversation has ended. Thank you for supporting a colleague."]
    assert not any("reaching out" in b or "Text us any time" in b for b in ada.received())


def test_a_quiet_conversation_tells_the_supporter_in_their_own_words(hotline):
    ada = hotline.supporter("Ada", phone_class=TextingPhone, replies=[("Reply YES", "YES")])
    doc = clinician(hotline, "+16175550192",
                    replies=[("Reply 1", "2"), ("check-in text", "NO")])
    doc.text("hello")
    hotline.run(600)
    run_scheduled(hotline)  # SMS_IDLE_MINUTES later
    hotline.run(60)
    assert any("Text us any time" in b for b in doc.received())
    assert any("quiet period. Thank you for supporting a colleague" in b
               for b in ada.received())
    assert not any("Text us any time" in b for b in ada.received())


def test_a_silent_supporter_is_told_once_that_the_request_moved_on(hotline):
    silent = hotline.supporter("Silent", phone_class=TextingPhone)
    hotline.supporter("Ready", phone_class=TextingPhone, replies=[("Reply YES", "YES")])
    doc = clinician(hotline, "+16175550193", replies=[("Reply 1", "2")])
    doc.text("hello")
    hotline.run(300)
    run_scheduled(hotline)  # the offer's SMS_ACCEPT_SECONDS are up
    hotline.run(300)
    assert hotline.offers() == [("Silent", "no_answer", 1), ("Ready", "accepted", 1)]
    moved = [b for b in silent.received() if "moved on" in b]
    assert moved == ["The request has moved on to another supporter."]


def test_a_supporter_who_passes_is_told_once_that_the_request_moved_on(hotline):
    passes = hotline.supporter("Passes", phone_class=TextingPhone,
                               replies=[("Reply YES", "PASS")])
    hotline.supporter("Ready", phone_class=TextingPhone, replies=[("Reply YES", "YES")])
    doc = clinician(hotline, "+16175550194", replies=[("Reply 1", "2")])
    doc.text("hello")
    hotline.run(600)
    run_scheduled(hotline)  # the passed offer's expiry job runs too: it must say nothing
    hotline.run(300)
    assert hotline.offers() == [("Passes", "declined", 1), ("Ready", "accepted", 1)]
    assert [b for b in passes.received() if "moved on" in b] == [
        "The request has moved on to another supporter."]
