"""``creditrisk data ...``: generate loan data shaped like a published dataset."""

from __future__ import annotations

from pathlib import Path

import typer

data_app = typer.Typer(help="Generate loan data shaped like Lending Club's or Home Credit's files.",
                       no_args_is_help=True)

GENERATED_DATASETS = ("generated", "home_credit")


@data_app.command("generate")
def generate_command(
    rows: int = typer.Option(200_000, "--rows", min=100,
                             help="Rows in the loan file (Lending Club: duplicates included; "
                                  "Home Credit: applicants)."),
    seed: int = typer.Option(7, "--seed", help="Random seed: the same seed writes byte-identical files."),
    out: Path = typer.Option(Path("data/generated"), "--out", help="Folder for the files."),
    dataset: str = typer.Option("generated", "--dataset",
                                help="'generated': Lending Club-shaped loans.csv + bureau.csv; "
                                     "'home_credit': Home Credit-shaped application_train.csv + "
                                     "bureau.csv."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Write a dirty loan file and its bureau table, shaped like a published dataset."""
    if dataset not in GENERATED_DATASETS:
        typer.secho(f"--dataset {dataset!r}: choose one of {', '.join(GENERATED_DATASETS)}",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2)
    if dataset == "home_credit":
        _generate_home_credit(rows, seed, out, progress)
        return
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


def _generate_home_credit(rows: int, seed: int, out: Path, progress: bool) -> None:
    from training.generate_home_credit import generate_home_credit_files

    summary = generate_home_credit_files(rows=rows, seed=seed, out_dir=out,
                                         show_progress=progress)
    typer.echo(f"applicants written:    {summary.rows:,}, TARGET = 1 for {summary.bad_rate:.1%}")
    typer.echo(f"bureau credits:        {summary.bureau_rows:,}; "
               f"{summary.applicants_without_bureau:,} applicants have none")
    for path in summary.files:
        typer.echo(f"wrote                  {path}")
    typer.echo(f"seconds:               {summary.seconds:.1f}")
