"""``run.py copy-index``: fill the other index backend from the database and check that both rank alike."""

from __future__ import annotations

from typing import Annotated

import typer

from assistant.index_copy import BACKENDS, IndexCopyReport, copy_index
from assistant.settings import CONFIG_FILE_NAME
from ui.cli.options import CliOptions, emit, err, open_services, out, shared_options


def _render(report: IndexCopyReport, config_file: str) -> None:
    out.print(f"copied {report.chunks} chunks of {report.collections} collections from the database into the "
              f"{report.target} index", highlight=False)
    for name, agreement in (("dense", report.dense), ("BM25", report.bm25)):
        out.print(f"{name}: same best chunk for {agreement.top_share:.0%} of {agreement.questions} questions, "
                  f"{agreement.overlap:.0%} of the top {report.k} in common with the {report.source} index",
                  highlight=False)
    if report.agrees:
        out.print(f"Now set retrieval.index_backend = \"{report.target}\" in {config_file} "
                  "(or ENCLAVE_RETRIEVAL__INDEX_BACKEND) and restart Enclave.", highlight=False, soft_wrap=True)


def register_index_commands(app: typer.Typer) -> None:
    """Add ``copy-index`` to the app."""

    @app.command("copy-index")
    @shared_options
    def copy_index_command(
        options: CliOptions,
        to: Annotated[str, typer.Option("--to", help=f"The backend to fill: {' or '.join(BACKENDS)}.")],
        sample: Annotated[int, typer.Option(help="Questions per collection for the check.")] = 50,
    ) -> None:
        """Build the index in another backend from the database (no re-embedding), then compare the two.

        Exits with 1 when the backends disagree on the best chunk for more than 5% of the questions.
        """
        with open_services(options) as services:
            report = copy_index(services.corpus, to, sample=sample,
                                progress=lambda name, n: err.print(f"{name}: {n} chunks", highlight=False))
            config_file = str(services.settings.data_dir / CONFIG_FILE_NAME)
        emit(options, report.as_json(), lambda: _render(report, config_file))
        if not report.agrees:
            err.print("[red]the two indexes rank differently: keep the current index backend[/red]")
            raise typer.Exit(1)
