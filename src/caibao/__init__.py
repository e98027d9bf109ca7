"""caibao: metric facts from Chinese financial news.

``from caibao import Extractor`` is resolved lazily, so that importing the
package (and the CLI's --help) does not load torch.
"""

__version__ = "0.1.0"
__all__ = ["Extractor", "__version__"]


def __getattr__(name: str):
    if name == "Extractor":
        from caibao.extract import Extractor

        return Extractor
    raise AttributeError(f"module 'caibao' has no attribute {name!r}")
