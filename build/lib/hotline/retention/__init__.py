"""Retention: what the hotline deletes, and when. ``purge`` is the daily purge (sealed
numbers after their last use, events and statistics past their window); ``message_records``
keeps each message sid at Twilio (never a body) until Twilio confirms the body blanked.
"""
