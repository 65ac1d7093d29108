"""instrumentgen: sample-based musical instruments from neural audio codec language models.

A reproduction of Nercessian et al., ISMIR 2024 (arXiv 2407.15641) as a Snakemake workflow
whose logic lives in this package: data preparation, encoders, the codec language model,
generation, evaluation and export to playable instruments.
"""

__version__ = "0.1.0"
