"""Record modules register their forms, commands, buttons and reminders on import."""

from bot.handlers import todo  # noqa: F401
from bot.records import (
    arrears,  # noqa: F401
    complaints,  # noqa: F401
    outages,  # noqa: F401
    repairs,  # noqa: F401
)
from bot.reports import handlers  # noqa: F401
