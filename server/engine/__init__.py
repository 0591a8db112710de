"""The embedded speech engine: product code that makes the default run transcribe with no account and no network.

types.py holds the recognizer interface, config.py the engine's settings and their defaults (the one place they are
written), sphinx.py the streaming pocketsphinx pass (interims, endpoints), whisper.py the accurate pass (Whisper
finals), twopass.py the recognizer that joins them, model.py where Whisper's model comes from (the pinned wheels,
hash-checked), loader.py builds the engine from its config, and stream.py serves it over the Truebar stream
protocol on the app's own socket.
"""
