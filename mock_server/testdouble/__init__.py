"""What makes the API a test double: fault injection and the request journal, a WSGI
middleware around the API with their control-plane routes.

Imports ``http`` and ``core``; never the application factory or anything above it.
"""
