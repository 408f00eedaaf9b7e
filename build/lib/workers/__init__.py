"""RQ job functions. Each takes ids only: never a phone number, never message text."""
