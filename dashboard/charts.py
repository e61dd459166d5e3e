"""Small charts for the class pages, drawn on the server as inline SVG (no script, no chart library).

Pure functions turn rows into bins, cumulative series and points; the `*_chart` functions lay those
out in SVG coordinates, and each chart's `html()` writes its SVG and the table of its numbers, with
the stylesheet's classes, so the light and dark themes both apply. The markup is written here rather
than in a template: a page of seven charts spent most of its time in the template engine's loops.
Everything that comes from data goes through format_html, which escapes it.

One module for the three charts, over 600 lines: they share the frame, the axes, the ticks and the
accessible description, which would otherwise cross modules as private helpers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.utils import formats
from django.utils.dateformat import format as date_format
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import capfirst

from dashboard.markup import fixed, format_html, format_html_join

# The chapter's own result: resnet34, pretrained, on Oxford-IIIT Pets, error rate after fine_tune(1).
CHAPTER_REFERENCE = {("pets", "resnet34", True): 0.0041}

NICE_MAXIMA = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class Tick:
    at: float  # position along its axis, in SVG units
    label: str
    anchor: str = "middle"  # SVG text-anchor: the first and last labels of an x axis stay inside the chart


def _x_ticks(ticks: list[tuple[float, str]]) -> list[Tick]:
    last = len(ticks) - 1
    return [
        Tick(at, label, "start" if i == 0 else "end" if i == last else "middle") for i, (at, label) in enumerate(ticks)
    ]


def _pct(x: float) -> str:
    return f"{round(x * 100)}%"


def _number(x: float) -> str:
    """Short tick text: 0, 0.05, 0.125, 3, 12."""
    return f"{x:.4f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def _day(d: date) -> str:
    return f"{d:%b} {d.day}"


def nice_ceiling(x: float) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... that is at least x (at least 1): a y-axis top for counts."""
    if x <= 1:
        return 1
    scale = 10 ** math.floor(math.log10(x))
    for step in (1, 2, 5, 10):
        if step * scale >= x:
            return int(step * scale)
    return int(10 * scale)  # pragma: no cover - the loop always returns


class _Frame:
    """Where a chart's plot sits inside its SVG: the margins are fields of each chart."""

    @property
    def base(self) -> float:
        return self.height - self.bottom

    @property
    def plot_right(self) -> float:
        return self.width - self.right

    @property
    def middle(self) -> float:
        return (self.left + self.plot_right) / 2


def _empty_figure(chart, message: str) -> SafeString:
    """A chart's figure with nothing to draw yet: its caption and why."""
    return format_html(
        '<figure class="chart">\n  <figcaption id="{}-title">{}</figcaption>\n  <p class="muted">{}</p>\n</figure>',
        chart.id, chart.title, message,
    )  # fmt: skip


def _svg_open(chart) -> SafeString:
    """The <svg> element's start: its box, its role, and the title and description a screen reader
    announces (the figure's caption and the chart's summary)."""
    return format_html(
        '<svg viewBox="0 0 {} {}" role="img" aria-labelledby="{}-title {}-desc">\n'
        "    <title>{}</title>\n"
        '    <desc id="{}-desc">{}</desc>\n',
        chart.width, chart.height, chart.id, chart.id, chart.title, chart.id, chart.summary,
    )  # fmt: skip


def _y_grid(chart) -> SafeString:
    """A grid line and its label at each tick of the y axis."""
    return format_html_join(
        "",
        '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<text class="tick" x="{}" y="{}" dy="4" text-anchor="end">{}</text>',
        (
            (chart.left, chart.plot_right, fixed(t.at), fixed(t.at), int(chart.left) - 4, fixed(t.at), t.label)
            for t in chart.y_ticks
        ),
    )


def _x_labels(chart, below: int) -> SafeString:
    """The x axis' tick labels, `below` units under the plot."""
    return format_html_join(
        "",
        '<text class="tick" x="{}" y="{}" text-anchor="{}">{}</text>',
        ((fixed(t.at), int(chart.base) + below, t.anchor, t.label) for t in chart.x_ticks),
    )


