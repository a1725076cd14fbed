"""Chat models that write answers: Ollama servers or an embedded llama.cpp model."""
