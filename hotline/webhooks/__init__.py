"""Twilio-facing blueprints: every route validates X-Twilio-Signature."""
