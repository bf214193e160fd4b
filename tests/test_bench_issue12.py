"""bench/issue12.py's verdicts and tables, on the JSON shapes the benchmark scripts write (no
benchmark is run): a goal is met only by a figure that meets it, a missing or renamed key
gives "not measured" rather than a crash or a false "met"."""

from __future__ import annotations

import pytest

from bench import issue12
from bench.issue12 import MET, MISSED, NOT_MEASURED, Outcome


def outcome(label: str, data: object) -> Outcome:
    return Outcome(label, ["python", "-m", "bench.x", "--json", "x.json"], data=data)


def wave(variant: str, p99: float, **kw: object) -> dict[str, object]:
    return {"variant": variant, "rate": 35.0, "users": 3000, "p99": p99, "timed_out": False,
            "digest_s": 150.0, "lost": 0, "doubled": 0, "replies_got": 10,
            "replies_asked": 10} | kw


def verdicts(goals: list[issue12.Goal]) -> list[str]:
    return [g.verdict for g in goals]


def test_sends_met_only_when_p99_digest_lost_and_doubled_all_pass() -> None:
    def judge(lanes: dict[str, object]) -> list[str]:
        sqlite = outcome("sends-sqlite", {"waves": [wave("echo", 19.0), lanes]})
        return verdicts(issue12.judge_sends({"sends-sqlite": sqlite}))

    # PostgreSQL and WeCom not run
    assert judge(wave("lanes", 0.34)) == [MET, NOT_MEASURED, NOT_MEASURED]
    assert judge(wave("lanes", 2.0)) == [MISSED, NOT_MEASURED, NOT_MEASURED]  # p99 under 2 s
    assert judge(wave("lanes", 0.3, timed_out=True, digest_s=None))[0] == MISSED
    assert judge(wave("lanes", 0.3, lost=1))[0] == MISSED
    assert judge(wave("lanes", 0.3, doubled=2))[0] == MISSED


def test_sends_baseline_is_the_echo_bot_of_the_same_run_also_for_postgresql() -> None:
    sqlite = outcome("sends-sqlite", {"waves": [wave("echo", 19.42), wave("lanes", 21.1)]})
    pg = outcome("sends-pg", {"waves": [wave("pg-shared", 1.5)]})
    wecom = outcome("sends-wecom", {"waves": [wave("wecom-echo", 0.01),
                                              wave("wecom@50/s", 0.34)]})
    goals = issue12.judge_sends({"sends-sqlite": sqlite, "sends-pg": pg, "sends-wecom": wecom})
    assert [g.baseline for g in goals] == ["echo bot p99 19.42 s"] * 2 + ["echo bot p99 0.01 s"]
    assert verdicts(goals) == [MISSED, MET, MET]
    assert "35 replies/s" in goals[1].goal and "PostgreSQL" in goals[1].goal
    assert "WeCom" in goals[2].goal


def test_monday_on_a_tap_against_the_files_unasked() -> None:
    data = {"monday": [
        {"people": 33000, "managers_files": "on a tap", "minutes": 24.4, "sends": 33400,
         "lost": 0, "doubled": 0},
        {"people": 33000, "managers_files": "unasked (as before)", "minutes": 48.4,
         "lost": 0, "doubled": 0}]}
    [goal] = issue12.judge_monday({"monday": outcome("monday", data)})
    assert (goal.verdict, goal.baseline) == (MET, "files unasked (as before): 48.4 min")
    data["monday"][0]["minutes"] = 30.5
    assert issue12.judge_monday({"monday": outcome("monday", data)})[0].verdict == MISSED
    assert issue12.judge_monday({})[0].verdict == NOT_MEASURED


def test_imports_one_slow_step_misses_and_the_before_code_is_the_baseline() -> None:
    stall = {"rows": 100000, "before_ref": "main", "runs": [
        {"label": "before", "spanning": [0.001, 4.6], "import_s": 6.6},
        {"label": "after", "spanning": [0.001, 0.065], "import_s": 15.4}]}
    arrears = {"rows": 100000, "idle": [0.002], "runs": [
        {"file": "11月欠费.csv", "steps": [0.002, 0.174], "stage_s": 12, "apply_s": 11},
        {"file": "12月欠费.csv", "steps": [0.002, 0.457], "stage_s": 13, "apply_s": 12}]}
    lineloss = {"rows": 120000, "runs": [{"label": "first import", "spanning": [],
                                          "idle": [0.01], "seconds": 15}]}
    goals = issue12.judge_imports({"import-customers": outcome("c", stall),
                                   "import-arrears": outcome("a", arrears),
                                   "import-lineloss": outcome("l", lineloss)})
    assert verdicts(goals) == [MET, MET, MISSED, NOT_MEASURED]
    assert goals[0].baseline.startswith("1 of 2 steps > 200 ms, slowest 4600 ms")
    assert "1 of 2 steps > 200 ms, slowest 457 ms" in goals[2].measured


def test_reports_team_message_and_a_managers_own() -> None:
    results = [{"code": "after", "managers": 5000, "scenario": "message", "entries": 192175,
                "warm_s": 1.8, "cold_s": 1.78},
               {"code": "after", "managers": 5000, "scenario": "manager", "entries": 33,
                "warm_s": 0.02, "cold_s": 0.03}]
    goals = issue12.judge_reports({"reports": outcome("reports", {"results": results})})
    assert verdicts(goals) == [MET, MET]
    assert goals[0].goal == "a 5000-manager team's report message < 2 s"
    results[0]["warm_s"] = 2.15
    results[1]["entries"] = 192175  # read the whole team's entries: not scoped
    goals = issue12.judge_reports({"reports": outcome("reports", {"results": results})})
    assert verdicts(goals) == [MISSED, MISSED]


