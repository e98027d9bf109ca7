"""The ``caibao`` command line (typer). Each command is a thin wrapper over a module."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from caibao.io import InputError

app = typer.Typer(
    help="caibao: metric facts (org, metric, value, period) from Chinese financial news.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


@app.command()
def ingest(
    inputs: Annotated[list[Path], typer.Argument(help="Raw corpus files or folders (Jekyll posts, Sina archives, transcripts).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Documents JSONL to write (atomically).")] = Path("data/documents.jsonl"),
    boilerplate: Annotated[Path | None, typer.Option(help="Boilerplate patterns YAML (default: the bundled one).")] = None,
    id_prefix: Annotated[str, typer.Option(help="Prefix of document ids.")] = "seed",
) -> None:
    """Clean raw documents into one JSON line each, with duplicates clustered.

    Reports documents per source and the duplicates found. Running it twice
    gives byte-identical output; a malformed file stops with its name and
    the problem, and nothing is written.
    """
    from caibao.corpus import Boilerplate, ingest as run_ingest, write_documents

    try:
        docs, report = run_ingest(inputs, Boilerplate.load(boilerplate), id_prefix)
    except InputError as exc:
        fail(str(exc))
    write_documents(docs, out)
    table = Table(title=f"ingested -> {out}")
    for col in ("source", "layout", "documents", "duplicates", "empty after cleaning"):
        table.add_column(col)
    for name, info in report["per_source"].items():
        table.add_row(name, info["layout"], str(info["documents"]), str(info["duplicates"]),
                      str(info["empty_after_cleaning"]))
    console.print(table)
    console.print(f"{report['documents']} documents, {report['distinct']} distinct; "
                  f"{report['exact_duplicates']} exact and {report['near_duplicates']} near duplicates "
                  f"in {report['clusters_with_duplicates']} clusters")


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Annotation JSONL files or folders.")],
    warnings: Annotated[bool, typer.Option("--warnings/--no-warnings", help="Also print warnings.")] = True,
) -> None:
    """Check annotations against every mechanical rule of the guide; exit 1 on errors."""
    from caibao.annotations import validate_paths

    try:
        count, problems = validate_paths(paths)
    except InputError as exc:
        fail(str(exc))
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        if p.severity == "error" or warnings:
            print(p)
    n_warn = len(problems) - len(errors)
    console.print(f"{count} documents checked: {len(errors)} errors, {n_warn} warnings")
    if errors or count == 0:
        if count == 0:
            console.print("[red]no documents found[/red]")
        raise typer.Exit(1)


@app.command("to-labelstudio")
def to_labelstudio(
    gold: Annotated[Path, typer.Argument(help="Gold JSONL file or folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Label Studio tasks JSON to write.")],
    config_out: Annotated[Path | None, typer.Option(help="Also write the labeling config XML here.")] = None,
) -> None:
    """Convert gold JSONL to Label Studio task JSON (annotations as Label Studio results)."""
    from caibao.annotations import labeling_config, read_gold, write_ls_tasks
    from caibao.io import atomic_write_text

    try:
        docs = read_gold(gold)
    except InputError as exc:
        fail(str(exc))
    write_ls_tasks(docs, out)
    if config_out:
        atomic_write_text(config_out, labeling_config())
    console.print(f"{len(docs)} tasks -> {out}")


@app.command("from-labelstudio")
def from_labelstudio(
    tasks: Annotated[Path, typer.Argument(help="Label Studio tasks/export JSON.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Gold JSONL to write.")],
) -> None:
    """Convert Label Studio task JSON back to gold JSONL (first annotation of each task)."""
    from caibao.annotations import read_ls_tasks, write_documents

    try:
        docs = read_ls_tasks(tasks)
    except InputError as exc:
        fail(str(exc))
    write_documents(docs, out)
    console.print(f"{len(docs)} documents -> {out}")


@app.command("labeling-config")
def labeling_config_cmd() -> None:
    """Print the Label Studio labeling config generated from the schema."""
    from caibao.annotations import labeling_config

    sys.stdout.write(labeling_config())


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
