"""The cases of ``benchmarks/generation.py``, one module each over :mod:`generation_cases.common`; each
module's ``run(opts)`` returns the case's result."""
