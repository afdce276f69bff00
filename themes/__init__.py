"""Colour themes that ship with emochat (installed as the package ``emochat.themes``)."""
