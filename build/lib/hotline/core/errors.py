"""Every exception the hotline raises on purpose, in one place."""


class HotlineError(Exception):
    """Base of the hotline's own errors."""


class SettingsError(HotlineError):
    """A setting is missing or invalid; the message names the variable."""


class InvalidPhoneNumber(HotlineError, ValueError):
    """A phone number could not be parsed or is not a valid number."""


class FlowError(HotlineError):
    """The IVR flows in ivr_flows/ are missing or malformed."""


class TwilioApiError(HotlineError):
    """A REST call to Twilio failed (after the client's own handling)."""
