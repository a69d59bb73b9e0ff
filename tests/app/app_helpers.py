"""Helpers for the app tests: a one-frame story in the model's format."""

from __future__ import annotations

STORY = """<think>
## Image 1

### Characters
| Character ID | Name | Description | Emotions | Actions | Narrative Function | Bounding Box |
|---|---|---|---|---|---|---|
| char1 | Maya | Girl in a raincoat | Curious | Kneels | Protagonist | 4,8,21,27 |

### Objects
| Object ID | Description | Function | Interaction | Narrative Function | Bounding Box |
|---|---|---|---|---|---|

### Setting
| Setting Element | Description | Mood | Time | Narrative Function |
|---|---|---|---|---|
</think>
<gdi image1>
<gdo char1>Maya</gdo> smiled.
</gdi>
"""
