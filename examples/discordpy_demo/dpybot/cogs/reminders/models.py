"""A reminder points at a note of the notes cog (a foreign key from one cog to another)."""

import datetime
from typing import Optional

import ormar

from ...db import base_config
from ..notes import Note


class Reminder(ormar.Model):
    ormar_config = base_config.copy(tablename="reminders_reminders")

    id: int = ormar.Integer(primary_key=True)
    note: Optional[Note] = ormar.ForeignKey(Note)
    due: datetime.datetime = ormar.DateTime()
