"""What a test holds: the in-process emulator (``emulate()``), the pytest plugin and the
handle on a running emulator's control plane.

Imports ``app``, ``serving`` and the layers below; never ``live`` or the command line.
"""
