"""Meeting a live tenant: importing one as a fixture, the recording proxy, recordings and
their validation, and replaying a recording against the emulator to diff the two.

Imports ``app``, ``serving`` and the layers below; never ``harness`` or the command line.
"""
