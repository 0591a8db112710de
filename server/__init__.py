"""Live in-browser speech-to-text: the server that serves the page and mints short-lived provider grants."""

from typing import Final

# The HTTP/1.1 implementation every uvicorn server of the project names (the app's, the emulators', the tests'), so
# the tests exercise the server that runs. Not httptools (uvicorn's default when installed): a client on plain
# http:// may offer cleartext HTTP/2 on an ordinary request (Java's HttpClient adds `Connection: Upgrade,
# HTTP2-Settings` and `Upgrade: h2c`), and uvicorn's httptools protocol then never delivers the request's body
# (uvicorn issue #2722): the Truebar emulator refused the vendor's Java sample at sign-in, and a Java backend's
# POST /api/sessions arrived empty. h11 ignores the offer, as HTTP/1.1 allows, and reads the body. WebSockets are
# served by uvicorn's `ws=` implementation either way.
UVICORN_HTTP: Final = "h11"
