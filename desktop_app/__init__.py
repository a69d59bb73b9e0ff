"""Storyteller: turn a photo album into a grounded story, offline."""

__version__ = "0.1.0"
