"""Hugging Face Qwen2.5-VL checkpoint (+ PEFT LoRA) to a text GGUF and an mmproj GGUF, quantized.

numpy + gguf at run time (llama-cpp-python for K-quants); never torch, never desktop_app.
"""