def _x_axis(chart) -> SafeString:
    return format_html(
        '<line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"/>', chart.left, chart.plot_right, chart.base, chart.base
    )


def _axis_label_below(chart, text: str) -> SafeString:
    return format_html(
        '<text class="axis-label" x="{}" y="{}" text-anchor="middle">{}</text>',
        formats.localize(chart.middle), int(chart.height) - 4, text,
    )  # fmt: skip


# ---------------------------------------------------------------- scores: histograms


@dataclass(frozen=True)
class Bin:
    lo: float
    hi: float
    count: int

    @property
    def label(self) -> str:
        return f"{_pct(self.lo)}–{_pct(self.hi)}"


BINS = 10  # best scores are counted in tenths


def bin_of(score: float, n: int = BINS) -> int:
    """Which of n equal bins from 0 to 1 a score falls in; 1 itself is in the last."""
    # The small epsilon keeps 0.3 (stored as 0.29999...) in the 30% bin.
    return min(max(int(score * n + 1e-9), 0), n - 1)


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    bin: Bin


@dataclass
class Histogram(_Frame):
    id: str
    title: str
    n: int
    bins: list[Bin]
    bars: list[Bar]  # only the bins that hold someone
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    width: int = 300
    height: int = 180
    left: int = 34
    right: int = 10
    top: int = 24
    bottom: int = 36

    @property
    def summary(self) -> str:
        busiest = max(self.bins, key=lambda b: b.count)
        who = "student" if self.n == 1 else "students"
        return f"{self.title}: best scores of {self.n} {who} in 10 bins; the most, {busiest.count}, in {busiest.label}."

    def html(self) -> SafeString:
        """The figure: bars with a title each, axes, and the table of every band under "The numbers"."""
        bars = format_html_join(
            "",
            '<rect class="bar" x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>',
            ((fixed(b.x), fixed(b.y), fixed(b.width), fixed(b.height), b.bin.label, b.bin.count) for b in self.bars),
        )
        table = format_html_join("", "<tr><td>{}</td><td>{}</td></tr>", ((b.label, b.count) for b in self.bins))
        return format_html(
            '<figure class="chart small">\n'
            '  <figcaption id="{}-title">{}</figcaption>\n'
            "  {}"
            "    {}\n"
            "    {}\n"
            "    {}\n"
            "    {}\n"
            '    <text class="axis-label" x="4" y="14">students per 10% band</text>\n'
            "    {}\n"
            "  </svg>\n"
            "  <details>\n"
            "    <summary>The numbers</summary>\n"
            '    <table class="data compact">\n'
            '      <caption class="sr-only">{}: students per band of best score</caption>\n'
            '      <thead><tr><th scope="col">Best score</th><th scope="col">Students</th></tr></thead>\n'
            "      <tbody>{}</tbody>\n"
            "    </table>\n"
            "  </details>\n"
            "</figure>",
            self.id, self.title, _svg_open(self), _y_grid(self), bars, _x_axis(self), _x_labels(self, 14),
            _axis_label_below(self, "best score"), self.title, table,
        )  # fmt: skip


def bins_of_counts(counts: list[int]) -> list[Bin]:
    """n equal bins from 0 to 1 holding these counts (the database's: dashboard.models.ClassScoreBin)."""
    n = len(counts)
    return [Bin(i / n, (i + 1) / n, c) for i, c in enumerate(counts)]


def histogram_of_bins(*, id: str, title: str, bins: list[Bin]) -> Histogram:
    n_bins = len(bins)
    chart = Histogram(id=id, title=title, n=sum(b.count for b in bins), bins=bins, bars=[], x_ticks=[], y_ticks=[])
    plot_w = chart.plot_right - chart.left
    plot_h = chart.base - chart.top
    top = nice_ceiling(max(b.count for b in bins))
    step = plot_w / n_bins
    for i, b in enumerate(bins):
        if b.count:
            h = plot_h * b.count / top
            chart.bars.append(Bar(x=chart.left + i * step + 1, y=chart.base - h, width=step - 2, height=h, bin=b))
    chart.x_ticks = _x_ticks([(chart.left + plot_w * f, _pct(f)) for f in (0, 0.5, 1)])
    chart.y_ticks = [Tick(chart.base - plot_h * v / top, _number(v)) for v in sorted({0, top / 2, top}) if v == int(v)]
    return chart


