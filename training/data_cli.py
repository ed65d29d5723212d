"""``creditrisk data ...`` (being built)."""

import typer

data_app = typer.Typer(help="Generate Lending Club-shaped loan data and the bureau table.",
                       no_args_is_help=True)
