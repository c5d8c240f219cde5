"""featurelake benchmark suite (see benchmarks/README.md)."""
