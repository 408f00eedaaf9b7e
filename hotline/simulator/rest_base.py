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


def one_page(key: str, items: list, first_page_uri: str, uri: str,
             page_size: int = 50) -> dict:
    """A list resource's answer when everything fits on its first page (no next page)."""
    return {key: items, "end": max(len(items) - 1, 0), "first_page_uri": first_page_uri,
            "next_page_uri": None, "page": 0, "page_size": page_size,
            "previous_page_uri": None, "start": 0, "uri": uri}
