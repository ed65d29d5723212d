"""``creditrisk bench``: the benchmark suites. They print figures and never fail on a timing;
``docs/benchmarks.md`` records them with their commands."""
