"""Songs and playlists; a playlist's owner is a core user (a cross-cog foreign key)."""

from typing import Optional

import ormar

from ...db import base_config
from ...models import User


class Song(ormar.Model):
    ormar_config = base_config.copy(tablename="music_songs")

    id: int = ormar.Integer(primary_key=True)
    title: str = ormar.String(max_length=200)
    artist: Optional[str] = ormar.String(max_length=200, nullable=True)


class Playlist(ormar.Model):
    ormar_config = base_config.copy(tablename="music_playlists")

    id: int = ormar.Integer(primary_key=True)
    name: str = ormar.String(max_length=100)
    owner: Optional[User] = ormar.ForeignKey(User)
    # many-to-many: ormar creates the through table "playlists_songs" for this cog
    songs: Optional[list[Song]] = ormar.ManyToMany(Song)
