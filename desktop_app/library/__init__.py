"""Albums, photos and story runs in SQLite; thumbnails. No Qt."""
