"""Inference: prompt, image preparation, the llama.cpp and OpenAI-server backends. No Qt."""
