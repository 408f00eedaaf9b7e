"""How the sim reaches the app: Flask's test client, or real HTTP."""

from __future__ import annotations

import threading

import pytest
from flask import request
from werkzeug.serving import make_server

from hotline.simulator import FlaskClientTransport, HttpTransport, ScriptedPhone, TwilioSim
from tests.simulator.conftest import (
    ACCOUNT_SID, AUTH_TOKEN, BASE, CALLER, HOTLINE, FakeApp, response,
)


@pytest.fixture
def served():
    """The fake app on a real socket; its public base is the server's own URL."""
    app = FakeApp()
    server = make_server("127.0.0.1", 0, app.flask, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    app.base = f"http://127.0.0.1:{server.server_port}"
    yield app
    server.shutdown()
    thread.join()
    assert app.bad_signatures == []


def test_http_transport_posts_signed_form_data(served):
    sim = TwilioSim(HttpTransport(timeout=5), account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                    voice_url=f"{served.base}/voice?lang=en", numbers=[HOTLINE])
    sim.add_phone(ScriptedPhone(CALLER))
    served.reply("/voice", response(lambda r: r.say("over the wire")))
    leg = sim.dial(CALLER, HOTLINE)

    sim.run(until=lambda: leg.ended)

    assert served.paths() == ["/voice"]
    assert served.to("/voice")[0]["CallSid"] == leg.sid
    assert leg.heard == ["over the wire"]


def test_http_transport_returns_error_statuses_instead_of_raising(served):
    served.flask.view_functions["hook"] = lambda path: ("nope", 503)
    assert HttpTransport().post(f"{served.base}/x", {"a": "1"}, {}) == (503, "nope")


def test_flask_transport_refuses_urls_outside_the_app(sim, fake, caller):
    fake.reply("/voice", response(lambda r: r.redirect("https://elsewhere.test/twiml")))
    leg = sim.dial(CALLER, HOTLINE)

    sim.run(until=lambda: leg.ended)

    assert leg.heard == ["[application error]"]
    assert "outside the app's public base" in sim.events_of("error")[0]["detail"]
    with pytest.raises(ValueError):
        FlaskClientTransport(fake.flask.test_client(), BASE).post("https://x.test/", {}, {})


def test_flask_transport_makes_request_url_the_signed_url(fake):
    seen = []
    fake.flask.view_functions["hook"] = lambda path: (seen.append(request.url), "")[1]
    transport = FlaskClientTransport(fake.flask.test_client(), BASE)

    assert transport.post(f"{BASE}/voice?a=1&b=x%20y", {"k": "v"}, {}) == (200, "")

    assert seen == [f"{BASE}/voice?a=1&b=x%20y"]
