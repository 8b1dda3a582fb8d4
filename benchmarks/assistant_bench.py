"""The assistant's answer latency and accuracy on a built world (issue 18).

Asks every golden question of tests/integration/test_assistant.py (metric questions by kind, follow-up threads,
customer look-ups, out-of-scope questions) in this process against an existing MOS_HOME (e.g. `make demo`'s
5,000 × 60 world), --rounds times after one warm-up question, and reports p50/p95/max of

- ``answer_ms``: what ``Answer.latency_ms`` says (parse, validation, compile, read-only query, text), and
- ``wall_ms``: the whole ``ask`` call, including the thread file and the ``ops.assistant_log`` write,

plus how many metric answers equal the test's independent SQL on this world, by kind. Appends one JSON line to
benchmarks/results/assistant.jsonl with the load average.

    MOS_HOME=/tmp/demo .venv/bin/python benchmarks/assistant_bench.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "assistant.jsonl"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--log", choices=("warehouse", "queue"), default="warehouse")
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ["MOS_ASSISTANT_LOG"] = args.log
    from mos_pipelines.access import principal
    from mos_pipelines.assistant import ask
    from mos_pipelines.settings import get_settings
    from tests.integration import test_assistant as golden

    settings = get_settings()
    analyst = principal("analyst")

    class World:  # what the golden helpers read
        pass

    world = World()
    world.settings = settings  # type: ignore[attr-defined]
    as_of = golden.independent(world, f"select max(date_day) from {golden.CP}")[0][0]
    cold_started = time.perf_counter()
    ask("revenue", principal=analyst, settings=settings)
    cold_ms = (time.perf_counter() - cold_started) * 1000
    answer_ms: list[float] = []
    wall_ms: list[float] = []
    by_kind: dict[str, list[float]] = defaultdict(list)
    exact: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    expected = {case: golden.independent(world, q.sql(as_of)) for _, case, _, q in golden.GOLDEN}
    for round_no in range(args.rounds):
        for kind, case, question, query in golden.GOLDEN:
            began = time.perf_counter()
            answer = ask(question, principal=analyst, settings=settings)
            wall_ms.append((time.perf_counter() - began) * 1000)
            answer_ms.append(answer.latency_ms)
            by_kind[kind].append(answer.latency_ms)
            if round_no == 0:
                ok = answer.kind == "metric" and golden.rows_match(answer.rows, expected[case], query.order is not None)
                exact[kind][0] += int(ok)
                exact[kind][1] += 1
        for case, turns in golden.THREADS:
            thread = f"bench-{round_no}-{case}"
            for question, query in turns:
                began = time.perf_counter()
                answer = ask(question, principal=analyst, settings=settings, thread_id=thread)
                wall_ms.append((time.perf_counter() - began) * 1000)
                answer_ms.append(answer.latency_ms)
                by_kind["follow-up"].append(answer.latency_ms)
                if round_no == 0:
                    rows = golden.independent(world, query.sql(as_of))
                    ok = answer.kind == "metric" and golden.rows_match(answer.rows, rows, query.order is not None)
                    exact["follow-up"][0] += int(ok)
                    exact["follow-up"][1] += 1
        for _, question, _, _ in golden.CUSTOMER_CASES:
            began = time.perf_counter()
            answer = ask(question, principal=analyst, settings=settings)
            wall_ms.append((time.perf_counter() - began) * 1000)
            answer_ms.append(answer.latency_ms)
            by_kind["customer look-up"].append(answer.latency_ms)
        for question in golden.OUT_OF_SCOPE:
            began = time.perf_counter()
            answer = ask(question, principal=analyst, settings=settings)
            wall_ms.append((time.perf_counter() - began) * 1000)
            answer_ms.append(answer.latency_ms)
            by_kind["out of scope"].append(answer.latency_ms)
            if round_no == 0:
                exact["out of scope (refused)"][0] += int(answer.kind == "refusal")
                exact["out of scope (refused)"][1] += 1
    load = os.getloadavg()
    result = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mos_home": str(settings.mos_home),
        "as_of": str(as_of),
        "questions": len(answer_ms),
        "rounds": args.rounds,
        "log": args.log,
        "cold_first_ms": round(cold_ms, 1),
        "answer_ms": {
            "p50": round(pct(answer_ms, 0.5), 1),
            "p95": round(pct(answer_ms, 0.95), 1),
            "max": round(max(answer_ms), 1),
        },
        "wall_ms": {
            "p50": round(pct(wall_ms, 0.5), 1),
            "p95": round(pct(wall_ms, 0.95), 1),
            "max": round(max(wall_ms), 1),
        },
        "answer_ms_by_kind": {
            k: {"p50": round(statistics.median(v), 1), "p95": round(pct(v, 0.95), 1)} for k, v in by_kind.items()
        },
        "exact_by_kind": {k: f"{v[0]}/{v[1]}" for k, v in exact.items()},
        "loadavg": [round(x, 2) for x in load],
        "cpus": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as fh:
        fh.write(json.dumps(result) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
