"""WeCom (企业微信) self-built app channel, issue #9.

crypto.py, messages.py, api.py, config.py: callback crypto, XML parsing, the API client and
the TAIQU_WECOM_* settings. channel.py wires them into the assistant: server.py (the callback
endpoint) -> the inbox table -> inbox.py -> the core -> render.py -> the outbox table ->
outbox.py (per-member budget, retries) -> WeCom. menu.py, robot.py, admin.py: the app menu,
team group robots and the taiqu-bot commands.
"""
