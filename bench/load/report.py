"""Figures of a load run: percentiles per kind of request from locust's request log, the markdown
table, and the chart of latency against students. No Django here."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

# The kinds the report leads with (the goals), then the rest in this order.
KINDS = [
    "autosave", "hand in", "start test", "test page", "grading status", "results page",
    "launch", "experiment status", "experiment page", "experiment form", "predict", "prediction status",
    "prediction page", "read section", "mark read", "sign in", "sign-in page",
    "class page", "class questions", "class experiments", "class review queue", "class CSV",
]  # fmt: skip
CHARTED = ["autosave", "hand in", "start test", "test page", "grading status", "launch", "predict", "class page",
           "class CSV"]  # fmt: skip
GOALS = {"autosave": 300.0, "hand in": 1000.0}  # p95, milliseconds


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (what a reader can check by counting)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def read_requests(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return [
            {"t": float(r["t"]), "kind": r["kind"], "ms": float(r["ms"]), "status": int(r["status"]),
             "error": r["error"], "phase": r["phase"]}
            for r in csv.DictReader(fh)
        ]  # fmt: skip


def summarise(rows: list[dict], *, seconds: float) -> dict:
    """Per kind: requests, per second, p50 / p95 / p99 / max in ms, server errors and unanswered."""
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r)
    kinds = {}
    order = [k for k in KINDS if k in by_kind] + sorted(k for k in by_kind if k not in KINDS)
    for kind in order:
        rs = by_kind[kind]
        ms = [r["ms"] for r in rs]
        kinds[kind] = {
            "n": len(rs),
            "rps": round(len(rs) / seconds, 2) if seconds else None,
            "p50": round(percentile(ms, 50), 1),
            "p95": round(percentile(ms, 95), 1),
            "p99": round(percentile(ms, 99), 1),
            "max": round(max(ms), 1),
            "5xx": sum(1 for r in rs if r["status"] >= 500),
            "unanswered": sum(1 for r in rs if r["status"] == 0 or r["error"]),
            "4xx": sum(1 for r in rs if 400 <= r["status"] < 500),
        }
    total = len(rows)
    return {
        "requests": total,
        "seconds": round(seconds, 1),
        "rps": round(total / seconds, 1) if seconds else None,
        "5xx": sum(k["5xx"] for k in kinds.values()),
        "unanswered": sum(k["unanswered"] for k in kinds.values()),
        "kinds": kinds,
    }


def _ms(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:,.0f}" if v >= 10 else f"{v:.1f}"


def step_table(step: dict) -> str:
    """One step as markdown: the test phase's requests, kind by kind."""
    s = step["test_phase"]
    lines = [
        f"**{step['students']} students**: {s['requests']:,} requests in {s['seconds']:.0f} s "
        f"({s['rps']} per second); server errors {s['5xx']}, unanswered {s['unanswered']}.",
        "",
        "| kind | requests | per s | p50 ms | p95 ms | p99 ms | max ms | 5xx |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, k in s["kinds"].items():
        goal = f" (goal < {GOALS[kind]:,.0f})" if kind in GOALS else ""
        lines.append(
            f"| {kind} | {k['n']:,} | {k['rps']} | {_ms(k['p50'])} | {_ms(k['p95'])}{goal} | {_ms(k['p99'])} | "
            f"{_ms(k['max'])} | {k['5xx']} |"
        )
    signin = step.get("sign_in_phase", {}).get("kinds", {}).get("sign in")
    if signin:
        phase = step["sign_in_phase"]["seconds"]
        lines += ["", f"Signing in ({signin['n']} people, before the test): p50 {_ms(signin['p50'])} ms, "
                      f"p95 {_ms(signin['p95'])} ms; the phase took {phase:.0f} s."]  # fmt: skip
    return "\n".join(lines)


def summary_table(steps: list[dict]) -> str:
    """The steps side by side: what the issue asks for in one table."""
    head = "| | " + " | ".join(f"{s['students']} students" for s in steps) + " |"
    lines = [head, "|---" * (len(steps) + 1) + "|"]

    def row(label, f):
        lines.append(f"| {label} | " + " | ".join(f(s) for s in steps) + " |")

    def kind(s, name, p):
        return _ms(s["test_phase"]["kinds"].get(name, {}).get(p))

    row("requests per second (test phase)", lambda s: f"{s['test_phase']['rps']}")
    row("autosave p50 / p95 / p99 ms", lambda s: " / ".join(kind(s, "autosave", p) for p in ("p50", "p95", "p99")))
    row("hand in p50 / p95 / p99 ms", lambda s: " / ".join(kind(s, "hand in", p) for p in ("p50", "p95", "p99")))
    row("start test p95 ms", lambda s: kind(s, "start test", "p95"))
    row("server errors (5xx) / unanswered", lambda s: f"{s['test_phase']['5xx']} / {s['test_phase']['unanswered']}")
    row("answers checked / lost", lambda s: f"{s['checks']['counts'].get('answers checked', 0):,} / "
        f"{s['checks']['counts'].get('problem: answer lost', 0)}")  # fmt: skip
    row("tests handed in / graded twice", lambda s: f"{s['checks']['counts'].get('tests handed in', 0)} / "
        f"{s['checks']['counts'].get('problem: graded twice', 0)}")  # fmt: skip
    row("free-text grade, hand-in to grade: p95 / slowest s", lambda s: _grade_cell(s))
    row("last grade back after the load stopped (s)", lambda s: _secs(s["drain"].get("last_grade_after_stop")))
    row("experiments launched / finished / cancelled at the end", lambda s: f"{s['jobs']['launched']} / "
        f"{s['jobs']['finished_in_run']} / {s['jobs']['cancelled_at_end']}")  # fmt: skip
    row("slowest finished experiment, launch to result (s)", lambda s: _secs(s["jobs"].get("slowest_seconds")))
    row("predictions / p95 ask-to-answer (s)", lambda s: f"{s['predictions']['n']} / "
        f"{_secs(s['predictions'].get('p95_seconds'))}")  # fmt: skip
    row("longest queue: cpu (grading) / gpu / predict", lambda s: " / ".join(
        str(s["queues"]["max"].get(q, "–")) for q in ("cpu", "gpu", "predict")))  # fmt: skip
    row("database connections, most at once", lambda s: str(s["queues"].get("max_db_connections", "–")))
    row("sessions waiting for a lock: most / on average (sampled each second)", lambda s: (
        f"{s['queues'].get('max_lock_waits', '–')} / {s['queues'].get('mean_lock_waits', '–')}"))  # fmt: skip
    row("load average, most (1 min)", lambda s: f"{s['queues'].get('max_load') or 0:.1f}")
    row("nothing-lost checks", lambda s: "pass" if s["checks"]["ok"] else f"FAIL ({len(s['checks']['problems'])})")
    return "\n".join(lines)


def _secs(v) -> str:
    return "–" if v is None else f"{v:.1f}"


def _grade_cell(s: dict) -> str:
    g = s.get("grades", {})
    return f"{_secs(g.get('p95_seconds'))} / {_secs(g.get('max_seconds'))}"


def chart(steps: list[dict], path: Path, *, title: str = "") -> None:
    """p95 latency of each charted kind against the number of students (log scale), with the goals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    xs = [s["students"] for s in steps]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [3, 2]})
    for kind in CHARTED:
        ys = [s["test_phase"]["kinds"].get(kind, {}).get("p95", math.nan) for s in steps]
        if all(math.isnan(y) for y in ys):
            continue
        ax.plot(xs, ys, marker="o", label=kind, linewidth=2.5 if kind in GOALS else 1.2)
    for kind, goal in GOALS.items():
        ax.axhline(goal, linestyle="--", linewidth=0.8, color="grey")
        ax.annotate(f"{kind} goal {goal:,.0f} ms", (xs[0], goal), textcoords="offset points", xytext=(2, 3),
                    fontsize=8, color="grey")  # fmt: skip
    ax.set_yscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_xticks(xs)
    ax.set_xlabel("students at once")
    ax.set_ylabel("p95 latency, ms (log scale)")
    ax.set_title("p95 latency per kind of request")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    ax2.plot(xs, [s["test_phase"]["rps"] for s in steps], marker="o", color="black", label="requests per second")
    ax2.set_xticks(xs)
    ax2.set_xlabel("students at once")
    ax2.set_ylabel("requests per second (test phase)")
    ax2.set_title("throughput, and free-text grades' wait")
    ax2.set_ylim(bottom=0)
    ax2.grid(True, alpha=0.3)
    grades = ax2.twinx()
    waits = [s.get("grades", {}).get("p95_seconds") for s in steps]
    grades.plot(xs, [math.nan if w is None else w for w in waits], marker="s", color="tab:red",
                label="grade p95, hand-in to grade (s)")  # fmt: skip
    grades.axhline(60, linestyle="--", linewidth=0.8, color="tab:red")
    grades.set_ylabel("seconds from hand-in to grade, p95 (goal 60)", color="tab:red")
    grades.set_ylim(bottom=0)
    lines = ax2.get_legend_handles_labels()[0] + grades.get_legend_handles_labels()[0]
    ax2.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
