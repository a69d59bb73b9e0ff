"""Use cases shared by the GUI and the CLI, free of Qt: settings, backends, telling, exports.

``telling.tell`` is the one way a story is told into the library; ``exports`` the one way a
story becomes a file; ``stored_story.StoredStory`` a told run parsed once for every view.
"""
