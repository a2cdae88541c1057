"""The monitoring bundle's build: Jsonnet sources -> Prometheus rule files."""
