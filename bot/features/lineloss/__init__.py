"""台区线损 (issue #14 §2): daily line loss per 台区 imported from the 用电信息采集 system's
export, abnormal runs followed as line-loss items, `线损 3号台区` in chat, the weekly report's
figures."""
