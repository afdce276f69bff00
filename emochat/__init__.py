"""emochat: a terminal chat with a local language model whose emotions you can see and steer."""

__version__ = "0.1.0"
