"""The CPU-scale study of issue #10 (docs/results.md, first part): its runner, methods, tables and checks."""
