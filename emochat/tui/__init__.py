"""The Textual app: ``app.py``, one file per screen, the widgets and themes."""
