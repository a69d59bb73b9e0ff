"""Use cases shared by the GUI and the CLI, free of Qt.

``settings`` (the user's settings and the library they point at), ``backends`` (settings ->
story backend, model identity), ``telling`` (the one way a story is told: ``tell_photos`` for
any photos, ``tell`` into the library, and the zero-token rule), ``stored_story`` (a told run
parsed once for every view), ``exports`` (the one way a story becomes a file, and album bundles),
``costs`` (``plan_run``, the one estimate of what a story will cost and take, and
``RunProgress``, a run's speed and time left from its real token counts).
"""
