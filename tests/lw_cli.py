"""The `layerwise` command for tests that run it as a subprocess: `python tests/lw_cli.py <command> ...`."""
from layerwise import cli

if __name__ == "__main__": cli.main()
