"""Use cases shared by the GUI and the CLI, free of Qt.

``settings`` (the user's settings and the library they point at), ``backends`` (settings ->
story backend, model identity), ``telling`` (the one way a story is told into the library),
``stored_story`` (a told run parsed once for every view), ``exports`` (the one way a story
becomes a file, and album bundles), ``costs`` (what a story of some photos will cost).
"""
