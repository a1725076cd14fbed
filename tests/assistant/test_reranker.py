"""A local cross-encoder configured as reranker: it orders the passages, and a wrong model is refused.

No trained reranker ships in a PyPI package, so the cross-encoder here is built from the
embedding model's encoder with a seeded, untrained scoring head: a real sentence-transformers
CrossEncoder whose scores are arbitrary but fixed, which is all these tests need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.embeddings import resolve_model_dir
from assistant.errors import ConfigError
from assistant.retrieval import CrossEncoderReranker, Retriever
from assistant.settings import load_settings
from storage.documents import searchable_text

QUESTION = "How many paid days off do employees get?"
DOCS = {
    "leave.md": "# Leave\n\nStaff accrue 20 paid days off a year, and carry 5 of them over.\n",
    "sick.md": "# Sick days\n\nEmployees get 10 paid sick days a year.\n",
    "holidays.md": "# Holidays\n\nThe office closes on 11 public holidays a year.\n",
    "dental.md": "# Dental\n\nThe dental plan covers two cleanings a year.\n",
    "parking.md": "# Parking\n\nPermits are issued by the facilities desk on Mondays.\n",
}


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    encoder = resolve_model_dir(load_settings(data_dir=tmp_path_factory.mktemp("settings")).embedding.model)
    torch.manual_seed(7)
    config = AutoConfig.from_pretrained(encoder, num_labels=1)
    model = AutoModelForSequenceClassification.from_pretrained(encoder, config=config)
    folder = tmp_path_factory.mktemp("cross-encoder")
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(encoder).save_pretrained(folder)
    return folder


@pytest.fixture
def services(make_services: Any, cross_encoder_dir: Path, tmp_path: Path, index_backend: str) -> Any:
    """On each index backend (``index_backend``)."""
    hr, payroll = tmp_path / "hr", tmp_path / "payroll"
    hr.mkdir()
    payroll.mkdir()
    for name, text in DOCS.items():
        (hr / name).write_text(text, encoding="utf-8")
    (payroll / "salaries.md").write_text("# Salaries\n\nPaid days off are paid at the base salary.\n",
                                         encoding="utf-8")
    built = make_services(retrieval={"reranker_model": str(cross_encoder_dir)})
    built.ingest.ingest(hr, collection="hr")
    built.ingest.ingest(payroll, collection="payroll")
    return built


def test_the_configured_cross_encoder_decides_the_order(services: Any, cross_encoder_dir: Path) -> None:
    from sentence_transformers import CrossEncoder

    passages = services.retriever.retrieve(QUESTION, collections=["hr"], top_k=10).passages
    assert sorted(p.chunk.file for p in passages) == sorted(DOCS), "every hr page, and nothing from payroll"
    judge = CrossEncoder(str(cross_encoder_dir), device="cpu", local_files_only=True)
    scores = judge.predict([(QUESTION, searchable_text(p.chunk.file, p.chunk.heading, p.chunk.text))
                            for p in passages])
    assert [p.rerank for p in passages] == pytest.approx([float(s) for s in scores], abs=1e-4)
    assert [p.rerank for p in passages] == sorted((p.rerank for p in passages), reverse=True)
    top = services.retriever.retrieve(QUESTION, collections=["hr"], top_k=2).passages
    assert [p.chunk.file for p in top] == [p.chunk.file for p in passages[:2]]
    assert top[0].as_json()["rerank"] == round(passages[0].rerank, 4), "the JSON shows the score that ordered it"

    fused = Retriever(services.corpus, services.settings.retrieval).retrieve(QUESTION, collections=["hr"])
    assert all(p.rerank is None and "rerank" not in p.as_json() for p in fused.passages)


def test_an_embedding_model_is_refused_as_reranker(tmp_path: Path) -> None:
    """It would load with a fresh, untrained head and rank passages at random, silently."""
    encoder = resolve_model_dir(load_settings(data_dir=tmp_path).embedding.model)
    with pytest.raises(ConfigError, match=r"retrieval\.reranker_model: .* is no cross-encoder"):
        CrossEncoderReranker(str(encoder))


def test_a_missing_reranker_names_the_setting_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"retrieval\.reranker_model .*no-such-reranker.* neither a folder"):
        CrossEncoderReranker(str(tmp_path / "no-such-reranker"))
