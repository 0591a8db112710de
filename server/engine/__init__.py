"""The embedded speech engine: product code that makes the default run transcribe with no account and no network.

types.py holds the recognizer interface, config.py the engine's settings and their defaults (the one place they are
written), sphinx.py the streaming pocketsphinx pass (interims, endpoints), whisper.py the accurate pass (Whisper
finals) and accurate.py where it runs and which jobs it takes, twopass.py the recognizer that joins them (with
pending.py, the finals it owes; delivered.py, what its finals have said; interims.py, what its interims show;
outcomes.py, the warnings and counts of its finals), word_match.py where the two passes' words agree, silero.py and
voice_runs.py where the speaker paused and faint speech, admission.py whether a new session fits, model.py where
Whisper's model comes from (the pinned wheels, hash-checked), and loader.py builds the engine from its config. The
app serves it over the Truebar stream protocol on its own socket (server/transport.py).
"""
