"""Teach a model the emotion vector, the Emotional-Gemma way: a projection of the vector added to
every token embedding, trained together with LoRA adapters on texts paired with vectors.

``data`` reads and batches the examples, ``model`` wraps the base model with the projection and
the adapters, ``trainer`` runs the loop with checkpoints, ``recipe`` builds a training set by
distillation from activation steering, and ``card`` writes the model card."""
