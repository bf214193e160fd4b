"""自由提醒: '明天8点提醒我抄表' sets a reminder for oneself, shown back to confirm, pushed
at that minute with snooze and 完成; '我的提醒' lists the open ones."""
