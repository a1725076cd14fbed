"""The model-size advisor: the same questions, with the same retrieval, through each model; the smallest
model that holds quality is named.

Every answered question is appended to ``results.jsonl`` in the output folder as soon as it is
scored, so a run that was interrupted carries on where it stopped; the QA set is ingested once
into ``out_dir/data`` and reused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from assistant.advice import ADVICE, PLOT, Advice, ModelReport, QuestionResult, advice_dir, choose, draw
from assistant.embeddings import Embedder, build_embedder
from assistant.errors import ConfigError, EnclaveError, GenerationError, NotFoundError
from assistant.evaluation import QAItem, _hit, containment, load_qa, token_f1
from assistant.events import Answer, Done, Token
from assistant.models.catalogue import list_models, local_file
from assistant.models.entry import ModelEntry
from assistant.services import Services, build_services
from assistant.settings import GenerationSettings, Settings

RESULTS = "results.jsonl"
DEFAULT_TOLERANCE = 0.03

Progress = Callable[[str, int, int], None]
"""Called after each question: the model's name, questions done for it, questions in all."""


def settings_for(base: Settings, entry: ModelEntry, data_dir: Path) -> Settings:
    """New settings (``base`` is left as it is) that answer with ``entry`` from ``data_dir``."""
    generation: GenerationSettings = base.generation
    if entry.source == "ollama-host":
        ollama = generation.ollama.model_copy(update={"hosts": [entry.location], "model": entry.name})
        update: dict[str, object] = {"backend": "ollama", "ollama": ollama}
    elif entry.source == "openai-server":
        openai = generation.openai.model_copy(update={"base_urls": [entry.location], "model": entry.name})
        update = {"backend": "openai", "openai": openai}
    else:
        embedded = generation.embedded.model_copy(update={"gguf_path": str(local_file(entry)), "ollama_model": None})
        update = {"backend": "embedded", "embedded": embedded}
    return _own_data(base, data_dir).model_copy(update={"generation": generation.model_copy(update=update)})


def _own_data(base: Settings, data_dir: Path) -> Settings:
    """``base`` with the advisor's data dir and its own SQLite database there, never the install's database."""
    return base.model_copy(update={"data_dir": data_dir, "database_url": None})


def advise(
    qa_folder: Path, models: list[ModelEntry], limit: int | None, out_dir: Path, progress: Progress | None = None,
    *, settings: Settings, tolerance: float = DEFAULT_TOLERANCE, embedder: Embedder | None = None,
) -> Advice:
    """Run the QA set's questions through every model and name the smallest that holds quality.

    Args:
        qa_folder: A QA set in the shared format (docs/ and qa.jsonl).
        models: Catalogue entries to compare.
        limit: Only the first N questions (None: all).
        out_dir: Where results.jsonl, advice.json, advice.png and the ingested QA set go; reused on a rerun.
        progress: Called after each question.
        settings: The install's settings (embedding model, retrieval, answer rules); not changed.
        tolerance: How far below the best quality (0-1) the advised model may be.
        embedder: An already loaded embedder to share.

    Returns:
        The advice, also written to out_dir/advice.json.

    Raises:
        EnclaveError: the folder is no QA set, no model is given, or results.jsonl is damaged.
    """
    if not models:
        raise EnclaveError("name at least one model to measure")
    items = load_qa(qa_folder)[:limit]
    out_dir.mkdir(parents=True, exist_ok=True)
    done = _load_results(out_dir / RESULTS)
    pending = {m.key: [i for i in items if (m.key, i.id) not in done] for m in models}
    notes: list[str] = []
    if any(pending.values()):
        shared = embedder or build_embedder(settings.embedding)
        _ingest_once(qa_folder, _own_data(settings, out_dir / "data"), shared)
        for model in models:
            try:
                for result in _measure(model, pending[model.key], items, settings, out_dir, shared, progress):
                    done[(model.key, result.question_id)] = result
            except (ConfigError, GenerationError) as error:  # this model cannot run here; the others still can
                notes.append(f"{model.name} was not measured: {error}")
    reports = [ModelReport.of(m, [done[(m.key, i.id)] for i in items if (m.key, i.id) in done]) for m in models]
    chosen, reason = choose([r for r in reports if r.questions == len(items)], tolerance)
    advice = Advice(qa_folder.name, len(items), tolerance, reports, chosen, reason, notes=notes)
    try:
        advice.plot = str(draw(advice, out_dir / PLOT))
    except ImportError:
        advice.notes.append("no plot: matplotlib is not installed (pip install matplotlib)")
    (out_dir / ADVICE).write_text(json.dumps(advice.to_json(), indent=1) + "\n", encoding="utf-8")
    return advice