# ---------------------------------------------------------------- activity over time

ACTIVITY_KINDS = {
    "read": "sections read",
    "tests": "tests handed in",
    "jobs": "experiments that succeeded",
}


@dataclass
class Series:
    kind: str
    label: str
    values: list[int]  # cumulative, one per day
    path: str = ""
    marks: str = ""  # the markers' SVG: one shape per kind, so lines with equal values stay told apart

    @property
    def total(self) -> int:
        return self.values[-1] if self.values else 0


def cumulative_by_day(
    rows: Iterable[tuple[date, str, int]], *, end: date, kinds: Iterable[str] = tuple(ACTIVITY_KINDS)
) -> tuple[list[date], dict[str, list[int]]]:
    """(day, kind, count) rows -> every day from the first with an event to `end`, and for each kind
    its running total on each of those days. No rows: no days.

    The first day is the first with activity, not the day before it: a class whose work all happened on
    one day is shown on that day, not on an empty day before it."""
    per_day: dict[str, dict[date, int]] = {k: defaultdict(int) for k in kinds}
    for day, kind, n in rows:
        if kind in per_day:
            per_day[kind][day] += n
    all_days = [d for counts in per_day.values() for d in counts]
    if not all_days:
        return [], {k: [] for k in per_day}
    first = min(all_days)
    last = max(end, max(all_days))
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    totals: dict[str, list[int]] = {}
    for kind, counts in per_day.items():
        running, values = 0, []
        for d in days:
            running += counts.get(d, 0)
            values.append(running)
        totals[kind] = values
    return days, totals


@dataclass
class LineChart(_Frame):
    id: str
    title: str
    days: list[date]
    series: list[Series]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    width: int = 600
    height: int = 260
    left: int = 44
    right: int = 16
    top: int = 26
    bottom: int = 40

    @property
    def rows(self) -> list[tuple[date, list[int]]]:
        """The numbers behind the lines, one row per day, for the table that stands in for the picture."""
        return [(d, [s.values[i] for s in self.series]) for i, d in enumerate(self.days)]

    @property
    def summary(self) -> str:
        if not self.days:
            return f"{self.title}: nothing yet."
        totals = ", ".join(f"{s.total} {s.label}" for s in self.series)
        return (
            f"{self.title}, {_day(self.days[0])} to {_day(self.days[-1])}: running totals per day, reaching {totals}."
        )

    def html(self) -> SafeString:
        """The figure: one line per kind of activity, its key, and the day-by-day table under "The numbers"."""
        if not self.days:
            return _empty_figure(self, "Nothing yet: no section read, no test handed in, no experiment finished.")
        lines = format_html_join(
            "",
            '<g><path class="line series-{}" d="{}"/>{}<title>{}: {}</title></g>',
            ((s.kind, s.path, s.marks, s.label, s.total) for s in self.series),
        )
        keys = format_html_join(
            "",
            '<span class="key series-{}">{}: <strong>{}</strong></span>',
            ((s.kind, s.label, s.total) for s in self.series),
        )
        heads = format_html_join("", '<th scope="col">{}</th>', ((capfirst(s.label),) for s in self.series))
        body = format_html_join(
            "",
            '<tr><th scope="row">{}</th>{}</tr>',
            (
                (date_format(day, "M j"), format_html_join("", "<td>{}</td>", ((v,) for v in values)))
                for day, values in self.rows
            ),
        )
        return format_html(
            '<figure class="chart">\n'
            '  <figcaption id="{}-title">{}</figcaption>\n'
            "  {}"
            "    {}\n"
            "    {}\n"
            '    <line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"/>\n'
            "    {}\n"
            "    {}\n"
            '    <text class="axis-label" x="4" y="14">running total since the first day</text>\n'
            "    {}\n"
            "  </svg>\n"
            '  <p class="chart-keys">{}</p>\n'
            "  <details>\n"
            "    <summary>The numbers, day by day</summary>\n"
            '    <div class="table-wrap" tabindex="0" role="region" aria-label="The numbers, day by day">\n'
            '    <table class="data compact">\n'
            '      <caption class="sr-only">{}: running totals per day</caption>\n'
            '      <thead><tr><th scope="col">Day</th>{}</tr></thead>\n'
            "      <tbody>{}</tbody>\n"
            "    </table>\n"
            "    </div>\n"
            "  </details>\n"
            "</figure>",
            self.id, self.title, _svg_open(self), _y_grid(self), _x_axis(self),
            self.left, self.left, self.top, self.base, lines, _x_labels(self, 16), _axis_label_below(self, "day"),
            keys, self.title, heads, body,
        )  # fmt: skip


