"""The grounded-story format: parse (incrementally), validate and render QwenStoryteller output.

Pure Python; imports nothing else of ours.
"""