def test_round_trips_every_step_counts_including_save() -> None:
    rows = [{"step": "1 intent", "min": 1, "max": 2, "mean": 1.5, "inline": 1.0},
            {"step": "7 save", "min": 9, "max": 12, "mean": 10.0, "inline": 0.0}]
    goals = issue12.judge_round_trips({
        "round-trips-sqlite": outcome("s", rows[:1]),
        "round-trips-postgresql": outcome("p", {"rows": rows})})  # a dict tolerated
    assert verdicts(goals) == [MET, MISSED]
    assert "7 save 12" in goals[1].measured


def test_step_ratios_per_user_count_against_the_echo_bot() -> None:
    forms = {"runs": [{"bot": "echo", "users": 1, "p50_s": 0.0015},
                      {"bot": "taiqu-nolimit", "users": 1, "p50_s": 0.00222},
                      {"bot": "echo", "users": 50, "p50_s": 0.0698},
                      {"bot": "echo-aiohttp", "users": 50, "p50_s": 0.05},
                      {"bot": "taiqu-nolimit", "users": 50, "p50_s": 0.1435},
                      {"bot": "taiqu", "users": 50, "p50_s": 9.0},  # rate-limited: not judged
                      {"bot": "taiqu-nolimit", "users": 200, "p50_s": 0.5}]}
    pools = {"pools": [{"bot": "echo", "users": 1, "p50_s": 0.002},
                       {"bot": "pg", "users": 1, "p50_s": 0.003}]}
    goals = issue12.judge_steps({"steps-sqlite": outcome("s", forms),
                                 "steps-pg": outcome("p", pools)})
    assert verdicts(goals) == [MET, MISSED, NOT_MEASURED, MET]
    assert goals[0].measured == "2.2 ms = 1.48x" and goals[0].baseline == "echo 1.5 ms"
    # The echo bot on taiqu's own transport is shown beside, not judged.
    assert goals[1].baseline == "echo 69.8 ms; echo on taiqu's transport 50.0 ms (2.87x)"
    assert "PostgreSQL" in goals[3].goal


def test_a_failed_or_reshaped_run_is_not_measured_never_met() -> None:
    empty: dict[str, Outcome] = {}
    for part in issue12.ALL_PARTS:
        assert set(verdicts(part.judge(empty))) == {NOT_MEASURED}, part.name
    junk = outcome("x", {"something": "else"})
    runs = {label: junk for label in ("sends-sqlite", "sends-pg", "monday", "import-customers",
                                      "import-arrears", "import-lineloss", "reports",
                                      "round-trips-sqlite", "round-trips-postgresql",
                                      "steps-sqlite", "steps-pg")}
    for part in issue12.ALL_PARTS:
        assert set(verdicts(part.judge(runs))) == {NOT_MEASURED}, part.name


def test_other_load_is_the_machines_busy_cpu_minus_ours() -> None:
    assert issue12.other_cores(busy_s=30.0, ours_s=10.0, wall_s=10.0) == 2.0
    assert issue12.other_cores(busy_s=9.0, ours_s=10.0, wall_s=10.0) == 0.0  # tick rounding


def test_markdown_has_the_goal_table_and_each_parts_detail() -> None:
    goal = issue12.Goal("a | b", "1 s", "echo 2 s", MET)
    results = {"quick": True, "wall_s": 60.0, "subreaper": True,
               "machine": {k: "x" for k in ("date", "cpu", "cores", "python", "sqlite",
                                            "postgresql", "kernel", "commit")},
               "parts": [{"name": "monday", "title": "The Monday report", "wall_s": 30.0,
                          "load_before": "1.00 1.00 1.00", "load_after": "2.00 1.00 1.00",
                          "others_before": 0.5, "others_during": 0.25, "ours_cores": 1.0,
                          "goals": [vars(goal)],
                          "runs": [{"label": "monday", "wall_s": 30.0, "error": "",
                                    "argv": ["py", "-m", "bench.bench_sends", "--monday",
                                             "3300", "--json", "f"],
                                    "markdown": "## Sends\n| people |\n|---|\n| 3300 |"}]}]}
    md = issue12.render(results)
    assert "| goal | measured | baseline in the same run | verdict |" in md
    assert "| a \\| b | 1 s | echo 2 s | met |" in md
    assert "| monday | 0.5 | 1.00 1.00 1.00 | 2.00 1.00 1.00 | 0.50 | 0.25 | 1.00 |" in md
    assert "`python -m bench.bench_sends --monday 3300` (30 s)" in md
    assert "| 3300 |" in md and "\n#### Sends\n" in md  # the script's heading, nested
    assert "Noisy run" not in md
    results["parts"][0]["others_during"] = 1.8
    assert "**Noisy run:** other sessions kept up to 1.8 of x cores" in issue12.render(results)


def test_only_names_known_parts() -> None:
    assert issue12.parse(["--only", "monday,steps"]).only == ["monday", "steps"]
    with pytest.raises(SystemExit):
        issue12.parse(["--only", "monday,nonsense"])


def test_the_report_cache_is_keyed_by_the_team_size() -> None:
    a, b = issue12.report_cache("5000"), issue12.report_cache("500")
    assert a != b and a.parent == issue12.CACHE and "schema" in a.name


def test_from_an_earlier_run_judges_its_kept_json_again() -> None:
    run = vars(outcome("monday", {"monday": [{"managers_files": "on a tap", "minutes": 24.4,
                                              "lost": 0, "doubled": 0}]}))
    results = {"parts": [{"name": "monday", "goals": [], "runs": [run]}]}
    [goal] = issue12.rejudge(results)["parts"][0]["goals"]
    assert goal["verdict"] == MET and "24.4 min" in goal["measured"]
