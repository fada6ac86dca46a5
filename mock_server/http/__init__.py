"""The wire: the four API views, Basic authentication, Problem rendering, request ids, the
control plane (``/__admin``), the served documents and the optional response validation.

It parses requests into the typed arguments the backend takes and renders what it returns.
Imports ``core`` and ``schemas``; never ``testdouble`` or anything above.
"""
