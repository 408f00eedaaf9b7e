"""What the stand-in's REST modules share: Twilio's error body and the served simulator."""

from __future__ import annotations

from flask import Response, current_app, jsonify

from hotline.simulator.engine import TwilioSim

#: Twilio's code for an invalid or unknown parameter.
INVALID_PARAMETER = 20001
#: The spec's largest PageSize.
MAX_PAGE_SIZE = 1000


class ApiError(Exception):
    """A Twilio-style REST error (``code`` from Twilio's error dictionary)."""

    def __init__(self, status: int, code: int, message: str) -> None:
        """Describe the error as Twilio would."""
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        """The JSON body Twilio sends with an error."""
        body = jsonify(code=self.code, message=self.message, status=self.status,
                       more_info=f"https://www.twilio.com/docs/errors/{self.code}")
        body.status_code = self.status
        if self.status == 401:
            body.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        return body


def current_sim() -> TwilioSim:
    """The simulator the serving app stands in for."""
    return current_app.extensions["twilio_sim"]
