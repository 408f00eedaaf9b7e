"""The program's public face: the page at ``/``, the poster and the wallet card (no login).

``texts`` loads ``ivr_flows/program.yaml`` (the words, in every language of languages.yaml);
``facts`` turns the running settings and the roster's weekly shifts into what the page
promises, so the promise cannot drift from what the hotline does; ``qr`` draws the QR codes
as inline SVG (segno); ``views`` is the blueprint. The pages set no cookie, load nothing
from elsewhere and carry the app's security headers (``dashboard.access.security_headers``).
"""
