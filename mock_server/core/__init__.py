"""The state and the rules applied to it: the backend, the entities, the stores, the fixtures.

No Flask, no HTTP: the backend takes typed arguments and raises the API's errors as types
(``errors``), which the ``http`` layer renders. Imports only ``schemas`` (the written
contract and the transition table) and the standard library.
"""
