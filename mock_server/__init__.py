"""A stateful emulator of the 8x8 Contact Center Agent Status API."""

from mock_server.app import create_app

__all__ = ["create_app"]