MARKERS = {
    "read": '<circle class="mark series-read" cx="{x:.1f}" cy="{y:.1f}" r="6"/>',
    "tests": '<path class="mark series-tests" d="M{x:.1f},{y:.1f} m-4,-4 h8 v8 h-8 z"/>',
    "jobs": '<path class="mark series-jobs" d="M{x:.1f},{y:.1f} m0,-3.5 l3.5,3.5 l-3.5,3.5 l-3.5,-3.5 z"/>',
}


def activity_chart(*, id: str, title: str, rows: Iterable[tuple[date, str, int]], end: date) -> LineChart:
    days, totals = cumulative_by_day(rows, end=end)
    series = [Series(kind, ACTIVITY_KINDS[kind], values) for kind, values in totals.items()]
    chart = LineChart(id=id, title=title, days=days, series=series, x_ticks=[], y_ticks=[])
    if not days:
        return chart
    plot_w = chart.plot_right - chart.left
    plot_h = chart.base - chart.top
    top = nice_ceiling(max(s.total for s in series))
    span = max(len(days) - 1, 1)

    def sx(i):
        return chart.left + plot_w * i / span

    def sy(v):
        return chart.base - plot_h * v / top

    for s in series:
        s.path = " ".join(f"{'L' if i else 'M'}{sx(i):.1f},{sy(v):.1f}" for i, v in enumerate(s.values))
        # A marker where the total changes, and at both ends: equal lines draw over each other, but their
        # markers nest (a large circle, a square inside it, a small diamond inside that).
        shown = [i for i, v in enumerate(s.values) if i in (0, len(s.values) - 1) or v != s.values[i - 1]]
        s.marks = SafeString("".join(MARKERS[s.kind].format(x=sx(i), y=sy(s.values[i])) for i in shown))
    last = len(days) - 1
    picks = sorted({0, last // 2, last})
    chart.x_ticks = _x_ticks([(sx(i), _day(days[i])) for i in picks])
    chart.y_ticks = [Tick(sy(v), _number(v)) for v in sorted({0, top / 2, top}) if v == int(v)]
    return chart


# ---------------------------------------------------------------- error rates of the class's jobs


@dataclass
class Dot:
    x: float
    y: float
    error_rate: float
    label: str


@dataclass
class Strip:
    dataset: str
    arch: str
    pretrained: bool
    title: str
    error_rates: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    reference: float | None = None
    dots: list[Dot] = field(default_factory=list)
    y: float = 0.0
    reference_x: float | None = None

    @property
    def best(self) -> float:
        return min(self.error_rates)


def error_strips(jobs: Iterable, *, dataset_labels: dict[str, str] | None = None) -> list[Strip]:
    """Succeeded jobs with an error rate, grouped by data set, architecture and pretrained or not.

    Each job needs `state`, `error_rate`, `dataset`, `arch`, `pretrained`, `pk` and `owner.username`.
    Groups come in data-set order, then architecture, pretrained before from scratch; the chapter's
    own result is the reference of the group that repeats its experiment.
    """
    labels = dataset_labels or {}
    groups: dict[tuple, Strip] = {}
    for job in jobs:
        if job.state != "succeeded" or job.error_rate is None:
            continue
        key = (job.dataset, job.arch, bool(job.pretrained))
        if key not in groups:
            how = "pretrained" if job.pretrained else "from scratch"
            groups[key] = Strip(
                dataset=job.dataset, arch=job.arch, pretrained=bool(job.pretrained),
                title=f"{labels.get(job.dataset) or getattr(job, 'dataset_label', job.dataset)}: {job.arch}, {how}",
                reference=CHAPTER_REFERENCE.get(key),
            )  # fmt: skip
        groups[key].error_rates.append(job.error_rate)
        groups[key].labels.append(f"#{job.pk} {job.owner.username}")
    return [groups[k] for k in sorted(groups, key=lambda k: (k[0], k[1], not k[2]))]


@dataclass
class StripChart(_Frame):
    id: str
    title: str
    strips: list[Strip]
    x_max: float
    x_ticks: list[Tick]
    width: int = 600
    left: int = 16
    right: int = 24
    top: int = 8
    row: int = 56
    bottom: int = 44

    @property
    def height(self) -> int:
        return self.top + self.row * len(self.strips) + self.bottom

    @property
    def n(self) -> int:
        return sum(len(s.error_rates) for s in self.strips)

    @property
    def merged(self) -> bool:
        return any(len(s.error_rates) > DOTS_PER_STRIP for s in self.strips)

    @property
    def summary(self) -> str:
        if not self.strips:
            return f"{self.title}: no experiment has succeeded yet."
        groups = "; ".join(f"{s.title}: {len(s.error_rates)}, best {s.best:.4f}" for s in self.strips)
        return f"{self.title}, one dot per experiment that succeeded ({self.n}). {groups}."

    def html(self) -> SafeString:
        """The figure: a strip of dots per group, the chapter's result where it applies, and the table of
        every error rate under "The numbers"."""
        if not self.strips:
            return _empty_figure(self, "No experiment of this class has succeeded yet.")
        grid = format_html_join(
            "",
            '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>',
            ((fixed(t.at), fixed(t.at), self.top, self.base) for t in self.x_ticks),
        )
        strips = mark_safe("".join(self._strip_html(s) for s in self.strips))
        refs = format_html_join(
            "",
            '<span class="key reference">the chapter\'s own result ({}, resnet34 pretrained on Pets)</span>',
            ((formats.localize(s.reference),) for s in self.strips if s.reference is not None),
        )
        rows = format_html_join(
            "",
            '<tr><th scope="row">{}</th><td>{}</td><td>{}</td><td class="wrap">{}</td></tr>',
            (
                (
                    s.title,
                    len(s.error_rates),
                    fixed(s.best, 4),
                    format_html_join(", ", "{} ({})", ((fixed(d.error_rate, 4), d.label) for d in s.dots)),
                )  # fmt: skip
                for s in self.strips
            ),
        )
        return format_html(
            '<figure class="chart">\n'
            '  <figcaption id="{}-title">{}</figcaption>\n'
            "  {}"
            "    {}\n"
            "{}"
            "    {}\n"
            "    {}\n"
            "    {}\n"
            "  </svg>\n"
            '  <p class="chart-keys"><span class="key dots">one experiment that succeeded{}</span>{}</p>\n'
            "  <details>\n"
            "    <summary>The numbers</summary>\n"
            '    <div class="table-wrap" tabindex="0" role="region" aria-label="The numbers, group by group">\n'
            '    <table class="data compact">\n'
            '      <caption class="sr-only">{}, per group</caption>\n'
            '      <thead><tr><th scope="col">Data, architecture, weights</th><th scope="col">Experiments</th>'
            '<th scope="col">Best</th><th scope="col">Error rates</th></tr></thead>\n'
            "      <tbody>{}</tbody>\n"
            "    </table>\n"
            "    </div>\n"
            "  </details>\n"
            "</figure>",
            self.id, self.title, _svg_open(self), grid, strips, _x_axis(self), _x_labels(self, 16),
            _axis_label_below(self, "error rate on the validation set (lower is better)"),
            ", or several close together (its label says how many)" if self.merged else "", refs, self.title, rows,
        )  # fmt: skip

    def _strip_html(self, s: Strip) -> SafeString:
        reference = (
            ""
            if s.reference_x is None
            else format_html(
                '<line class="reference" x1="{}" x2="{}" y1="{}" y2="{}">'
                "<title>The chapter's result: {}</title></line>",
                fixed(s.reference_x),
                fixed(s.reference_x),
                int(s.y) + 22,
                int(s.y) + 48,
                formats.localize(s.reference),
            )  # fmt: skip
        )
        dots = format_html_join(
            "",
            '<circle class="dot job" cx="{}" cy="{}" r="4.5"><title>{}: {}</title></circle>',
            ((fixed(d.x), fixed(d.y), d.label, fixed(d.error_rate, 4)) for d in s.dots),
        )
        return format_html(
            '    <g class="strip">\n'
            '      <text class="strip-label" x="{}" y="{}">{}</text>\n'
            "      {}\n"
            "      {}\n"
            "    </g>\n",
            self.left, int(s.y) + 16, s.title, reference, dots,
        )  # fmt: skip


DOTS_PER_STRIP = 60  # past this, experiments a few pixels apart share one dot
MERGE_PX = 4.0


def _merged_dots(points: list[tuple[float, str]], sx, centre: float) -> list[Dot]:
    """A big class's experiments, sorted by error rate, as at most one dot per MERGE_PX pixels: each
    dot says how many experiments it stands for and their range (hundreds of overlapping dots would
    only make the page heavy)."""
    dots: list[Dot] = []
    bucket: list[tuple[float, str]] = []

    def flush():
        lo, hi = bucket[0][0], bucket[-1][0]
        label = bucket[0][1] if len(bucket) == 1 else f"{len(bucket)} experiments, {lo:.4f} to {hi:.4f}"
        dots.append(Dot(sx(lo), centre + (len(dots) % 3 - 1) * 7, lo, label))

    for rate, label in points:
        if bucket and sx(rate) - sx(bucket[0][0]) >= MERGE_PX:
            flush()
            bucket = []
        bucket.append((rate, label))
    if bucket:
        flush()
    return dots


def error_chart(*, id: str, title: str, jobs: Iterable, dataset_labels: dict[str, str] | None = None) -> StripChart:
    strips = error_strips(jobs, dataset_labels=dataset_labels)
    highest = max([r for s in strips for r in s.error_rates] + [s.reference or 0 for s in strips], default=0)
    x_max = next((m for m in NICE_MAXIMA if m >= highest), 1.0)
    chart = StripChart(id=id, title=title, strips=strips, x_max=x_max, x_ticks=[])
    plot_w = chart.plot_right - chart.left

    def sx(v):
        return chart.left + plot_w * v / x_max

    for i, s in enumerate(strips):
        s.y = chart.top + i * chart.row
        centre = s.y + 34
        # Dots side by side at one rate would hide each other: spread them over three lines.
        points = sorted(zip(s.error_rates, s.labels, strict=True)) if len(s.error_rates) > DOTS_PER_STRIP else None
        s.dots = (
            _merged_dots(points, sx, centre)
            if points
            else [
                Dot(sx(r), centre + (j % 3 - 1) * 7, r, label)
                for j, (r, label) in enumerate(zip(s.error_rates, s.labels, strict=True))
            ]
        )
        s.reference_x = None if s.reference is None else sx(s.reference)
    chart.x_ticks = _x_ticks([(sx(v), _number(v)) for v in (0, x_max / 2, x_max)])
    return chart
