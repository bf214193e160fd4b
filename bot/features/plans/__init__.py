"""月度计划 and 考核: a manager's plan of the month (visits due, patrols per 台区, free items,
last month's unfinished carried over), approved or returned by the lead, ticked by the work
done, its result submitted at month end and graded; a team's targets in the monthly report."""
