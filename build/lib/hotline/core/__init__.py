"""The kernel every feature stands on: settings (the only reader of os.environ), errors,
the shared resources (database, Redis, the RQ queue), the clock, phone numbers and the
absolute URLs handed to Twilio. It imports no feature.
"""
