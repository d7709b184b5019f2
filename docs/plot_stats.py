#!/usr/bin/env python3
"""Plot a tweetflow `--stats-file` as an SVG: received vs committed per second.

Usage: python3 docs/plot_stats.py STATS.jsonl OUT.svg [--title TEXT] [--high TWEETS_PER_S]

Python 3 standard library only. The stats file has one JSON object a second
(see docs/RUNNING.md): `t` (s since start), `rate_in` (tweets received/s),
`committed` (records committed so far), `buffered` and `spilled` (the sink's
backlog). The plot shows received/s and committed/s (the difference of
`committed` between two lines over the difference of `t`) on the left axis and
the backlog (buffer + spool) on the right axis, with the high phases of the
input shaded: a high phase is a stretch of at least 3 s where the input,
smoothed over 3 s, is at or over `--high` tweets/s (default 2,500: above what
two streams at the emulator's `mid` levels send, 2 × 900 events/s × 1⅓).

It also prints, for each high phase, the backlog 20 s after the phase ended
against one second of input at that moment (the issue's keeping-up criterion:
back under 1 s of input within 20 s), and the overall verdict.
"""

import json
import sys
from xml.sax.saxutils import escape


def load(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line
    return rows


def series(rows):
    """(t, received/s, committed/s, backlog) per line; committed/s from differences."""
    out = []
    prev = None
    for r in rows:
        t = float(r.get("t", 0.0))
        committed = r.get("committed")
        if committed is None:
            # Older stats files: tweet rows written per second is the closest figure.
            c_rate = float(r.get("rate_out", 0.0))
        elif prev is None or t <= prev[0]:
            c_rate = 0.0
        else:
            c_rate = (committed - prev[1]) / (t - prev[0])
        if committed is not None:
            prev = (t, committed)
        backlog = int(r.get("buffered", 0)) + int(r.get("spilled", 0))
        out.append((t, float(r.get("rate_in", 0.0)), c_rate, backlog))
    return out


def smooth(values, k):
    half = k // 2
    res = []
    for i in range(len(values)):
        w = values[max(0, i - half): i + half + 1]
        res.append(sum(w) / len(w))
    return res


def high_phases(pts, high, min_len=3.0):
    """Maximal stretches where the input (smoothed over 3 s) is at or over `high` tweets/s."""
    rate = smooth([p[1] for p in pts], 3)
    phases, start = [], None
    for i, v in enumerate(rate):
        if v >= high and start is None:
            start = i
        elif v < high and start is not None:
            if pts[i - 1][0] - pts[start][0] >= min_len:
                phases.append((start, i - 1))
            start = None
    if start is not None and pts[-1][0] - pts[start][0] >= min_len:
        phases.append((start, len(pts) - 1))
    return phases


def verdicts(pts, phases, after=20.0):
    """For each high phase: (start t, end t, backlog 20 s after, 1 s of input then, ok)."""
    res = []
    for s, e in phases:
        t_end = pts[e][0]
        if e == len(pts) - 1:
            res.append((pts[s][0], t_end, None, None, None))  # still high at the end
            continue
        j = next((k for k in range(e, len(pts)) if pts[k][0] >= t_end + after), None)
        if j is None:
            res.append((pts[s][0], t_end, None, None, None))
            continue
        backlog, one_second = pts[j][3], pts[j][1]
        res.append((pts[s][0], t_end, backlog, one_second, backlog <= one_second))
    return res


def svg(pts, phases, title, width=1000, height=420):
    ml, mr, mt, mb = 70, 80, 40, 50
    pw, ph = width - ml - mr, height - mt - mb
    t0, t1 = pts[0][0], pts[-1][0]
    span = max(t1 - t0, 1.0)
    ymax = max(max(p[1] for p in pts), max(p[2] for p in pts), 1.0) * 1.05
    bmax = max(max(p[3] for p in pts), 1) * 1.05

    def x(t):
        return ml + (t - t0) / span * pw

    def y(v):
        return mt + ph - v / ymax * ph

    def yb(v):
        return mt + ph - v / bmax * ph

    def line(idx, fn, color, wdt=1.5, dash=""):
        d = " ".join(f"{x(p[0]):.1f},{fn(p[idx]):.1f}" for p in pts)
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        return (f'<polyline fill="none" stroke="{color}" stroke-width="{wdt}"{extra} '
                f'points="{d}"/>')

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">'
           f'{escape(title)}</text>']
    for s, e in phases:
        out.append(f'<rect x="{x(pts[s][0]):.1f}" y="{mt}" '
                   f'width="{max(x(pts[e][0]) - x(pts[s][0]), 1):.1f}" height="{ph}" '
                   f'fill="#f3e6c8"/>')
    for i in range(6):
        v = ymax / 1.05 * i / 5
        out.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   f'stroke="#ddd"/>')
        out.append(f'<text x="{ml - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:,.0f}</text>')
        bv = bmax / 1.05 * i / 5
        out.append(f'<text x="{ml + pw + 6}" y="{yb(bv) + 4:.1f}" fill="#b03030">'
                   f'{bv:,.0f}</text>')
    for i in range(11):
        t = t0 + span * i / 10
        out.append(f'<text x="{x(t):.1f}" y="{mt + ph + 18}" text-anchor="middle">{t:.0f}</text>')
    out.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
    out.append(line(3, yb, "#b03030", 1.0, "4,3"))
    out.append(line(1, y, "#1f5fb4", 1.5))
    out.append(line(2, y, "#2a9d3a", 1.5))
    out.append(f'<text x="{ml + pw / 2}" y="{height - 10}" text-anchor="middle">'
               f'seconds since start</text>')
    out.append(f'<text x="16" y="{mt + ph / 2}" transform="rotate(-90 16 {mt + ph / 2})" '
               f'text-anchor="middle">tweets (records) per second</text>')
    out.append(f'<text x="{width - 14}" y="{mt + ph / 2}" '
               f'transform="rotate(90 {width - 14} {mt + ph / 2})" text-anchor="middle" '
               f'fill="#b03030">backlog: buffer + spool (records)</text>')
    lx = ml + 10
    for i, (label, color) in enumerate([("received/s", "#1f5fb4"), ("committed/s", "#2a9d3a"),
                                        ("backlog (right axis)", "#b03030"),
                                        ("high phase", "#e0c890")]):
        yy = mt + 14 + 16 * i
        out.append(f'<rect x="{lx}" y="{yy - 9}" width="14" height="10" fill="{color}"/>')
        out.append(f'<text x="{lx + 20}" y="{yy}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out)


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    title = "tweetflow: received vs committed per second"
    if "--title" in argv:
        i = argv.index("--title")
        title = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    high = 2500.0
    if "--high" in argv:
        i = argv.index("--high")
        high = float(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    rows = load(argv[1])
    pts = series(rows)
    if len(pts) < 2:
        print(f"{argv[1]}: fewer than two status lines", file=sys.stderr)
        return 1
    phases = high_phases(pts, high)
    with open(argv[2], "w", encoding="utf-8") as f:
        f.write(svg(pts, phases, title))
    all_ok = True
    for s, e, backlog, one_second, ok in verdicts(pts, phases):
        if ok is None:
            print(f"high phase {s:.0f}-{e:.0f} s: runs to the end of the file, not judged")
            continue
        all_ok &= ok
        print(f"high phase {s:.0f}-{e:.0f} s: backlog 20 s after its end {backlog} records, "
              f"1 s of input then {one_second:.0f}: {'ok' if ok else 'NOT back under 1 s'}")
    print(f"backlog back under 1 s of input within 20 s after every high phase: "
          f"{'yes' if all_ok else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
