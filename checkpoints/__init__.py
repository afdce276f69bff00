"""Emotion vectors and adapters that ship with emochat, one folder per model.

Installed as the package ``emochat.checkpoints`` (see pyproject.toml's package-dir)."""
