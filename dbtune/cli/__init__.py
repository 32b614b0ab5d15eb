"""The Typer command-line interface: thin wrappers that parse options, call the library and render."""