def advise_catalogue(
    settings: Settings, dataset: Path, names: list[str] | None, limit: int | None, out_dir: Path | None,
    progress: Progress | None = None, tolerance: float = DEFAULT_TOLERANCE,
) -> Advice:
    """``advise`` on catalogue models named by name (default: every GGUF file on this machine).

    The output goes to ``out_dir``, else DATA_DIR/advice/<the QA folder's name>, where a rerun resumes.

    Raises:
        NotFoundError: a name is not in the catalogue.
        EnclaveError: there is no model to measure, or what ``advise`` raises.
    """
    catalogue = list_models(settings, checksums=False)
    found = {name: catalogue.find(name) for name in names or []}
    missing = [name for name, model in found.items() if model is None]
    if missing:
        known = ", ".join(m.name for m in catalogue.models) or "none"
        raise NotFoundError(f"not in the catalogue: {', '.join(missing)} (models: {known})")
    models = [m for m in found.values() if m is not None] or [m for m in catalogue.models if m.is_local]
    if not models:
        raise EnclaveError("no GGUF model on this machine: add one with `run.py models add FILE.gguf`")
    target = out_dir or advice_dir(settings.data_dir, dataset)
    return advise(dataset, models, limit, target, progress, settings=settings, tolerance=tolerance)


def _load_results(path: Path) -> dict[tuple[str, str], QuestionResult]:
    """The results of an earlier run; a last line cut short by the interruption is dropped (and asked again)."""
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    results: dict[tuple[str, str], QuestionResult] = {}
    kept: list[str] = []
    for n, line in enumerate(lines, 1):
        try:
            result = QuestionResult.from_json(json.loads(line))
        except (ValueError, TypeError) as error:
            if n == len(lines):
                break
            raise EnclaveError(f"{path}:{n} is not a result line ({error}): delete the file to start over") from error
        results[(result.model, result.question_id)] = result
        kept.append(line + "\n")
    if "".join(kept) != text:  # new lines are appended after the last whole one, not after a fragment
        path.write_text("".join(kept), encoding="utf-8")
    return results


def _ingest_once(qa_folder: Path, settings: Settings, embedder: Embedder) -> None:
    """Ingest the QA set's documents into the advisor's data dir (unchanged files are skipped on a rerun)."""
    services = build_services(settings, embedder=embedder)
    try:
        services.ingest.ingest(qa_folder / "docs")
    finally:
        services.close()


@contextmanager
def _services(settings: Settings, embedder: Embedder) -> Iterator[Services]:
    services = build_services(settings, embedder=embedder)
    try:
        yield services
    finally:
        close = getattr(services.answers.chat_model(), "close", None)
        if close is not None:
            close()  # free the model's memory before the next one loads
        services.close()


def _measure(
    model: ModelEntry, pending: list[QAItem], items: list[QAItem], base: Settings, out_dir: Path,
    embedder: Embedder, progress: Progress | None,
) -> Iterator[QuestionResult]:
    """Ask ``model`` the pending questions, appending each result to results.jsonl as it comes."""
    if not pending:
        return
    settings = settings_for(base, model, out_dir / "data")
    memory = PeakMemory() if model.is_local else None
    with _services(settings, embedder) as services, (out_dir / RESULTS).open("a", encoding="utf-8") as results:
        services.answers.warm_up()  # loading the model is not the first question's latency
        for n, item in enumerate(pending, len(items) - len(pending) + 1):
            result = _ask(services, model, item)
            result.peak_memory_mb = memory.peak_mb() if memory else None
            results.write(json.dumps(result.to_json()) + "\n")
            results.flush()
            yield result
            if progress:
                progress(model.name, n, len(items))


def _ask(services: Services, model: ModelEntry, item: QAItem) -> QuestionResult:
    """One question through the answering service, scored as ``assistant.evaluation`` scores it."""
    tokens, first, last = 0, 0.0, 0.0
    result = QuestionResult(model.key, item.id, item.answerable, refused=False)
    answer: Answer | None = None
    for event in services.answers.ask(item.question):
        if isinstance(event, Token):
            last = time.perf_counter()
            first, tokens = first or last, tokens + 1
        elif isinstance(event, Done):
            answer = event.answer
            result.refused, result.error = answer.refused, answer.error
            result.first_token_ms = answer.timings.get("first_token_ms")
            result.first_useful_ms = answer.timings.get("first_useful_ms")
    result.tokens, result.writing_ms = tokens, (last - first) * 1000 if tokens > 1 else None
    if answer is not None and item.answerable and item.answer and not result.refused:
        result.token_f1 = token_f1(answer.text, item.answer)
        result.containment = containment(answer.text, item.answer)
        hits = [_hit(c.passage.chunk.file, c.passage.chunk.page, item.sources, True) for c in answer.citations]
        result.citations, result.citations_correct = len(hits), sum(hits)
    return result


class PeakMemory:
    """Resident memory this process gains from now: Linux's high-water mark, reset, minus what was resident."""

    STATUS = Path("/proc/self/status")

    def __init__(self) -> None:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # 5 resets VmHWM to the current resident size
            self._baseline: float | None = self._field("VmRSS")
        except OSError:  # not Linux, or /proc is not mounted: the figure is left out
            self._baseline = None

    def _field(self, name: str) -> float:
        for line in self.STATUS.read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1]) / 1024  # kB -> MiB
        raise OSError(f"{self.STATUS} has no {name}")

    def peak_mb(self) -> float | None:
        """MiB the high-water mark rose above the resident memory at the start, or None where unknown."""
        if self._baseline is None:
            return None
        try:
            return round(self._field("VmHWM") - self._baseline, 1)
        except OSError:
            return None
