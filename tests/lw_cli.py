"""The `layerwise` CLI for tests: `layerwise.cli.main` with the batch/site/report commands added where
`layerwise.cli.build_parser` does not wire them (yet). Run as `python tests/lw_cli.py <command> ...`."""
import argparse
from layerwise import cli
from layerwise.batch import add_batch_command
from layerwise.site import add_report_command, add_site_command

_build_parser = cli.build_parser

def build_parser() -> argparse.ArgumentParser:
    "The `layerwise` parser with batch, site and report"
    parser = _build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, add in [("batch", add_batch_command), ("site", add_site_command), ("report", add_report_command)]:
        if name not in sub.choices: add(sub)
    return parser

cli.build_parser = build_parser

if __name__ == "__main__": cli.main()
