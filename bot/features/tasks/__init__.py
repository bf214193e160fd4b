"""上级下达的任务 and 上报: a lead gives a task to one, several or all managers; each
assignee accepts it, asks a question, or reports it done; a manager sends any matter up."""
