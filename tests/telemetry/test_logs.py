"""Structured JSON logs: every decision one record, stamped with the run's trace and span ids."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from agentwatch import StopReason
from agentwatch.sim import Fault, FaultPlan
from agentwatch.telemetry import configure_json_logs
from runner.support import DEMO_TASK, MODEL, async_client, consume, demo_agent, fast_limits, sync_client

from .helpers import base_env, named, run_script, the, trace_spans


def span_id(span) -> str:
    return format(span.context.span_id, "016x")


def test_each_record_carries_the_trace_and_span_of_what_it_describes(sim, spans, logs) -> None:
    agent = demo_agent("logs")
    result = agent.run(DEMO_TASK, client=sync_client(sim))
    finished = trace_spans(spans, result.trace_id)
    root, chats, tools = the(finished, "invoke_agent"), named(finished, "chat"), named(finished, "execute_tool")

    mine = [r for r in logs.records if r.get("agent") == agent.name]
    assert [r["event"] for r in mine] == [
        "run_start",
        "llm_call",
        "tool_call",
        "tool_result",
        "llm_call",
        "tool_call",
        "tool_result",
        "llm_call",
        "run_end",
    ]
    assert all(r["trace_id"] == result.trace_id for r in mine)
    assert [r["span_id"] for r in mine if r["event"] in ("run_start", "run_end")] == [span_id(root)] * 2
    assert [r["span_id"] for r in mine if r["event"] == "llm_call"] == [span_id(c) for c in chats]
    assert [r["span_id"] for r in mine if r["event"] == "tool_call"] == [span_id(t) for t in tools]
    assert [r["span_id"] for r in mine if r["event"] == "tool_result"] == [span_id(t) for t in tools]
    end = mine[-1]
    assert end["stop_reason"] == "end_turn" and end["iterations"] == 3 and end["tool_calls"] == 2
    assert end["input_tokens"] == result.usage.total_input_tokens and end["cost_usd"] == result.cost_usd
    assert end["models"] == [MODEL] and end["level"] == "info"
    assert mine[1]["response_id"] == chats[0].attributes["gen_ai.response.id"]
    assert all(r["ts"].endswith("Z") for r in mine)


def test_records_outside_a_run_have_no_trace_ids(logs) -> None:
    import logging

    logging.getLogger("agentwatch").info("not in a run", extra={"event": "probe"})
    (record,) = logs.events("probe")
    assert "trace_id" not in record and "span_id" not in record


def router_that_breaks(context):
    raise LookupError("routing table missing")


@pytest.mark.parametrize(
    "scenario", ["ok", "tool error", "budget", "api error", "cancelled stream", "internal error", "empty task"]
)
async def test_exactly_one_run_end_per_run(fresh_sim, logs, scenario) -> None:
    agent = demo_agent("one-end", limits=fast_limits(max_iterations=2, max_retries=0))
    client = sync_client(fresh_sim)
    if scenario == "ok":
        result = agent.run("What is 1234 * 5678?", client=client)
    elif scenario == "tool error":
        result = agent.run("[[tool:missing:{}]] Go.", client=client)
    elif scenario == "budget":
        result = agent.run("[[loop]] Go.", client=client)
    elif scenario == "api error":
        fresh_sim.faults = FaultPlan(schedule=[Fault.server_error()])
        result = await agent.arun("Hi", client=async_client(fresh_sim))
    elif scenario == "cancelled stream":
        events = agent.stream("What is 1234 * 5678?", client=client)
        next(events)
        events.close()
        result = None
    elif scenario == "internal error":
        result = agent.replace(router=router_that_breaks).run("Hi", client=client)
    else:
        result = agent.run("", client=client)

    (end,) = logs.events("run_end")
    (start,) = logs.events("run_start")
    assert end["trace_id"] == start["trace_id"]
    if result is not None:
        assert end["trace_id"] == result.trace_id and end["stop_reason"] == result.stop_reason.value
    expected = {
        "ok": "end_turn",
        "tool error": "end_turn",
        "budget": "max_iterations",
        "api error": "error",
        "cancelled stream": "cancelled",
        "internal error": "error",
        "empty task": "error",
    }[scenario]
    assert end["stop_reason"] == expected
    assert end["level"] == ("error" if expected == "error" else "info")
    if scenario == "internal error":
        assert "LookupError: routing table missing" in end["detail"]


def test_a_budget_stop_logs_budget_exceeded_once(sim, logs) -> None:
    agent = demo_agent("exceeded", limits=fast_limits(token_budget=1_000, max_tokens=128))
    _, result = consume(agent.stream("[[loop]] Go.", client=sync_client(sim)))

    assert result.stop_reason is StopReason.TOKEN_BUDGET
    (exceeded,) = logs.events("budget_exceeded")
    assert exceeded["kind"] == "tokens" and exceeded["detail"] == result.stop_detail
    assert exceeded["trace_id"] == result.trace_id


def test_with_a_logger_provider_records_go_out_over_otel_with_trace_context() -> None:
    script = """
        import json
        import anthropic
        from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
        from agentwatch import Agent
        from agentwatch.sim import Simulator
        from agentwatch.telemetry.setup import configure_telemetry
        from agentwatch.tools import calculator

        exporter = InMemoryLogRecordExporter()
        telemetry = configure_telemetry("logs-test", log_exporters=[exporter], install_signal_handler=False)
        with Simulator() as sim:
            agent = Agent(name="otlp-logs", model="claude-haiku-4-5-20251001", tools=[calculator])
            result = agent.run("What is 1234 * 5678?", client=anthropic.Anthropic(api_key="k", base_url=sim.base_url))
        telemetry.force_flush(timeout_s=5)
        records = []
        for item in exporter.get_finished_logs():
            record = getattr(item, "log_record", item)
            records.append({
                "trace_id": format(record.trace_id or 0, "032x"),
                "span_id": format(record.span_id or 0, "016x"),
                "severity": record.severity_text,
                "body": str(record.body),
                "event": (record.attributes or {}).get("event"),
                "agent": (record.attributes or {}).get("agent"),
            })
        telemetry.shutdown()
        print(json.dumps({"trace_id": result.trace_id, "records": records}))
    """
    out = run_script(script, base_env())
    records = [r for r in out["records"] if r["agent"] == "otlp-logs"]

    assert [r["event"] for r in records] == [
        "run_start",
        "llm_call",
        "tool_call",
        "tool_result",
        "llm_call",
        "run_end",
    ]
    assert all(r["trace_id"] == out["trace_id"] for r in records)
    assert all(int(r["span_id"], 16) != 0 for r in records)
    assert records[-1]["body"].startswith("run_end otlp-logs stop_reason=end_turn")
    assert {r["severity"] for r in records} == {"INFO"}


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_json_log_file_is_written_off_the_run_thread_with_the_runs_trace_context(sim, spans, tmp_path) -> None:
    path = tmp_path / "logs" / "agentwatch.jsonl"
    handler = configure_json_logs(path)
    listener_thread = handler._writer
    try:
        agent = demo_agent("file-logs")
        result = agent.run(DEMO_TASK, client=sync_client(sim))
        handler.flush()  # returns once every record handed over so far is written
        records = [r for r in _lines(path) if r.get("agent") == agent.name]
    finally:
        logging.getLogger("agentwatch").removeHandler(handler)
        handler.close()

    assert records[0]["event"] == "run_start" and records[-1]["event"] == "run_end"
    assert len(records) == 9 and all(r["trace_id"] == result.trace_id for r in records)
    finished = trace_spans(spans, result.trace_id)
    chats = {span_id(s) for s in named(finished, "chat")}
    assert {r["span_id"] for r in records if r["event"] == "llm_call"} == chats
    assert {r["span_id"] for r in records if r["event"] in ("run_start", "run_end")} == {
        span_id(the(finished, "invoke_agent"))
    }
    assert listener_thread is not None and not listener_thread.is_alive()  # close() drained and stopped it


@pytest.mark.parametrize(
    ("ending", "returncode"),
    [
        # an exception: atexit and logging.shutdown still run
        ('raise RuntimeError("the application crashed right after the run")', 1),
        # os._exit skips them, as SIGKILL would: run_end must already be on disk when run() returns
        ("os._exit(9)", 9),
    ],
    ids=["crashed", "killed"],
)
def test_a_process_that_dies_right_after_a_run_still_has_its_run_end_line(tmp_path, ending, returncode) -> None:
    path = tmp_path / "died.jsonl"
    script = f"""
        import os
        import anthropic
        from agentwatch import Agent
        from agentwatch.sim import Simulator
        from agentwatch.telemetry import configure_json_logs
        from agentwatch.tools import calculator

        configure_json_logs({str(path)!r})
        with Simulator() as sim:
            agent = Agent(name="dying", model="claude-haiku-4-5-20251001", tools=[calculator])
            agent.run("What is 1234 * 5678?", client=anthropic.Anthropic(api_key="k", base_url=sim.base_url))
            {ending}
    """
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=60, env=base_env()
    )
    assert completed.returncode == returncode, completed.stderr
    events = [r["event"] for r in _lines(path) if r.get("agent") == "dying"]
    assert events[0] == "run_start" and events[-1] == "run_end" and events.count("run_end") == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_a_forked_worker_gets_a_listener_of_its_own(tmp_path) -> None:
    path = tmp_path / "fork.jsonl"
    script = f"""
        import logging, os
        from agentwatch.telemetry import configure_json_logs

        handler = configure_json_logs({str(path)!r})
        log = logging.getLogger("agentwatch")
        log.info("parent", extra={{"event": "parent"}})
        handler.flush()
        pid = os.fork()
        if pid == 0:  # a prefork worker: its records must reach the file too
            log.info("child", extra={{"event": "child"}})
            handler.flush()
            os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        log.info("parent again", extra={{"event": "parent_again"}})
    """
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=60, env=base_env()
    )
    assert completed.returncode == 0, completed.stderr
    assert sorted(r["event"] for r in _lines(path)) == ["child", "parent", "parent_again"]
