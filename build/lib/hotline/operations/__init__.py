"""Running the hotline for real: setting up the Twilio number (``number``) and checking a
whole install (``doctor``). The CLI (``hotline twilio configure``, ``hotline doctor``) is a
thin adapter over them."""
