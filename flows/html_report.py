"""`delegation report`: one self-contained HTML page about the forms received since a date.

Forms per day by status (stacked bars), time from receipt to end state against the 15-day SLA,
the error codes that stop forms most often, and the forms at risk. Charts are inline SVG, styles
inline CSS: no script, no font, no image is fetched, so the file can be mailed or archived as is.
Every text from the database is HTML-escaped. Days are UTC days.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from grants.outcome import SLA_DAYS, iso
from grants.sla import Board, State

STATUSES = ("applied", "rejected", "duplicate", "quarantined", "processing")
LABEL = {"processing": "pending"}
COLOR = {
    "applied": "#2e7d32",
    "rejected": "#f0a202",
    "duplicate": "#8497a8",
    "quarantined": "#c62828",
    "processing": "#5e35b1",
}
DAILY_LIMIT = 92  # longer periods are drawn per week


@dataclass(frozen=True)
class ReportData:
    since: date
    now: datetime
    source: str
    days: list[tuple[date, dict[str, int]]]  # every UTC day of the period, zeros included
    completion: dict
    codes: list[tuple[str, str, int]]  # (code, rejected|quarantined, forms)
    board: Board

    @property
    def totals(self) -> dict[str, int]:
        return {s: sum(counts.get(s, 0) for _, counts in self.days) for s in STATUSES}


def gather(store, *, since: date, now: datetime, at_risk_days: float = 10, source: str = "") -> ReportData:
    """Everything the page shows, read in one read-only transaction plus the SLA board."""
    from flows.sla import read_board
    from loaders.store.reads import completion_stats, daily_status_counts, top_error_codes

    start = datetime.combine(since, time(0), tzinfo=UTC)
    with store.reading() as conn:
        counts = daily_status_counts(conn, start, now)
        completion = completion_stats(conn, start, now)
        codes = top_error_codes(conn, start, now, limit=10)
    by_day: dict[date, dict[str, int]] = {}
    for day, status, n in counts:
        by_day.setdefault(date.fromisoformat(day), {})[status] = n
    last = now.astimezone(UTC).date()
    days = [(since + timedelta(d), by_day.get(since + timedelta(d), {})) for d in range((last - since).days + 1)]
    board = read_board(store, now=now, at_risk_days=at_risk_days, lookback_days=max((now - start).days, 0))
    return ReportData(since, now, source, days, completion, codes, board)


# --------------------------------------------------------------------------------------------
# SVG pieces


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _nice_step(top: float, divisions: int = 5) -> int:
    """A step of 1, 2 or 5 times a power of ten giving about `divisions` gridlines up to `top`."""
    raw = max(top / divisions, 1)
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * power >= raw:
            return int(m * power)
    return int(10 * power)


def _y_axis(top: int, x0: float, x1: float, y0: float, height: float) -> tuple[int, str]:
    step = _nice_step(top)
    ceiling = max(step, math.ceil(top / step) * step)
    parts = []
    for v in range(0, ceiling + 1, step):
        y = y0 + height - height * v / ceiling
        parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{x0 - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{v}</text>')
    return ceiling, "".join(parts)


def _empty_svg(width: int, height: int, message: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img">'
            f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" class="empty"/>'
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="note">{_e(message)}</text></svg>')


def _periods(data: ReportData) -> list[tuple[str, str, dict[str, int]]]:
    """(axis label, tooltip label, counts) per day, or per week (Monday) for long periods."""
    if len(data.days) <= DAILY_LIMIT:
        return [(d.strftime("%b %d"), d.isoformat(), c) for d, c in data.days]
    weeks: dict[date, dict[str, int]] = {}
    for d, counts in data.days:
        week = weeks.setdefault(d - timedelta(d.weekday()), {})
        for s, n in counts.items():
            week[s] = week.get(s, 0) + n
    return [(w.strftime("%b %d"), f"week of {w.isoformat()}", c) for w, c in sorted(weeks.items())]


def daily_chart(data: ReportData, width: int = 1100, height: int = 300) -> str:
    periods = _periods(data)
    top = max((sum(c.values()) for _, _, c in periods), default=0)
    if top == 0:
        return _empty_svg(width, 120, f"No forms received since {data.since.isoformat()}.")
    left, right, upper, lower = 44, 12, 12, 40
    pw, ph = width - left - right, height - upper - lower
    ceiling, axis = _y_axis(top, left, width - right, upper, ph)
    slot = pw / len(periods)
    bar = max(min(slot * 0.78, 36), 1.0)
    every = max(1, math.ceil(len(periods) / 14))
    parts = [axis]
    for i, (label, tip, counts) in enumerate(periods):
        x = left + i * slot + (slot - bar) / 2
        y = upper + ph
        for status in STATUSES:
            n = counts.get(status, 0)
            if not n:
                continue
            h = ph * n / ceiling
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{COLOR[status]}">'
                         f"<title>{_e(tip)}: {n} {LABEL.get(status, status)}</title></rect>")
        if i % every == 0:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{upper + ph + 18}" class="tick" '
                         f'text-anchor="middle">{_e(label)}</text>')
    parts.append(f'<line x1="{left}" y1="{upper + ph}" x2="{width - right}" y2="{upper + ph}" class="axis"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'aria-label="Forms received per day by status">{"".join(parts)}</svg>')


def completion_chart(data: ReportData, width: int = 640, height: int = 280) -> str:
    from loaders.store.reads import COMPLETION_BUCKETS

    buckets = data.completion["buckets"]
    top = max(buckets.values(), default=0)
    if top == 0:
        return _empty_svg(width, 120 * width // 440, "No form completed in this period.")
    left, right, upper, lower = 44, 12, 24, 40
    pw, ph = width - left - right, height - upper - lower
    ceiling, axis = _y_axis(top, left, width - right, upper, ph)
    slot = pw / len(COMPLETION_BUCKETS)
    bar = slot * 0.7
    parts = [axis]
    for i, (label, bound) in enumerate(COMPLETION_BUCKETS):
        n = buckets.get(label, 0)
        colour = "#c62828" if bound is None else "#f0a202" if bound > 10 * 86400 else "#2e7d32"
        x = left + i * slot + (slot - bar) / 2
        h = max(ph * n / ceiling, 3) if n else 0  # a few forms stay visible next to hundreds
        parts.append(f'<rect x="{x:.1f}" y="{upper + ph - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                     f'fill="{colour}"><title>{_e(label)}: {n} form(s)</title></rect>')
        shown = "value" if n else "value muted"
        parts.append(f'<text x="{x + bar / 2:.1f}" y="{upper + ph - h - 5:.1f}" class="{shown}" '
                     f'text-anchor="middle">{n}</text>')
        parts.append(f'<text x="{x + bar / 2:.1f}" y="{upper + ph + 18}" class="tick" '
                     f'text-anchor="middle">{_e(label)}</text>')
    sla_x = left + (len(COMPLETION_BUCKETS) - 1) * slot
    parts.append(f'<line x1="{sla_x:.1f}" y1="{upper - 14}" x2="{sla_x:.1f}" y2="{upper + ph}" class="sla"/>'
                 f'<text x="{sla_x - 6:.1f}" y="{upper - 4}" class="sla-label" text-anchor="end">'
                 f"{SLA_DAYS}-day SLA</text>")
    parts.append(f'<line x1="{left}" y1="{upper + ph}" x2="{width - right}" y2="{upper + ph}" class="axis"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'aria-label="Time from receipt to end state">{"".join(parts)}</svg>')


def codes_chart(data: ReportData, width: int = 440, row: int = 26) -> str:
    if not data.codes:
        return _empty_svg(width, 120, "No form rejected or quarantined in this period.")
    label_w, count_w = 210, 40
    height = row * len(data.codes) + 8
    top = max(n for _, _, n in data.codes)
    parts = []
    for i, (code, status, n) in enumerate(data.codes):
        y = 4 + i * row
        w = (width - label_w - count_w) * n / top
        parts.append(f'<text x="{label_w - 8}" y="{y + row / 2 + 4:.1f}" class="code" text-anchor="end">'
                     f"{_e(code)}</text>"
                     f'<rect x="{label_w}" y="{y + 4}" width="{max(w, 1):.1f}" height="{row - 8}" '
                     f'fill="{COLOR[status]}">'
                     f"<title>{_e(code)}: {n} {status} form(s)</title></rect>"
                     f'<text x="{label_w + w + 6:.1f}" y="{y + row / 2 + 4:.1f}" class="value">{n}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'aria-label="Top rejection codes">{"".join(parts)}</svg>')


# --------------------------------------------------------------------------------------------
# the page


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _percent(part: int, whole: int) -> str:
    """Rounded down, so one late form never shows as 100%."""
    if not whole:
        return "–"
    tenths = part * 1000 // whole
    return f"{tenths // 10}%" if tenths % 10 == 0 else f"{tenths / 10:.1f}%"


def _legend() -> str:
    return "".join(f'<span class="key"><i style="background:{COLOR[s]}"></i>{LABEL.get(s, s)}</span>'
                   for s in STATUSES)


def _watch_table(board: Board) -> str:
    flagged = sorted(board.breached + board.at_risk,
                     key=lambda e: (e.state(board.now, board.at_risk_days) is not State.BREACHED, e.received_at))
    if not flagged:
        return (f'<p class="ok">No form is at risk or past due (at risk: pending more than '
                f"{board.at_risk_days:g} days).</p>")
    rows = []
    for e in flagged:
        state = e.state(board.now, board.at_risk_days)
        rows.append(
            f'<tr class="{state}"><td><span class="pill {state}">{_e(state)}</span></td>'
            f"<td class='key'>{_e(e.key)}</td><td>{_e(iso(e.received_at))}</td><td>{_e(iso(e.sla_due))}</td>"
            f"<td class='num'>{e.age_days(board.now):.1f}</td>"
            f"<td>{_e(iso(e.completed_at) or 'pending')}</td><td class='num'>{e.attempts}</td></tr>"
        )
    return ("<table><thead><tr><th>state</th><th>file</th><th>received (UTC)</th><th>due (UTC)</th>"
            "<th class='num'>age (days)</th><th>completed</th><th class='num'>attempts</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f4f6f8;color:#1d2733;font:14px/1.45 "DejaVu Sans",system-ui,-apple-system,"Segoe UI",
Roboto,Helvetica,Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:16px;margin:0 0 12px}
.sub{color:#5b6775;margin:0 0 20px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(104px,1fr));gap:12px;margin-bottom:16px}
.card{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08);
border-top:4px solid #ccd}
.card b{display:block;font-size:26px;line-height:1.2}
.card span{color:#5b6775;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.panel{background:#fff;border-radius:8px;padding:16px 18px;margin-bottom:16px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.row{display:grid;grid-template-columns:3fr 2fr;gap:16px}
.legend{margin:-4px 0 8px}.key{margin-right:16px;font-size:12px;color:#44505c}
.key i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:0}
.stats{color:#44505c;margin:8px 0 0}
svg text{font-family:inherit}
svg .tick{font-size:11px;fill:#5b6775}svg .value{font-size:11px;fill:#1d2733}
svg .code{font-size:12px;fill:#1d2733;font-family:"DejaVu Sans Mono",ui-monospace,monospace}
svg .grid{stroke:#e3e8ee;stroke-width:1}svg .axis{stroke:#8a96a3;stroke-width:1}
svg .sla{stroke:#c62828;stroke-width:2;stroke-dasharray:5 4}svg .sla-label{font-size:11px;fill:#c62828;font-weight:bold}
svg .empty{fill:#fafbfc;stroke:#d5dbe1;stroke-dasharray:4 4}svg .muted{fill:#8a96a3}
svg .note{fill:#8a96a3;font-size:14px}
table{width:100%;border-collapse:collapse;font-size:13px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e8ee;vertical-align:top}
th{color:#5b6775;font-weight:600}
td.key{font-family:"DejaVu Sans Mono",ui-monospace,monospace;word-break:break-all}
.num{text-align:right}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;color:#fff}
.pill.breached{background:#c62828}.pill.at-risk{background:#f0a202;color:#1d2733}
.ok{color:#2e7d32;margin:0}
footer{color:#8a96a3;font-size:12px;margin-top:8px}
@media (max-width:900px){.row{grid-template-columns:1fr}}
"""


