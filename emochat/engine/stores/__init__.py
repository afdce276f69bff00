"""Where models a user already has are kept, read in place: Ollama's store, the Hugging Face
cache (and the hub, for GGUF repos), LM Studio's folders, and what a GGUF's header says."""
