"""What the asker is told while files are still being embedded, on each index backend."""

from __future__ import annotations

from assistant.events import indexing_note


def test_the_note_says_what_a_waiting_file_means_for_answers_on_each_backend() -> None:
    assert indexing_note({}) is None and indexing_note({"hr": 0}) is None
    in_process = indexing_note({"hr": 2, "finance": 1})
    assert in_process is not None and "3 files" in in_process and "keyword search" in in_process
    postgresql = indexing_note({"hr": 1}, keyword_first=False)
    assert postgresql is not None and "1 file;" in postgresql
    assert "keyword" not in postgresql, "the PostgreSQL index cannot search a file before it is embedded"
