"""Live in-browser speech-to-text: the server that serves the page and mints short-lived provider grants."""
