"""The model side: loading, prompts, streaming replies, the emotion directions and the
modulators that carry the emotion into the model, and the backends that run it."""