def render(data: ReportData) -> str:
    """The whole page as one string (UTF-8, no external references)."""
    totals = data.totals
    received = sum(totals.values())
    comp = data.completion
    within = _percent(comp["within_sla"], comp["completed"])
    board = data.board
    cards = [
        ("received", received, "#1d2733"),
        *((LABEL.get(s, s), totals[s], COLOR[s]) for s in STATUSES),
        ("within SLA", within, "#2e7d32"),
        ("at risk", len(board.at_risk), "#f0a202"),
        ("breached", len(board.breached), "#c62828"),
    ]
    card_html = "".join(f'<div class="card" style="border-top-color:{c}"><b>{_e(v)}</b><span>{_e(k)}</span></div>'
                        for k, v, c in cards)
    per = "day" if len(data.days) <= DAILY_LIMIT else "week"
    stats = "No form reached an end state in this period." if not comp["completed"] else (
             f"{comp['completed']} form(s) reached an end state, {comp['within_sla']} of them within {SLA_DAYS} days "
             f"of receipt. Median {_duration(comp['median_seconds'])}, 95th percentile "
             f"{_duration(comp['p95_seconds'])}, worst {_duration(comp['max_seconds'])}.")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Delegate User Forms since {_e(data.since.isoformat())}</title>
<style>{_CSS}</style></head>
<body><main>
<h1>Delegate User Forms</h1>
<p class="sub">Received from {_e(data.since.isoformat())} to {_e(iso(data.now))} (UTC) · generated {_e(iso(data.now))}
{(" · " + _e(data.source)) if data.source else ""}</p>
<div class="cards">{card_html}</div>
<section class="panel"><h2>Forms received per {per}, by status</h2>
<div class="legend">{_legend()}</div>{daily_chart(data)}</section>
<div class="row">
<section class="panel"><h2>Time from receipt to end state</h2>{completion_chart(data)}
<p class="stats">{_e(stats)}</p></section>
<section class="panel"><h2>Top rejection codes <small>(forms stopped)</small></h2>
<div class="legend"><span class="key"><i style="background:{COLOR['rejected']}"></i>rejected</span>
<span class="key"><i style="background:{COLOR['quarantined']}"></i>quarantined</span></div>{codes_chart(data)}</section>
</div>
<section class="panel"><h2>At risk and breached</h2>{_watch_table(board)}</section>
<footer>Pending: not yet at an end state. At risk: pending more than {board.at_risk_days:g} days. Breached: pending
past the {SLA_DAYS}-day due time, or completed after it. Days are UTC.</footer>
</main></body></html>
"""
