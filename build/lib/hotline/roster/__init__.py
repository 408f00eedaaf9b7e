"""The roster and its rules (``supporters``: add, edit, take off, restore, switch) and
weekly shifts and who is offered contacts now (``shifts``), for the CLI and the dashboard
alike.
"""
