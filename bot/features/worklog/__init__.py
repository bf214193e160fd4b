"""The work log (工作日志): its form, sentence reading, list and card."""
