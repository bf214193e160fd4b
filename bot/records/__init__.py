"""Record modules register their forms, commands, buttons and reminders on import."""

from bot.handlers import todo  # noqa: F401
from bot.records import complaints  # noqa: F401
