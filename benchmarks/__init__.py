"""Performance benchmarks: ratios measured side by side in one run, results written to a file."""
