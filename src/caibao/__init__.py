"""caibao: metric facts from Chinese financial news."""

__version__ = "0.1.0"
