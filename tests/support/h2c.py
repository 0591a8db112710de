"""What Java's HttpClient adds to an ordinary request over plain http://: an offer to switch to cleartext HTTP/2.

uvicorn's httptools protocol then never delivered the request's body (uvicorn issue #2722): the Truebar emulator
refused the vendor's Java sample at sign-in (an empty token form, 401 invalid_client), and the app read an empty
POST /api/sessions. A server that ignores the offer, as HTTP/1.1 allows, answers the request as it stands.
"""

from __future__ import annotations

H2C_OFFER = {
    "Connection": "Upgrade, HTTP2-Settings",
    "Upgrade": "h2c",
    "HTTP2-Settings": "AAEAAEAAAAIAAAAAAAMAAAAAAAQBAAAAAAUAAEAAAAYABgAA",
}
