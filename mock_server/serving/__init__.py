"""Running an app on a socket: granian's workers for ``serve`` (``production``, through the
RSGI bridge), a background thread for tests (``threaded``), and the fixture watcher.

Imports ``testdouble`` and the layers below; knows nothing of the application factory, which
the command line hands in.
"""
