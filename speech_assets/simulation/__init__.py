"""Simulated speech traffic: what the platform is demonstrated and tested on, kept apart from the audio a user
brings (`speech_assets.audio`: decoding, validation, PII, corpus readers and import).

    words       what the simulated speakers can say: word lists, phrases, numbers spelled out (data)
    templates   a table of sentence templates per kind, and the one function that renders a template
    sentences   the seeded transcript generator (`SentenceGenerator`), its kinds and its vocabulary
    speech      the seeded renderer of a landing batch (espeak-ng voices as accents, sox channels, a manifest)
    cli         `python -m speech_assets simulate ...`
"""
