"""Records with a status and deadlines; bot.features lists them with the other features."""
