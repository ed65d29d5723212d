"""``creditrisk data ...``: generate Lending Club-shaped loan data and the bureau table."""

from __future__ import annotations

from pathlib import Path

import typer

data_app = typer.Typer(help="Generate Lending Club-shaped loan data and the bureau table.",
                       no_args_is_help=True)


@data_app.command("generate")
def generate_command(
    rows: int = typer.Option(200_000, "--rows", min=100, help="Rows in loans.csv (duplicates included)."),
    seed: int = typer.Option(7, "--seed", help="Random seed: the same seed writes byte-identical files."),
    out: Path = typer.Option(Path("data/generated"), "--out", help="Folder for loans.csv and bureau.csv."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Write a dirty Lending Club 2007-2014-shaped loans.csv and the per-customer bureau.csv."""
    from training.generate import generate_loan_files

    summary = generate_loan_files(rows=rows, seed=seed, out_dir=out, show_progress=progress)
    typer.echo(f"rows written:          {summary.rows:,} ({summary.customers:,} customers)")
    typer.echo(f"resolved loans:        {summary.resolved_loans:,}, bad rate "
               f"{summary.bad_rate_resolved:.1%}")
    typer.echo(f"duplicates planted:    {summary.exact_duplicates:,} exact, "
               f"{summary.conflicting_ids:,} same id with different content")
    for path in summary.files:
        typer.echo(f"wrote                  {path}")
    typer.echo(f"seconds:               {summary.seconds:.1f}")
