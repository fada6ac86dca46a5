"""Running an app on a socket: in a background thread, with gunicorn workers, the state
store a run uses, and the fixture watcher (``--watch``).

Imports ``testdouble`` and the layers below; knows nothing of the application factory.
"""
