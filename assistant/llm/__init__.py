"""Chat models that write answers: Ollama servers, OpenAI-compatible servers or an embedded llama.cpp model."""
