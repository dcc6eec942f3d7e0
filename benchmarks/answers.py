"""``answers``: time to read hostile model answers, and how it grows with their size.

Each shape that used to take quadratic time (``<think>`` repeated: 22.5 s at 210 KB, over 30 s at
1 MB; ``{`` repeated: over 30 s at 1 MB) and a few more is read at a quarter, half and all of
:data:`~ai_tagger.analyze.gateway.answer.MAX_ANSWER_CHARS`; reading time must grow linearly (ratio of the
full size to half of it ≈ 2, target ≤ 3). A 1 MB answer is over the cap and refused unread.
Targets: the slowest shape at the cap ≤ 3 s; the 1 MB answer ≤ 10 ms. In-process, best of 3.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ai_tagger.analyze.gateway.answer import MAX_ANSWER_CHARS, MalformedAnswer, read_answer
from benchmarks.harness import Context, Result


def _fill(unit: str) -> Callable[[int], str]:
    return lambda size: (unit * (size // len(unit) + 1))[:size]


def _tags(size: int) -> str:
    """A valid tag list just under ``size`` characters."""
    entry = '{{"name": "tag {:06d}", "confidence": 0.9, "frames": [1]}}'
    entries = ",".join(entry.format(i) for i in range(size // 60))
    return '{"tags": [' + entries + "]}"


SHAPES: dict[str, Callable[[int], str]] = {
    "think": _fill("<think>"),
    "braces": _fill("{"),
    "brackets": _fill("["),
    "balanced": lambda size: "[" * (size // 2) + "]" * (size // 2),
    "empty_objects": _fill("{}"),
    "tags_objects": _fill('{"tags":'),
    "fences": _fill("```"),
    "valid_tag_list": _tags,
}


def _seconds(text: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            read_answer(text, frame_count=8)
        except MalformedAnswer:
            pass
        best = min(best, time.perf_counter() - started)
    return best


def run(ctx: Context) -> Result:
    res = Result("answers")
    full = ctx.pick(full=MAX_ANSWER_CHARS, quick=MAX_ANSWER_CHARS // 4, tiny=8_000)
    repeat = ctx.pick(full=3, quick=2, tiny=1)
    timings: dict[str, dict[int, float]] = {}
    for name, make in SHAPES.items():
        timings[name] = {size: _seconds(make(size), repeat) for size in (full // 4, full // 2, full)}
    slowest = max(timings, key=lambda name: timings[name][full])
    worst_ratio = max(t[full] / max(t[full // 2], 1e-6) for t in timings.values())
    res.add(f"slowest shape at {full // 1000} KB ({slowest})", round(timings[slowest][full], 3), "s", "<= 3",
            timings[slowest][full] <= 3)  # fmt: skip
    res.add("time(full) / time(half), worst shape", round(worst_ratio, 2), "x", "<= 3 (linear: 2)", worst_ratio <= 3)
    megabyte = _fill("<think>")(1_000_000)
    refused = _seconds(megabyte, repeat)
    res.add("1 MB answer (over the cap, refused unread)", round(refused * 1000, 3), "ms", "<= 10", refused <= 0.01)
    res.details = {name: {str(size): round(s, 4) for size, s in sizes.items()} for name, sizes in timings.items()}
    res.notes.append(
        "before the fix: '<think>' x 10,000 (70 KB) took 2.5-8.8 s, '{' x 1,000,000 over 300 s (killed), "
        "'<think>' x 142,857 (1 MB) over 300 s; a 1 MB valid tag list 0.4 s, a 1 MB names-only list 1.0 s"
    )
    return res
