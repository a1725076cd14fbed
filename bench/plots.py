"""Draw the figures of docs/benchmarks.md from the JSON the bench scripts wrote.

    .venv/bin/python bench/plots.py [--results bench/results] [--out docs/plots]

Reads query.json (bench/query.py), scale.json (bench/scale.py) and load.json (bench/load.py),
whichever exist, and writes PNGs: retrieval latency against corpus size, and throughput and
latency against concurrent users. Each plot shows Enclave beside the baseline of the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def latency_points(query: dict[str, Any] | None, scale: dict[str, Any] | None) -> dict[str, list[tuple[int, float]]]:
    """p50 milliseconds per corpus size, per series."""
    series: dict[str, list[tuple[int, float]]] = {}
    for size, entry in (query or {}).get("sizes", {}).items():
        series.setdefault("Enclave retrieval (embed + IVF/exact + BM25 + rows)", []).append(
            (int(size), entry["enclave"]["latency_ms"]["p50"]))
        if "latency_ms" in entry["starter"]:
            series.setdefault("llama-index starter retriever", []).append(
                (int(size), entry["starter"]["latency_ms"]["p50"]))
    if scale:
        embed = scale["query_embedding_ms"]["p50"]
        for size, entry in scale["sizes"].items():
            series.setdefault("Enclave vector search + query embedding", []).append(
                (int(size), entry["enclave"]["search_ms"]["p50"] + embed))
            series.setdefault("exact vector search + query embedding (baseline)", []).append(
                (int(size), entry["exact"]["search_ms"]["p50"] + embed))
    return {name: sorted(points) for name, points in series.items()}


def plot_latency(series: dict[str, list[tuple[int, float]]], out: Path) -> Path | None:
    """Latency against corpus size, log-log."""
    if not series:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, points in series.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    ax.set(xscale="log", yscale="log", xlabel="chunks in the collection", ylabel="p50 latency (ms)",
           title="Retrieval latency against corpus size (2 cores)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    path = out / "latency-vs-corpus-size.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_load(load: dict[str, Any] | None, out: Path) -> Path | None:
    """Throughput and p95 latency against concurrent users, one line per scenario."""
    scenarios = (load or {}).get("scenarios")
    if not scenarios:
        return None
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    by_kind: dict[str, list[tuple[int, float, float]]] = {}
    for entry in scenarios:
        rows = by_kind.setdefault(entry["scenario"], [])
        if not rows:  # the one-user baseline of the same run starts each line
            base = entry["baseline_1_user"]
            rows.append((1, float(base["throughput_rps"]), float(base["p95_s"])))
        rows.append((int(entry["users"]), float(entry["throughput_rps"]), float(entry["p95_s"])))
    for kind, rows in by_kind.items():
        rows.sort()
        left.plot([r[0] for r in rows], [r[1] for r in rows], marker="o", label=kind)
        right.plot([r[0] for r in rows], [r[2] for r in rows], marker="o", label=kind)
    right.axhline(1.0, color="grey", linestyle="--", linewidth=0.8, label="retrieve-only target (1 s)")
    right.set_yscale("log")
    left.set(xlabel="concurrent users", ylabel="requests per second", title="Throughput")
    right.set(xlabel="concurrent users", ylabel="p95 latency (s)", title="p95 latency")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    path = out / "load-vs-users.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    """Read whatever results exist and write their plots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "plots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    written = [
        plot_latency(latency_points(_load(args.results / "query.json"), _load(args.results / "scale.json")), args.out),
        plot_load(_load(args.results / "load.json"), args.out),
    ]
    for path in written:
        if path is not None:
            print(f"wrote {path}")
    if not any(written):
        sys.exit(f"no results in {args.results}: run bench/query.py, bench/scale.py or bench/load.py first")


if __name__ == "__main__":
    main()
