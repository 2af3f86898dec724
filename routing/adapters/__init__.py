"""One adapter per API style: openai (llama.cpp, LM Studio, OpenAI), ollama, anthropic."""
