"""An ingest job as the admin page shows it: what it does now, a bar, every file, and times as people say them."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from assistant.jobs import IngestJob

COUNTS = ("added", "updated", "unchanged", "removed", "renamed")


def duration_text(seconds: float) -> str:
    """A duration as people read it: "under 1 s", "42 s", "1 min 23 s", "2 h 5 min"."""
    if seconds < 1:
        return "under 1 s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def job_html(job: IngestJob, now: datetime | None = None) -> str:
    """An ingest job's progress: its step, a bar, every file listed (newest first), failures with reasons."""
    percent = 100 if job.state == "done" else int(100 * job.done / job.total) if job.total else 0
    # A source's held run ended on purpose: it removed nothing, and says why (docs/sources.md).
    label = "Held, nothing removed" if job.state == "held" else "Failed"
    error = f'<p class="failed">{label}: {escape(job.error)}</p>' if job.error else ""
    step = f'<p class="now">Now: {escape(job.now)}</p>' if job.now and not job.ended else ""
    return (
        f'<div class="job" data-state="{escape(job.state)}"><b>Job {int(job.id)}</b> · '
        f'{escape(job.collection)} ← {escape(job.source)} · <span class="state">{escape(job.state)}</span>'
        f" · {job.done}/{job.total} files{_took(job, now)}"
        f'<div class="bar"><div style="width:{percent}%"></div></div>{step}{error}{_files(job)}'
        + (f'<p class="failed">Could not ingest {len(job.failures)} file(s):</p><ul class="failures">'
           + "".join(f"<li><b>{escape(f.path)}</b>: {escape(f.reason)}</li>" for f in job.failures) + "</ul>"
           if job.failures else "")
        + _summary(job)
        + "</div>"
    )


def _took(job: IngestJob, now: datetime | None) -> str:
    if job.started is None or job.state == "queued":
        return ""
    end = job.finished or now or datetime.now(UTC)
    seconds = job.summary.get("seconds") if job.state == "done" else None
    spent = float(seconds) if isinstance(seconds, int | float) else (end - job.started).total_seconds()
    return f" · {'took' if job.ended else 'running for'} {duration_text(max(spent, 0.0))}"


def _files(job: IngestJob) -> str:
    if not job.files:
        return ""
    items = "".join(
        f"<li>{escape(f.path)} — {escape(f.outcome)}" + (f" ({f.chunks} chunks)" if f.chunks else "") + "</li>"
        for f in reversed(job.files)
    )
    earlier = job.done - len(job.files)
    more = f"<li>… and {earlier} earlier file(s)</li>" if earlier > 0 else ""
    return f'<ul class="files">{items}{more}</ul>'


def _summary(job: IngestJob) -> str:
    if not job.summary:
        return ""
    counts = ", ".join(f"{k} {job.summary[k]}" for k in COUNTS if k in job.summary)
    totals = (f" · the collection now holds {job.summary['documents']} documents, {job.summary['chunks']} chunks"
              if "documents" in job.summary and "chunks" in job.summary else "")
    return f'<p class="summary">{escape(counts + totals)}</p>'
